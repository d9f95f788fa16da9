"""agent/rag: retrieval-augmented answering over TinyShakespeare's speeches, under LoadGen. The corpus and the
questions are tested on hand-made play text, the retrieval metrics on a hand-made ranking whose recall@k and MRR
are known; one smoke run (a 120-speech corpus, three questions) feeds the log and checker tests."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from common import benchmark
from common.bench import read_log
from conftest import REPO_ROOT, agent_smoke_run, baseline_dir, tampered_problems, workload_modules

WORKLOAD = REPO_ROOT / "agent" / "rag"
corpus, retrieval = workload_modules("rag", "corpus", "retrieval")

PLAY = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

TITUS:

MENENIUS:
I tell you, friends, most charitable care
Have the patricians of you. For your wants,
Your suffering in this dearth, you may as well
Strike at the heaven with your staves as lift them
Against the Roman state.

First Citizen:
Care for us! True, indeed!
They ne'er cared for us yet:
Your suffering in this dearth, you may as well
suffer us to famish.

KING RICHARD III:
Stay, madam; I must speak a word with you.
Now is the winter of our discontent
Made glorious summer by this sun of York;
And all the clouds that lour'd upon our house
"""


def test_speeches_are_split_at_blank_lines_and_empty_ones_skipped():
    speeches = corpus.split_speeches(PLAY)
    assert [s.speaker for s in speeches] == ["First Citizen", "All", "MENENIUS", "First Citizen", "KING RICHARD III"]
    assert speeches[1].passage == "All:\nSpeak, speak."
    assert len(speeches[2].lines) == 5 and speeches[4].lines[-1] == "And all the clouds that lour'd upon our house"


def test_a_question_line_occurs_in_exactly_one_speech():
    speeches = corpus.split_speeches(PLAY)
    # MENENIUS's third line is also First Citizen's: it would make two passages relevant, so it is never asked
    questions = corpus.make_questions(speeches, 1)
    assert questions == [corpus.Question('Who says: "Made glorious summer by this sun of York;"?', 4,
                                         "KING RICHARD III")]
    with pytest.raises(SystemExit, match="only 1 speeches qualify for a question, fewer than the 2 asked"):
        corpus.make_questions(speeches, 2)


def test_the_real_questions_are_unique_and_spread_over_the_corpus(data_dir):
    config = benchmark.load("rag")["sut"]
    speeches = corpus.read_speeches(data_dir, config["speeches"])
    questions = corpus.make_questions(speeches, config["tasks"])
    assert len(speeches) == config["speeches"] and len(questions) == config["tasks"]
    for question in questions:
        line = question.text[len('Who says: "'):-len('"?')]
        assert [i for i, s in enumerate(speeches) if line in (l.strip() for l in s.lines)] == [question.speech]
        assert speeches[question.speech].speaker == question.expected
    assert questions[-1].speech > len(speeches) * 3 // 4  # not all from the first scenes


def test_retrieval_metrics_of_a_known_ranking():
    # query 0: relevant passage ranked 1st; query 1: ranked 2nd; query 2: ranked 4th (outside the top 3)
    scores = torch.tensor([[0.9, 0.1, 0.2, 0.3],
                           [0.8, 0.7, 0.1, 0.0],
                           [0.9, 0.8, 0.7, 0.1]])
    metrics = retrieval.retrieval_metrics(scores, [0, 1, 3], k=3)
    assert metrics["recall_at_k"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4) / 3, abs=1e-6)
    assert retrieval.retrieval_metrics(scores, [0, 1, 3], k=1)["recall_at_k"] == pytest.approx(1 / 3, abs=1e-6)


@pytest.fixture(scope="module")
def rag_results(data_dir, smollm2_weights, tmp_path_factory):
    return agent_smoke_run("rag", data_dir, tmp_path_factory.mktemp("rag_results"))


def test_smoke_run_logs_retrieval_baselines_and_stages(rag_results):
    events, problems = read_log(baseline_dir(rag_results, "rag") / "result_0.txt")
    assert not problems, problems
    by_key = {e["key"]: e for e in events}
    assert by_key["result_validity"]["value"] == "VALID"
    assert by_key["run_stop"]["metadata"]["status"] == "success"
    smoke = benchmark.load("rag", smoke=True)["sut"]
    assert by_key["task_set"]["value"]["speeches"] == smoke["speeches"] == by_key["corpus_embedded"]["value"][
        "passages"]
    retrieved = by_key["retrieval"]["value"]
    assert retrieved["k"] == smoke["top_k"] and retrieved["queries"] == smoke["tasks"]
    assert by_key["recall_at_k"]["value"] == retrieved["recall_at_k"]  # the gate is the measured recall
    assert 0 <= retrieved["mrr"] <= 1 and set(by_key["baselines"]["value"]) == {"most_frequent_speaker",
                                                                                 "top1_passage_speaker"}
    statistics = [e for e in events if e["key"] == "sut_statistics"]
    assert [s["metadata"]["mode"] for s in statistics] == ["AccuracyOnly", "PerformanceOnly"]
    stages = statistics[1]["value"]["stage_latency_ms"]
    assert set(stages) == {"embed", "search", "generate"} and all(s["count"] >= 11 for s in stages.values())
    reference = json.loads((baseline_dir(rag_results, "rag") / "loadgen_0" / "accuracy" / "reference_outputs.json")
                           .read_text())
    assert {s["how"] for s in reference["samples"].values()} == {"contains"} and len(reference["samples"]) == 3


def test_checker_passes_the_real_smoke_results(rag_results):
    from submission_checker import checker

    report = checker.check(rag_results, smoke=True)
    assert report.valid, report.errors + [e for r in report.results for e in r.errors]


def test_checker_fails_an_answer_changed_after_grading(rag_results, tmp_path):
    def edit(path: Path):
        entries = json.loads(path.read_text())
        entries[0]["data"] = "First Citizen".encode().hex().upper()  # the right speaker of question 0, put in late
        path.write_text(json.dumps(entries))

    problems = tampered_problems(rag_results, tmp_path, "rag", "mlperf_log_accuracy.json", edit)
    assert "sample 0: LoadGen's answer is not the one graded" in problems, problems


def test_checker_recomputes_a_contains_score(rag_results, tmp_path):
    def edit(path: Path):
        document = json.loads(path.read_text())
        entry = document["samples"]["0"]
        entry["score"] = 1.0 - entry["score"]  # the grade of question 0 flipped, its answer unchanged
        path.write_text(json.dumps(document))

    reference = baseline_dir(rag_results, "rag") / "loadgen_0" / "accuracy" / "reference_outputs.json"
    right = json.loads(reference.read_text())["samples"]["0"]["score"]
    problems = tampered_problems(rag_results, tmp_path, "rag", "reference_outputs.json", edit)
    assert re.search(rf"sample 0: graded {1 - right:g}(\.0)?, but the answer scores {right:g}", problems), problems


def test_checker_fails_a_recall_below_its_gate(rag_results, tmp_path):
    from submission_checker import checker

    copy = tmp_path / "results"
    shutil.copytree(rag_results, copy)
    log = baseline_dir(copy, "rag") / "result_0.txt"
    lines = log.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if '"key": "recall_at_k"' in line:
            document = json.loads(line.split(":::MLLOG ", 1)[1])
            document["value"] = 0.25
            lines[i] = ":::MLLOG " + json.dumps(document) + "\n"
    log.write_text("".join(lines))
    report = checker.check(copy, smoke=True)
    problems = " | ".join(report.errors + [e for r in report.results for e in r.errors])
    assert not report.valid and "recall_at_k 0.25 does not meet its gate" in problems, problems
