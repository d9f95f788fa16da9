"""Lab 3 (labs/lab3_dense_vs_sparse): one command runs nanogpt and nano_moe with the same seed and writes the
comparison (table as markdown, CSV and JSON; a two-panel PNG); --logs rebuilds it from existing logs, with the
peak memory reported as unmeasured."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from common import benchmark
from conftest import REPO_ROOT

COMPARE = REPO_ROOT / "labs" / "lab3_dense_vs_sparse" / "compare.py"


def test_the_two_models_have_equal_active_parameters():
    dense, sparse = benchmark.load("nanogpt"), benchmark.load("nano_moe")
    for smoke in (False, True):
        d, s = benchmark.load("nanogpt", smoke=smoke)["model"], benchmark.load("nano_moe", smoke=smoke)["model"]
        assert {k: s[k] for k in d} == d and s["top_k"] * s["expert_hidden"] == 4 * s["n_embd"]
    assert dense["quality"] == sparse["quality"]


@pytest.fixture(scope="module")
def smoke_comparison(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lab3")
    proc = subprocess.run([sys.executable, str(COMPARE), "--seed", "3", "--smoke", "--out", str(out),
                           "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out, proc


def test_one_command_writes_the_table_and_the_plot(smoke_comparison):
    out, proc = smoke_comparison
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["benchmark"] for r in rows] == ["nanogpt", "nano_moe"]
    for row in rows:
        assert row["status"] == "success" and row["evaluations"] == len(row["curve"]) > 0
        assert row["tokens_per_s"] > 0 and row["training_seconds"] > 0
        assert 50 < row["peak_rss_mib"] < 64_000  # a real measurement of the child, in MiB
        samples = [p["samples"] for p in row["curve"]]
        assert samples == sorted(samples) and all(p["seconds"] > 0 for p in row["curve"])
    dense, sparse = rows
    assert dense["parameters_active"] == dense["parameters_total"]
    assert sparse["parameters_active"] <= sparse["parameters_total"]  # equal in the smoke config: 2 experts, top-2
    assert abs(sparse["parameters_active"] - dense["parameters_active"]) < 0.02 * dense["parameters_active"]
    with open(out / "comparison.csv") as handle:
        assert [r["benchmark"] for r in csv.DictReader(handle)] == ["nanogpt", "nano_moe"]
    assert "| nano_moe |" in (out / "comparison.md").read_text() and "| nano_moe |" in proc.stdout
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_logs_give_the_same_curves_with_memory_unmeasured(smoke_comparison, tmp_path):
    out, _ = smoke_comparison
    logs = [str(next(out.glob(f"{name}_seed3_smoke.txt"))) for name in ("nanogpt", "nano_moe")]
    proc = subprocess.run([sys.executable, str(COMPARE), "--logs", *logs, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    again, first = json.loads((tmp_path / "comparison.json").read_text()), json.loads((out / "comparison.json").read_text())
    assert [r["curve"] for r in again] == [r["curve"] for r in first]
    assert all(r["peak_rss_mib"] == "unmeasured" for r in again)


def test_a_missing_log_is_one_clear_sentence(tmp_path):
    proc = subprocess.run([sys.executable, str(COMPARE), "--logs", str(tmp_path / "no.txt"), str(tmp_path / "x.txt"),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stderr.strip() == f"error: log {tmp_path / 'no.txt'} does not exist"
