"""Hardening of the submission checker (issue #9): each test is one defect a hostile review found, built the way an
attacker (or an accident) would produce it, and each asserts a FAIL whose reason names file:line; never a crash,
never a pass. Fixtures come from submission_checker/synth.py."""
from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path

import pytest
import yaml

from common import benchmark
from submission_checker import checker, synth
from submission_checker.__main__ import main

REPO_ROOT = Path(__file__).resolve().parents[1]
NANOGPT = REPO_ROOT / "language" / "nanogpt"
MICRO_GCN = REPO_ROOT / "graph" / "micro_gcn"


# --- fixtures -----------------------------------------------------------------------------------------------------
def write_definitions(root: Path, source: Path = NANOGPT, quality: dict | None = None) -> Path:
    """A definitions root holding a copy of one workload's benchmark.yaml with reference fields that synthetic runs
    agree with; `quality` entries replace (None: remove) the definition's quality fields."""
    definition = yaml.safe_load((source / "benchmark.yaml").read_text())
    definition["reference_code"] = {"workload_sha256": synth.sha("workload"), "common_sha256": synth.sha("common")}
    for key, value in (quality or {}).items():
        if value is None:
            definition["quality"].pop(key, None)
        else:
            definition["quality"][key] = value
    definition["reference_convergence"] = {"samples_to_target": synth.reference_convergence(definition)}
    path = root / source.relative_to(REPO_ROOT) / "benchmark.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return root


def load(defs: Path, source: Path = NANOGPT) -> dict:
    return benchmark.load(defs / source.relative_to(REPO_ROOT))


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> Path:
    return write_definitions(tmp_path_factory.mktemp("defs"))


@pytest.fixture
def package(tmp_path, defs) -> Path:
    synth.write_result(tmp_path / "results", load(defs))
    return tmp_path / "results"


def logs_of(root: Path, benchmark_name: str = "nanogpt") -> Path:
    return root / "acme" / "results" / "dgx-a100" / benchmark_name


read_log, edit_log, each = synth.read_log, synth.edit_log, synth.each




def errors_of(rep) -> str:
    return "\n".join(rep.errors + [e for r in rep.results for e in r.errors])


def assert_fails_at_a_line(rep, pattern: str, file: str = "result_2.txt"):
    """Not valid, and some error reads '<...>/<file>:<line>: <...pattern...>'."""
    text = errors_of(rep)
    assert not rep.valid, "expected a FAIL"
    assert re.search(rf"{re.escape(file)}:\d+: .*{pattern}", text), text
    assert "internal error" not in text, text


# --- 1. samples_count must be step x global_batch_size ------------------------------------------------------------
def test_forged_samples_count_cannot_evade_the_convergence_check(tmp_path, defs):
    """Runs that converge far too fast, with each eval's samples_count inflated to look like the reference: the
    RCP-style test alone accepts them; samples_count must equal step x the logged global_batch_size."""
    definition = load(defs)
    typical = synth.typical_evals(definition)
    fast = max(1, typical - 3)
    synth.write_result(tmp_path, definition, evals_to_target=fast)
    scale = typical / fast
    for log in sorted(logs_of(tmp_path).glob("result_*.txt")):
        edit_log(log, each("eval_accuracy", lambda e: e["metadata"].update(
            samples_count=int(e["metadata"]["samples_count"] * scale))))
    rep = checker.check(tmp_path, definitions_root=defs)
    assert "converges significantly faster" not in errors_of(rep)  # the forgery fools the RCP test ...
    assert_fails_at_a_line(rep, r"samples_count \d+ is not step \d+ x global_batch_size 32", "result_1.txt")


def test_micro_gcn_single_final_eval_follows_the_same_rules(tmp_path):
    """micro_gcn evaluates its test metric once, at the step where early stopping ended training (no
    eval_every_steps); one step is one epoch of the 140 training nodes, so samples_count = step x 140 still holds,
    and quality.max_evaluations: 1 bounds the evals."""
    defs = write_definitions(tmp_path / "defs", MICRO_GCN, quality={"test_evaluations": None, "max_evaluations": 1})
    definition = load(defs, MICRO_GCN)
    assert "eval_every_steps" not in definition["quality"]
    root = tmp_path / "results"
    synth.write_result(root, definition)
    rep = checker.check(root, definitions_root=defs)
    assert rep.valid, errors_of(rep)
    log = logs_of(root, "micro_gcn") / "result_2.txt"
    original = log.read_text()
    edit_log(log, each("eval_accuracy", lambda e: e["metadata"].update(samples_count=28000)))
    assert_fails_at_a_line(checker.check(root, definitions_root=defs),
                           r"samples_count 28000 is not step \d+ x global_batch_size 140")
    log.write_text(original)
    edit_log(log, each("eval_accuracy", lambda e: e["metadata"].update(step=201, samples_count=201 * 140)))
    assert_fails_at_a_line(checker.check(root, definitions_root=defs),
                           r"1 eval off the definition's cadence \(by max_steps 200\): step 201")


def _swap_first_two_evals(events):
    first, second = [e for e in events if e["key"] == "eval_accuracy"][:2]
    first["metadata"], second["metadata"] = second["metadata"], first["metadata"]


@pytest.mark.parametrize("edit, reason", [
    (_swap_first_two_evals, r"eval_accuracy at step 100 comes after the eval at step 200 \(line \d+\): steps go back"),
    (each("eval_accuracy", lambda e: e["metadata"].update(epoch_num=3)),
     r"epoch_num 3 is not samples_count 3200 // train_samples 1000000 = 0 \(and \d+ more evals\)"),
], ids=["steps going back", "forged epoch_num"])
def test_eval_sequence_must_be_consistent(edit, reason, package, defs):
    edit_log(logs_of(package) / "result_2.txt", edit)
    assert_fails_at_a_line(checker.check(package, definitions_root=defs), reason)


# --- 2. every quality eval names its step -------------------------------------------------------------------------
def _set_step(step):
    def change(e):
        if step is KeyError:
            e["metadata"].pop("step")
        else:
            e["metadata"]["step"] = step
    return each("eval_accuracy", change)


@pytest.mark.parametrize("step", [KeyError, None, "100", 100.0, True, 0, -100, [100]],
                         ids=["missing", "null", "string", "float", "bool", "zero", "negative", "list"])
def test_eval_without_an_integer_step_fails(step, package, defs):
    edit_log(logs_of(package) / "result_2.txt", _set_step(step))
    assert_fails_at_a_line(checker.check(package, definitions_root=defs), "step")


# --- 3. seeds are integers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", ["2", None, 2.0, True, [2], {"seed": 2}],
                         ids=["string", "null", "float", "bool", "list", "object"])
def test_seed_must_be_an_integer(seed, package, defs):
    edit_log(logs_of(package) / "result_2.txt", each("seed", lambda e: e.update(value=seed)))
    assert_fails_at_a_line(checker.check(package, definitions_root=defs), "seed .* is not an integer")


def test_equal_integer_seeds_are_duplicates(package, defs):
    edit_log(logs_of(package) / "result_4.txt", each("seed", lambda e: e.update(value=2)))
    assert "result_4.txt:8: seed 2 already used by" in errors_of(checker.check(package, definitions_root=defs))


# --- 4. plausible clocks, and no arithmetic on a log value can raise ----------------------------------------------
def _stop_at(time_ms):
    return each("run_stop", lambda e: e.update(time_ms=time_ms))


def _last_eval(change):
    def edit(events):
        change([e for e in events if e["key"] == "eval_accuracy"][-1])
    return edit


ABSURD = {
    # name: (edit of result_2.txt, expected reason after file:line)
    "run_stop at 1e300 ms": (_stop_at(1e300), r"time_ms 1e\+300 is not a plausible"),
    "run_stop beyond float range": (_stop_at(10 ** 400), r"time_ms 1000000000.* is not a plausible"),
    "clock in 1970": (each("run_stop", lambda e: e.update(time_ms=5000)), r"time_ms 5000 is not a plausible"),
    "run lasting 10 days": (lambda ev: _stop_at(ev[0]["time_ms"] + 10 * 86_400_000)(ev), "after the log's first"),
    "samples_count beyond float range": (_last_eval(lambda e: e["metadata"].update(samples_count=10 ** 400)),
                                         "samples_count"),
    "eval value beyond float range": (_last_eval(lambda e: e.update(value=10 ** 400)), "is not a number"),
    "eval value 1e308": (_last_eval(lambda e: e.update(value=1e308)), "run_stop says success but no eval_accuracy"),
    "hyperparameter beyond float range": (each("opt_base_learning_rate", lambda e: e.update(value=10 ** 400)),
                                          "opt_base_learning_rate"),
    "global_batch_size beyond float range": (each("global_batch_size", lambda e: e.update(value=10 ** 400)),
                                             "global_batch_size"),
    "step beyond float range": (_last_eval(lambda e: e["metadata"].update(step=10 ** 400)), "step"),
}


@pytest.mark.parametrize("name", ABSURD)
def test_absurd_numbers_fail_cleanly_with_a_report(name, package, defs, tmp_path, capsys):
    edit, reason = ABSURD[name]
    edit_log(logs_of(package) / "result_2.txt", edit)
    out = tmp_path / "report"
    code = main([str(package), "--definitions", str(defs), "--out", str(out), "--quiet"])
    assert code == 1
    assert (out / "report.json").is_file()
    document = json.loads((out / "report.json").read_text())
    assert document["valid"] is False
    assert_fails_at_a_line(checker.check(package, definitions_root=defs), reason)


def test_extreme_finite_eval_values_still_give_every_report(package, defs, tmp_path):
    """Finite but absurd eval values in several runs (matplotlib cannot scale an axis over +-1.7e308): a FAIL with
    every output written, the plot left out rather than the reports lost."""
    for name, value in (("result_2.txt", 1.7e308), ("result_3.txt", -1.7e308), ("result_4.txt", 5e-324)):
        edit_log(logs_of(package) / name, _last_eval(lambda e, v=value: e.update(value=v)))
    out = tmp_path / "report"
    assert main([str(package), "--definitions", str(defs), "--out", str(out), "--quiet"]) == 1
    assert all((out / name).is_file() for name in ("report.json", "summary.csv", "summary.md", "summary.html"))


# --- 5. duplicate evals; memory stays bounded ---------------------------------------------------------------------
@pytest.mark.slow
def test_repeated_evals_at_one_step_fail_in_bounded_memory(package, defs):
    """200,000 eval_accuracy lines at one step: a FAIL naming the first repeat, and the checker keeps only what its
    rules need (the evals a valid run can have, plus a margin), whatever the log's length. (About 25 s: tracemalloc
    slows the 200,000 JSON parses six-fold.)"""
    assert checker.check(package, definitions_root=defs, jobs=1).valid  # warm: modules, schemas, definitions
    log = logs_of(package) / "result_2.txt"
    events = read_log(log)
    first = next(i for i, e in enumerate(events) if e["key"] == "eval_accuracy")
    with open(log, "w") as f:
        for e in events[:first + 1]:
            f.write(synth.TOKEN + json.dumps(e) + "\n")
        repeat = synth.TOKEN + json.dumps(events[first]) + "\n"
        for _ in range(200_000):
            f.write(repeat)
        for e in events[first + 1:]:
            f.write(synth.TOKEN + json.dumps(e) + "\n")
    tracemalloc.start()
    try:
        rep = checker.check(package, definitions_root=defs, jobs=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_fails_at_a_line(rep, rf"eval_accuracy at step \d+ repeats the eval at line {first + 1}")
    assert peak < 16 * 2 ** 20, f"peak {peak / 2 ** 20:.1f} MiB"  # the unbounded checker held ~1 GB per 1M lines
    run = next(r for r in rep.results[0].runs if r.file.endswith("result_2.txt"))
    assert len(run.evals) <= 50 and run.evals_not_kept > 199_000


# --- 6. two runs in one LOGFILE -------------------------------------------------------------------------------------
def _two_runs(definition):
    a = synth.run_events(definition, seed=2, start_ms=1_700_000_000_000)
    b = synth.run_events(definition, seed=6, start_ms=1_700_000_001_500)  # started 1.5 s later
    return a, b


SPLICES = {
    "interleaved line by line": lambda a, b: [e for pair in zip(a, b) for e in pair] + a[len(b):] + b[len(a):],
    "concatenated": lambda a, b: a + b,
    "merged in time order": lambda a, b: sorted(a + b, key=lambda e: e["time_ms"]),
}


@pytest.mark.parametrize("name", SPLICES)
def test_two_runs_spliced_into_one_log_fail(name, package, defs):
    """Two runs writing the same LOGFILE: the repeated init_start (and seed, submission_*, run_start, run_stop) is
    reported at the line where the second run shows up."""
    a, b = _two_runs(load(defs))
    synth.write_log(logs_of(package) / "result_2.txt", SPLICES[name](a, b))
    rep = checker.check(package, definitions_root=defs)
    assert_fails_at_a_line(rep, r"(init_start|seed|submission_\w+|run_start|run_stop) logged again \(first at line")
    assert "one log holds one run" in errors_of(rep)


# --- 7. MLCommons mode accepts what the official tools accept ---------------------------------------------------------
REPEATED = ("submission_benchmark", "submission_org", "submission_division", "submission_status",
            "submission_platform", "seed", "global_batch_size", "opt_base_learning_rate", "train_samples")
EMPTY_METADATA = ("init_start", "submission_benchmark", "submission_org", "submission_division", "seed",
                  "global_batch_size", "init_stop", "run_start")


def _official_shapes(events):
    """What real v5.1 logs do: repeat submission_* and hyperparameter lines with identical values, and log some
    lines with metadata {}."""
    out = []
    for e in events:
        if e["key"] in EMPTY_METADATA:
            e = {**e, "metadata": {}}
        out.append(e)
        if e["key"] in REPEATED:
            out.append({**e, "time_ms": e["time_ms"]})
    return out


def _write_org(root: Path, edit=None, files=()) -> Path:
    org = synth.write_mlcommons_org(root, minutes={"resnet": [12.1, 11.8, 12.6, 12.0, 13.2]})
    for i in range(1, 6):
        events = synth.mlcommons_run("resnet", seed=100 + i - 1, start_ms=1_710_000_000_000 + (i - 1) * 10_000_000,
                                     minutes=[12.1, 11.8, 12.6, 12.0, 13.2][i - 1], division="open")
        if edit and (not files or i in files):
            events = edit(events)
        synth.write_log(org / "results" / "example_n8" / "resnet" / f"result_{i}.txt", events, noise=True)
    return org


def test_mlcommons_mode_accepts_repeated_identical_keys_and_empty_metadata(tmp_path):
    org = _write_org(tmp_path / "results", _official_shapes)
    rep = checker.check(tmp_path / "results", mlcommons=True)
    result = rep.results[0]
    assert result.valid, errors_of(rep)
    assert not [run for run in result.runs if run.failed], result.notes
    assert any("logged again with the same value" in w for w in result.warnings), result.warnings
    rs = pytest.importorskip("mlperf_logging.result_summarizer.result_summarizer")
    expected, _, _ = rs._compute_strong_score_standalone(
        "resnet", "example_n8", False, str(org / "results" / "example_n8" / "resnet"), "training", "4.0.0",
        {"submitter": "Example"})
    assert result.score_minutes == pytest.approx(expected)


def test_mlcommons_mode_drops_a_repeated_key_with_another_value(tmp_path):
    def other_division(events):
        line = next(e for e in events if e["key"] == "submission_org")
        i = events.index(line)
        return events[:i + 1] + [{**line, "value": "Other"}] + events[i + 1:]

    _write_org(tmp_path / "results", other_division, files=(2,))
    result = checker.check(tmp_path / "results", mlcommons=True).results[0]
    failed = [run for run in result.runs if run.failed]
    assert [run.file.rsplit("/", 1)[-1] for run in failed] == ["result_2.txt"], result.notes
    assert any(re.search(r"result_2\.txt:\d+: submission_org logged again with another value", n)
               for n in result.notes), result.notes


def test_suite_mode_stays_strict_on_repeated_keys_and_empty_metadata(package, defs):
    log = logs_of(package) / "result_2.txt"
    original = log.read_text()
    edit_log(log, lambda ev: [x for e in ev for x in ([e, e] if e["key"] == "submission_org" else [e])])
    assert_fails_at_a_line(checker.check(package, definitions_root=defs), "submission_org logged again")
    log.write_text(original)
    edit_log(log, each("seed", lambda e: e.update(metadata={})))
    assert_fails_at_a_line(checker.check(package, definitions_root=defs), "schema: 'file' is a required property")


# --- 8. quality.max_evaluations ---------------------------------------------------------------------------------------
def test_max_evaluations_bounds_the_quality_evals(tmp_path):
    """quality.max_evaluations: N (micro_gcn: 1) fails a run with more quality evals, at the first extra one."""
    most = synth.typical_evals(load(write_definitions(tmp_path / "plain"))) - 1
    defs = write_definitions(tmp_path / "defs", quality={"max_evaluations": most})
    definition = load(defs)
    root = tmp_path / "results"
    synth.write_result(root, definition, evals_to_target=most)
    rep = checker.check(root, definitions_root=defs)
    assert rep.valid, errors_of(rep)
    synth.write_result(root, definition, evals_to_target=most + 1)
    rep = checker.check(root, definitions_root=defs)
    line = next(i for i, e in enumerate(read_log(logs_of(root) / "result_1.txt"), start=1)
                if e["key"] == "eval_accuracy" and e["metadata"]["step"] == (most + 1) * definition["quality"][
                    "eval_every_steps"])
    assert_fails_at_a_line(rep, f"eval_accuracy eval number {most + 1}; the definition allows at most {most} "
                                r"\(quality.max_evaluations\)", "result_1.txt")
    assert f"result_1.txt:{line}: eval_accuracy eval number {most + 1}" in errors_of(rep)
