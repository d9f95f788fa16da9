"""agent/codegen: MBPP programs written by SmolLM2 and run against their asserts in the sandbox, under LoadGen.
The prompt and the grading harness are tested on MBPP itself (the reference solutions pass, wrong ones fail); one
smoke run (three tasks, programs cut at 8 tokens, so every one fails its tests) feeds the checker tests. The
sandbox's containment is tested in tests/test_codegen_sandbox.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import grading
from common.bench import read_log
from conftest import REPO_ROOT, agent_smoke_run, baseline_dir, tampered_problems

from agent.codegen import sandbox, task_set

WORKLOAD = REPO_ROOT / "agent" / "codegen"


@pytest.fixture(scope="module")
def mbpp(data_dir) -> dict[int, task_set.Task]:
    return task_set.read_mbpp(data_dir)


# --- the tasks and the prompt -------------------------------------------------------------------------------------
def test_tasks_are_the_test_split_in_task_id_order(mbpp):
    tasks = task_set.first_test_tasks(mbpp, 500)
    assert [t.task_id for t in tasks] == list(range(11, 511))
    assert [t.task_id for t in task_set.first_test_tasks(mbpp, 3)] == [11, 12, 13]
    with pytest.raises(ValueError, match="MBPP's test split has 500 problems: tasks must be 1 to 500, not 501"):
        task_set.first_test_tasks(mbpp, 501)


def test_prompt_is_the_papers_three_shots_then_the_task_up_to_begin(mbpp):
    task = mbpp[11]
    text = task_set.prompt(task, mbpp)
    intro = "You are an expert Python programmer, and here is your task: "
    assert text.count(intro) == 4 and text.count("[BEGIN]\n") == 4 and text.count("\n[DONE]\n") == 3
    assert "\r" not in text  # MBPP's reference code has \r\n line ends
    parts = text.split(intro)[1:]
    for part, shot in zip(parts[:3], (2, 3, 4)):
        example = mbpp[shot]
        assert part == (f"{example.text} Your code should pass these tests:\n\n" + "\n".join(example.test_list) +
                        f"\n[BEGIN]\n{example.code}\n[DONE]\n")
    assert parts[3] == f"{task.text} Your code should pass these tests:\n\n" + "\n".join(task.test_list) + \
        "\n[BEGIN]\n"
    assert text.endswith("[BEGIN]\n")


def test_the_solution_is_the_completion_before_done():
    assert task_set.solution_of("def f():\n    return 1\n[DONE]\nYou are an expert") == "def f():\n    return 1\n"
    assert task_set.solution_of("def f(:") == "def f(:\n"  # cut at max_new_tokens: kept, and fails its tests


# --- grading by execution -----------------------------------------------------------------------------------------
def test_reference_solutions_pass_and_wrong_ones_fail(mbpp):
    for task in task_set.first_test_tasks(mbpp, 5):
        verdict = sandbox.run_tests(task.code, list(task.test_list), task.test_setup_code)
        assert verdict.passed and verdict.outcome == "passed", (task.task_id, verdict)
    task = mbpp[11]  # remove the first and last occurrence of a character: returning the string unchanged is wrong
    wrong = sandbox.run_tests("def remove_Occ(s, ch):\n    return s\n", list(task.test_list), task.test_setup_code)
    assert (wrong.passed, wrong.outcome, wrong.detail) == (False, "failed", "AssertionError")
    empty = sandbox.run_tests("pass\n", list(task.test_list), task.test_setup_code)
    assert not empty.passed and "NameError" in empty.detail


def test_no_sandbox_stops_the_run_in_one_sentence_before_the_model_loads(data_dir, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path / "empty"), "DATA_DIR": str(data_dir)}  # no bwrap on PATH
    proc = subprocess.run([sys.executable, str(WORKLOAD / "serve.py"), "--variant", "baseline", "--seed", "1",
                           "--smoke", "--log-file", str(tmp_path / "result_0.txt")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == ("error: agent/codegen runs generated code inside bubblewrap, "
                                                    "which is not installed: apt-get install bubblewrap"), proc.stderr
    assert not (tmp_path / "result_0.txt").exists()  # stopped before the log's first line
    assert not (tmp_path / "loadgen_0").exists()


# --- the smoke run and the checker --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def codegen_results(data_dir, smollm2_weights, tmp_path_factory):
    return agent_smoke_run("codegen", data_dir, tmp_path_factory.mktemp("codegen_results"))


def test_smoke_run_is_valid_and_grades_by_running_the_code(codegen_results):
    events, problems = read_log(baseline_dir(codegen_results, "codegen") / "result_0.txt")
    assert not problems, problems
    by_key = {e["key"]: e for e in events}
    assert by_key["result_validity"]["value"] == "VALID"
    assert by_key["run_stop"]["metadata"]["status"] == "success"
    assert by_key["task_set"]["value"]["tasks"] == 3 and by_key["task_set"]["value"]["task_ids"] == [11, 13]
    statistics = [e for e in events if e["key"] == "sut_statistics"]
    assert [s["metadata"]["mode"] for s in statistics] == ["AccuracyOnly", "PerformanceOnly"]
    for stats in (s["value"] for s in statistics):
        assert set(stats["stage_latency_ms"]) == {"generate", "execute"}
        assert stats["model_calls"] == stats["tasks"] and stats["stage_latency_ms"]["execute"]["p50"] > 0
    assert statistics[1]["value"]["tasks"] >= 11
    assert by_key["accuracy"]["value"] == 0.0  # 8 tokens cannot hold a passing program
    accuracy = baseline_dir(codegen_results, "codegen") / "loadgen_0" / "accuracy"
    reference = json.loads((accuracy / "reference_outputs.json").read_text())
    answers = {e["qsl_idx"]: bytes.fromhex(e["data"]) for e in json.loads((accuracy / "mlperf_log_accuracy.json")
                                                                          .read_text())}
    assert reference["format"] == grading.FORMAT and len(reference["samples"]) == 3
    for index, entry in reference["samples"].items():
        assert entry["how"] == "executed" and entry["expected"] is None and entry["score"] == 0.0
        assert entry["detail"].startswith("failed: ")  # the sandbox's verdict: a cut program does not even parse
        assert entry["answer_sha256"] == grading.sha256_hex(answers[int(index)])
        assert answers[int(index)].decode().startswith("def ")  # the code, as the model began it


def test_checker_passes_the_real_smoke_results(codegen_results):
    from submission_checker import checker

    report = checker.check(codegen_results, smoke=True)
    assert report.valid, report.errors + [e for r in report.results for e in r.errors]


def test_checker_fails_code_changed_after_it_was_executed(codegen_results, tmp_path, mbpp):
    def edit(path: Path):
        entries = json.loads(path.read_text())
        entries[0]["data"] = mbpp[11].code.encode().hex().upper()  # the reference solution, put in after grading
        path.write_text(json.dumps(entries))

    problems = tampered_problems(codegen_results, tmp_path, "codegen", "mlperf_log_accuracy.json", edit)
    assert "sample 0: LoadGen's answer is not the one graded" in problems, problems


def _score_flipped(path: Path):
    document = json.loads(path.read_text())
    document["samples"]["0"]["score"] = 1.0
    path.write_text(json.dumps(document))


def test_checker_fails_an_executed_score_flipped_after_the_run(codegen_results, tmp_path):
    # the file's sha256 in the log catches the edit first ...
    problems = tampered_problems(codegen_results, tmp_path / "plain", "codegen", "reference_outputs.json",
                                 _score_flipped, rehash=False)
    assert "reference_outputs.json" in problems and "the file changed after the run" in problems, problems
    # ... and with the hash forged too, the mean grade no longer equals the accuracy the log states. An executed
    # score cannot be recomputed without running the code: the checker takes it as bound to its answer's sha256
    problems = tampered_problems(codegen_results, tmp_path / "rehashed", "codegen", "reference_outputs.json",
                                 _score_flipped)
    assert "accuracy 0.0 is not the 0.333333333 recomputed" in problems, problems
