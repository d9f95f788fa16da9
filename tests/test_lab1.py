"""Lab 1 (labs/lab1_fast_resnet): the slow baseline is what lab.yaml says, its log is a valid open-division
resnet18 run (the checker keeps the reference's evaluation cadence in samples when the batch changes), and the
lab's verdict applies its rules: the suite checker's PASS, the open division, resnet18's own target, the budget."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from common import benchmark
from conftest import REPO_ROOT
from submission_checker import checker
from submission_checker.training import EvalRules

LAB = REPO_ROOT / "labs" / "lab1_fast_resnet"
sys.path.insert(0, str(LAB))
import check_lab  # noqa: E402

RULES = yaml.safe_load((LAB / "lab.yaml").read_text())


def test_the_baseline_only_changes_what_the_open_division_relaxes():
    resnet18 = benchmark.load("resnet18")
    changed = set(RULES["baseline"]["hyperparameters"])
    assert changed <= set(resnet18["open_division_relaxes"])
    assert RULES["baseline"]["hyperparameters"]["global_batch_size"] < resnet18["hyperparameters"]["global_batch_size"]
    assert RULES["target"] == resnet18["quality"]["target"] and RULES["division"] == "open"
    # the same evaluation points in samples as the reference, so the checker's cadence rule holds
    ratio = resnet18["hyperparameters"]["global_batch_size"] // RULES["baseline"]["hyperparameters"]["global_batch_size"]
    assert RULES["baseline"]["quality"]["eval_every_steps"] == resnet18["quality"]["eval_every_steps"] * ratio
    assert RULES["baseline"]["quality"]["max_steps"] == resnet18["quality"]["max_steps"] * ratio


@pytest.mark.parametrize("batch,steps,off", [
    (128, [117, 234, 351, 468], []),            # the definition's batch: cadence in steps
    (128, [100], [100]),
    (16, [936, 1872, 2808, 3744], []),          # 8x smaller batch: the same samples
    (16, [117], [117]),                         # the reference's step count at the wrong batch is off cadence
    (16, [3745], [3745]),                       # after max_steps x 128 samples
    (100, [150, 300, 450, 600], []),            # first step reaching each 14,976 samples; 600 reaches 59,904
    (100, [149], [149]),
])
def test_eval_cadence_is_kept_in_samples_when_the_batch_changes(batch, steps, off):
    rules = EvalRules(benchmark.load("resnet18"), "eval_accuracy")
    rules.batch = batch
    assert [s for s in steps if rules._off_cadence(s)] == off


def _result(**overrides):
    fields = dict(benchmark="resnet18", path="lab/results/local_cpu/resnet18", errors=[], division="open",
                  score_minutes=5.0, runs=[None] * 5, valid=True)
    fields.update(overrides)
    return SimpleNamespace(**fields)


@pytest.mark.parametrize("overrides,reason", [
    ({}, None),
    ({"score_minutes": RULES["budget_s"] / 60 + 0.01}, "over the lab's budget"),
    ({"division": "closed"}, "the lab is in the open division"),
    ({"valid": False, "errors": ["result_0.txt:9: something"], "score_minutes": None}, "checker says FAIL"),
])
def test_lab_verdict_applies_the_budget_division_and_checker(overrides, reason):
    report = SimpleNamespace(results=[_result(**overrides), _result(benchmark="nanogpt", division="closed")])
    (path, verdict, reasons), = check_lab.lab_verdicts(report, RULES)
    assert verdict == ("PASS" if reason is None else "FAIL")
    assert reason is None and not reasons or any(reason in r for r in reasons)


def test_a_lab_target_other_than_resnet18s_fails():
    report = SimpleNamespace(results=[_result()])
    (_, verdict, reasons), = check_lab.lab_verdicts(report, {**RULES, "target": 0.5})
    assert verdict == "FAIL" and "target" in reasons[0]


@pytest.mark.slow
def test_the_baseline_smoke_run_is_a_valid_open_division_resnet18_log(data_dir, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir), "SMOKE": "1", "OMP_NUM_THREADS": "1",
           "RESULTS_DIR": str(tmp_path / "results")}
    env.pop("SUBMISSION_DIVISION", None)
    proc = subprocess.run(["bash", str(LAB / "run_and_time.sh"), "3"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = checker.check(tmp_path / "results", smoke=True)
    result, = report.results
    assert result.division == "open" and result.benchmark == "resnet18"
    # one run of the five resnet18 requires: that is the only problem the checker finds
    assert all("result" in e and ("requires 5" in e or "missing result index" in e) for e in result.errors), \
        result.errors
    logged = (next((tmp_path / "results").rglob("result_0.txt"))).read_text()
    assert '"key": "global_batch_size", "value": 16' in logged

    # the same log in the closed division fails: the batch and the schedule are not resnet18's
    closed = tmp_path / "closed"
    shutil.copytree(tmp_path / "results", closed)
    system = next(closed.rglob("systems/*.json"))
    system.write_text(system.read_text().replace('"open"', '"closed"'))
    log = next(closed.rglob("result_0.txt"))
    log.write_text(log.read_text().replace('"submission_division", "value": "open"',
                                           '"submission_division", "value": "closed"'))
    errors = " ".join(checker.check(closed, smoke=True).results[0].errors)
    assert "global_batch_size" in errors
