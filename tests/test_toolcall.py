"""agent/toolcall: one structured tool call per question, under LoadGen. One smoke run (three tasks, replies cut
at 8 tokens, so every call is invalid and counted) feeds the checker tests; the parsing, tools and grading are
tested without the model in tests/test_agent_common.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import grading
from common.bench import read_log
from conftest import REPO_ROOT, agent_smoke_run, baseline_dir, tampered_problems

WORKLOAD = REPO_ROOT / "agent" / "toolcall"


@pytest.fixture(scope="module")
def toolcall_results(data_dir, smollm2_weights, tmp_path_factory):
    return agent_smoke_run("toolcall", data_dir, tmp_path_factory.mktemp("toolcall_results"))


def test_smoke_run_is_valid_and_counts_invalid_calls(toolcall_results):
    events, problems = read_log(baseline_dir(toolcall_results, "toolcall") / "result_0.txt")
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
    reference = json.loads((baseline_dir(toolcall_results, "toolcall") / "loadgen_0" / "accuracy" /
                            "reference_outputs.json").read_text())
    assert reference["format"] == grading.FORMAT and len(reference["samples"]) == 3


def test_checker_passes_the_real_smoke_results(toolcall_results):
    from submission_checker import checker

    report = checker.check(toolcall_results, smoke=True)
    assert report.valid, report.errors + [e for r in report.results for e in r.errors]


def test_checker_fails_an_answer_changed_after_grading(toolcall_results, tmp_path):
    def edit(path: Path):
        entries = json.loads(path.read_text())
        entries[0]["data"] = "79".encode().hex().upper()  # the right answer of task 0, put in after grading
        path.write_text(json.dumps(entries))

    problems = tampered_problems(toolcall_results, tmp_path, "toolcall", "mlperf_log_accuracy.json", edit)
    assert "sample 0: LoadGen's answer is not the one graded" in problems, problems


def test_checker_recomputes_an_exact_match_score(toolcall_results, tmp_path):
    def edit(path: Path):
        document = json.loads(path.read_text())
        document["samples"]["0"]["score"] = 1.0
        path.write_text(json.dumps(document))

    problems = tampered_problems(toolcall_results, tmp_path, "toolcall", "reference_outputs.json", edit)
    assert "sample 0: graded 1.0, but the answer scores 0" in problems, problems
