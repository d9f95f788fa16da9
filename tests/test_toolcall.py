"""agent/toolcall: one structured tool call per question, under LoadGen. One smoke run (three tasks, replies cut
at 8 tokens, so every call is invalid and counted) feeds the checker tests; the parsing, tools and grading are
tested without the model in tests/test_agent_common.py."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common import benchmark, grading
from common.bench import read_log
from conftest import REPO_ROOT

WORKLOAD = REPO_ROOT / "agent" / "toolcall"


def smoke_env(data_dir: Path, results: Path) -> dict:
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir), "RESULTS_DIR": str(results),
           "SMOKE": "1", "LOGFILE": ""}
    env.pop("SMOLLM2_SOURCE", None)
    return env


@pytest.fixture(scope="module")
def toolcall_results(data_dir, smollm2_weights, tmp_path_factory):
    results = tmp_path_factory.mktemp("toolcall_results")
    proc = subprocess.run(["bash", str(WORKLOAD / "run_and_time.sh"), "1"], env=smoke_env(data_dir, results),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


def variant_dir(results: Path) -> Path:
    return results / "reference" / "results" / "local_cpu" / "toolcall" / "baseline"


def test_smoke_run_is_valid_and_counts_invalid_calls(toolcall_results):
    events, problems = read_log(variant_dir(toolcall_results) / "result_0.txt")
    assert not problems, problems
    by_key = {e["key"]: e for e in events}
    assert by_key["result_validity"]["value"] == "VALID"
    assert by_key["run_stop"]["metadata"]["status"] == "success"
    assert by_key["task_set"]["value"]["tasks"] == 3
    statistics = [e for e in events if e["key"] == "sut_statistics"]
    assert [s["metadata"]["mode"] for s in statistics] == ["AccuracyOnly", "PerformanceOnly"]
    accuracy_run = statistics[0]["value"]
    # 8 tokens cannot hold a call: every reply is invalid, counted, and the run goes on to a VALID result
    assert accuracy_run["tool_calls"] == 3 and accuracy_run["invalid_tool_calls"] == 3
    assert accuracy_run["valid_call_rate"] == 0.0 and by_key["accuracy"]["value"] == 0.0
    assert statistics[1]["value"]["tasks"] >= 11 and statistics[1]["value"]["model_call_latency_ms"]["p90"] > 0
    reference = json.loads((variant_dir(toolcall_results) / "loadgen_0" / "accuracy" /
                            "reference_outputs.json").read_text())
    assert reference["format"] == grading.FORMAT and len(reference["samples"]) == 3


def test_checker_passes_the_real_smoke_results(toolcall_results):
    from submission_checker import checker

    report = checker.check(toolcall_results, smoke=True)
    assert report.valid, report.errors + [e for r in report.results for e in r.errors]


def _tampered(results: Path, tmp_path: Path, name: str, edit) -> str:
    """The checker's problems with a copy of the results whose accuracy/<name> was edited, the log's sha256 of it
    updated to match (so that only the checker's own recomputation can catch the edit)."""
    from submission_checker import checker

    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    path = variant_dir(copy) / "loadgen_0" / "accuracy" / name
    old = grading.sha256_hex(path.read_bytes())
    edit(path)
    log = variant_dir(copy) / "result_0.txt"
    log.write_text(log.read_text().replace(old, grading.sha256_hex(path.read_bytes())))
    report = checker.check(copy, smoke=True)
    assert not report.valid
    return " | ".join(report.errors + [e for r in report.results for e in r.errors])


def test_checker_fails_an_answer_changed_after_grading(toolcall_results, tmp_path):
    def edit(path: Path):
        entries = json.loads(path.read_text())
        entries[0]["data"] = "79".encode().hex().upper()  # the right answer of task 0, put in after grading
        path.write_text(json.dumps(entries))

    problems = _tampered(toolcall_results, tmp_path, "mlperf_log_accuracy.json", edit)
    assert "sample 0: LoadGen's answer is not the one graded" in problems, problems


def test_checker_recomputes_an_exact_match_score(toolcall_results, tmp_path):
    def edit(path: Path):
        document = json.loads(path.read_text())
        document["samples"]["0"]["score"] = 1.0
        path.write_text(json.dumps(document))

    problems = _tampered(toolcall_results, tmp_path, "reference_outputs.json", edit)
    assert "sample 0: graded 1.0, but the answer scores 0" in problems, problems
