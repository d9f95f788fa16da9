"""The submission checker on inference results (kind: inference, MLPerf LoadGen): a valid folder passes with the
median of its runs as the score; each tampering, alone, fails with its reason; malformed LoadGen files are reported
with file:line and never crash the checker nor pass.

The fixtures run real LoadGen (mlperf_loadgen) with a trivial system under test that answers fixed int32 tokens
(submission_checker/synth.py), against temporary definitions: a copy of nanogpt (the training benchmark whose
checkpoint is served) and tiny_infer, an inference definition with three variants whose LoadGen runs take ~0.1 s.
"""
from __future__ import annotations

import copy
import json
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

pytest.importorskip("mlperf_loadgen")

from common import benchmark, loadgen  # noqa: E402
from submission_checker import checker, report, schema, synth  # noqa: E402
from submission_checker.__main__ import main  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
NANOGPT = REPO_ROOT / "language" / "nanogpt" / "benchmark.yaml"
BENCHMARK = "tiny_infer"
# Each variant: its definition entry and how long the trivial SUT takes per sample (so LoadGen judges it VALID).
VARIANTS = {
    "offline": ({"scenario": "Offline", "metric": "tokens_per_second", "direction": "maximize", "target_qps": 1000,
                 "min_duration_ms": 100, "min_query_count": 1, "use_token_latencies": True}, 0.001),
    "server": ({"scenario": "Server", "metric": "tokens_per_second", "direction": "maximize", "target_qps": 400,
                "target_latency_ms": 50, "target_latency_percentile": 90, "ttft_latency_ms": 50,
                "tpot_latency_ms": 20, "min_duration_ms": 100, "min_query_count": 64, "use_token_latencies": True},
               0.0),
    "singlestream": ({"scenario": "SingleStream", "metric": "p90_latency_ms", "direction": "minimize",
                      "target_latency_ms": 2, "min_duration_ms": 100, "min_query_count": 64}, 0.002),
}
RUNS = 3


# --- fixtures ---------------------------------------------------------------------------------------------------
def write_definitions(root: Path) -> Path:
    nanogpt = yaml.safe_load(NANOGPT.read_text())
    infer = {
        "name": BENCHMARK, "suite": "language", "kind": "inference", "description": "checker tests",
        "dataset": nanogpt["dataset"],
        "checkpoint": {"training_benchmark": "nanogpt", "reference_seed": 1, "file": "checkpoints/nanogpt_seed1.pt"},
        "sut": {"prompts": 8},
        "quality": {"metric": "greedy_token_agreement", "description": "every answer token as the reference",
                    "log_key": "accuracy", "target": 1.0, "direction": "maximize"},
        "performance": {name: settings for name, (settings, _) in VARIANTS.items()},
        "required_runs": RUNS, "init_time_limit_s": 600,
        "reference_code": {"workload_sha256": synth.sha(BENCHMARK), "common_sha256": synth.sha("common")},
    }
    for name, definition in (("nanogpt", nanogpt), (BENCHMARK, infer)):
        path = root / "language" / name / "benchmark.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return root


def definitions(defs: Path) -> tuple[dict, dict]:
    return benchmark.load(defs / "language" / BENCHMARK), benchmark.load(defs / "language" / "nanogpt")


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> Path:
    return write_definitions(tmp_path_factory.mktemp("defs"))


@pytest.fixture(scope="module")
def valid_tree(tmp_path_factory, defs) -> Path:
    """acme/dgx-a100/tiny_infer/{offline,server,singlestream}, 3 real LoadGen runs each (built once)."""
    root = tmp_path_factory.mktemp("valid") / "results"
    definition, training = definitions(defs)
    for name, (_, service_s) in VARIANTS.items():
        synth.write_inference_result(root, definition, name, training, service_s=service_s, seeds=range(1, RUNS + 1))
    return root


@pytest.fixture
def package(tmp_path, valid_tree) -> Path:
    """A fresh copy of the valid tree, to tamper with."""
    return Path(shutil.copytree(valid_tree, tmp_path / "results"))


def variant_dir(root: Path, variant: str) -> Path:
    return root / "acme" / "results" / "dgx-a100" / BENCHMARK / variant


def check(root: Path, defs: Path, **kwargs) -> checker.Report:
    return checker.check(root, definitions_root=defs, **kwargs)


def result_of(rep: checker.Report, variant: str) -> checker.Result:
    return next(r for r in rep.results if r.variant == variant)


def errors_of(rep: checker.Report) -> str:
    return "\n".join(rep.errors + [e for r in rep.results for e in r.errors])


def rerun(root: Path, defs: Path, variant: str, index: int, settings: dict | None = None,
          service_s: float | None = None, **event_kwargs) -> None:
    """Run LoadGen again for one run of a variant (other settings, another SUT speed) and write its log anew."""
    definition, training = definitions(defs)
    folder = variant_dir(root, variant)
    shutil.rmtree(folder / f"loadgen_{index}")
    synth.write_loadgen_runs(folder / f"loadgen_{index}", settings or definition["performance"][variant], 8,
                             VARIANTS[variant][1] if service_s is None else service_s)
    events = synth.inference_events(definition, variant, index, folder / f"loadgen_{index}", training, **event_kwargs)
    synth.write_log(folder / f"result_{index}.txt", events)


def rehash(root: Path, variant: str, index: int) -> None:
    """What a forger does after editing LoadGen's files: record their new sha256 in the log."""
    folder = variant_dir(root, variant)
    hashes = synth.loadgen_files(folder / f"loadgen_{index}")
    synth.edit_log(folder / f"result_{index}.txt", synth.each("loadgen_files", lambda e: e.update(value=hashes)))


def set_value(key, value=None, metadata=None):
    def change(e):
        if value is not None:
            e["value"] = value
        e["metadata"].update(metadata or {})
    return synth.each(key, change)


def detail_value(path: Path, key: str):
    """A value of a detail log, read here without common.loadgen (an independent reading for the score test)."""
    for line in path.read_text().splitlines():
        event = json.loads(line.split(":::MLLOG ", 1)[1])
        if event["key"] == key:
            return event["value"]
    raise KeyError(key)


# --- a valid folder ---------------------------------------------------------------------------------------------
def test_a_valid_folder_passes_with_the_median_score(package, defs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(package), "--definitions", str(defs), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "VALID: 3 of 3 benchmark results pass" in text
    document = json.loads((out / "report.json").read_text())
    jsonschema.validate(document, json.loads((schema.SCHEMA_DIR / "report.schema.json").read_text()))
    for name, (settings, _) in VARIANTS.items():
        r = next(r for r in document["results"] if r["variant"] == name)
        assert (r["verdict"], r["kind"], r["benchmark"], r["scenario"]) == ("PASS", "inference", BENCHMARK,
                                                                            settings["scenario"])
        assert r["valid_runs"] == RUNS and r["errors"] == [] and r["score_minutes"] is None
        key, factor = {"offline": ("result_tokens_per_second", 1.0),
                       "server": ("result_completed_tokens_per_second", 1.0),
                       "singlestream": ("result_90.00_percentile_latency_ns", 1e-6)}[name]
        values = [detail_value(variant_dir(package, name) / f"loadgen_{i}" / "performance" / loadgen.DETAIL, key)
                  * factor for i in range(1, RUNS + 1)]
        assert [run["value"] for run in r["runs"]] == pytest.approx(values)
        assert r["score"] == pytest.approx(statistics.median(values))
        assert r["cv"] == pytest.approx(statistics.pstdev(values) / statistics.fmean(values))
        assert (r["metric"], r["unit"], r["direction"]) == (settings["metric"], synth_unit(settings["metric"]),
                                                           settings["direction"])
        assert f"PASS  acme/dgx-a100/{BENCHMARK}/{name}  division closed  score " in text
        assert all(run["latency"]["latency_ns"]["90.00"] > 0 for run in r["runs"])
    # variants are told apart in every table; the HTML plots each variant's latency percentiles
    csv = (out / "summary.csv").read_text().splitlines()
    assert csv[0].startswith("submitter,system,benchmark,variant,division,verdict,score_minutes,metric,score,unit,cv")
    assert {line.split(",")[3] for line in csv[1:]} == set(VARIANTS)
    assert all(f"| {BENCHMARK} | {name} |" in (out / "summary.md").read_text() for name in VARIANTS)
    html = (out / "summary.html").read_text()
    assert "<h2>Latency</h2>" in html and html.count("latency' src='data:image/png;base64,") == len(VARIANTS)


def synth_unit(metric: str) -> str:
    return {"tokens_per_second": "tokens/s", "p90_latency_ms": "ms"}[metric]


def test_the_report_schema_fast_path_agrees_on_inference_reports(package, defs):
    """The translated fast path of report.schema.json (schema.py) accepts exactly what jsonschema accepts, on an
    inference report and mutations of its runs' latency percentiles."""
    rng = random.Random(0)
    document = report.to_json(check(package, defs))
    compiled = schema.load("report")
    assert compiled.fast(document)
    for _ in range(300):
        mutated = copy.deepcopy(document)
        run = rng.choice(rng.choice(mutated["results"])["runs"])
        panel = run["latency"].setdefault(rng.choice(["latency_ns", "first_token_ns", "time_per_output_token_ns",
                                                      "other_ns"]), {})
        panel[rng.choice(["90.00", "99.00", "x"])] = rng.choice([1, 2.5, "1", None, True, [], {}])
        if rng.random() < 0.2:
            run["latency"] = rng.choice([None, [], "x", {}])
        assert compiled.fast(mutated) == compiled.validator.is_valid(mutated), run["latency"]


def test_the_checker_needs_neither_torch_nor_loadgen(package, defs):
    """Reviewers check inference results with the checker's requirements alone: LoadGen's files are read as text."""
    code = ("import sys\n"
            "for name in ('torch', 'mlperf_loadgen', 'mlperf_logging', 'transformers'):\n"
            "    sys.modules[name] = None\n"
            "from submission_checker import checker\n"
            f"rep = checker.check({str(package)!r}, definitions_root={str(defs)!r})\n"
            "assert rep.valid, [e for r in rep.results for e in r.errors]\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- each tampering, alone, fails with its reason ---------------------------------------------------------------
def _edit_summary(label, new):
    def tamper(root, defs):
        path = variant_dir(root, "offline") / "loadgen_1" / "performance" / loadgen.SUMMARY
        lines = path.read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.split(":")[0].strip() == label)
        lines[at] = f"{lines[at].split(':')[0]}: {new(lines[at].split(':', 1)[1].strip())}"
        path.write_text("\n".join(lines) + "\n")
        rehash(root, "offline", 1)
    return tamper


def _huge_detail_figure(root, defs):
    """An integer beyond float range where LoadGen writes the throughput (arithmetic on it would overflow)."""
    path = variant_dir(root, "offline") / "loadgen_1" / "performance" / loadgen.DETAIL
    key = '"key": "result_tokens_per_second", "value": '
    text = path.read_text()
    at = text.index(key) + len(key)
    path.write_text(text[:at] + "1" + "0" * 400 + text[text.index(",", at):])
    rehash(root, "offline", 1)


def _invalid_to_valid_in_the_summary(root, defs):
    rerun(root, defs, "offline", 2, service_s=0.0)  # an Offline SUT that answers at once: min duration not met
    path = variant_dir(root, "offline") / "loadgen_2" / "performance" / loadgen.SUMMARY
    path.write_text(path.read_text().replace("Result is : INVALID", "Result is : VALID"))
    rehash(root, "offline", 2)


def _invalid_run(root, defs):
    rerun(root, defs, "offline", 2, service_s=0.0)  # the log says aborted, as the harness writes it


def _invalid_run_says_success(root, defs):
    rerun(root, defs, "offline", 2, service_s=0.0)
    synth.edit_log(variant_dir(root, "offline") / "result_2.txt", set_value("run_stop", metadata={"status": "success"}))


def _invalid_to_valid_in_detail_and_summary(root, defs):
    rerun(root, defs, "offline", 2, service_s=0.0)
    performance = variant_dir(root, "offline") / "loadgen_2" / "performance"
    for name, old, new in ((loadgen.DETAIL, '"value": "INVALID"', '"value": "VALID"'),
                           (loadgen.SUMMARY, "Result is : INVALID", "Result is : VALID")):
        (performance / name).write_text((performance / name).read_text().replace(old, new))
    rehash(root, "offline", 2)
    synth.edit_log(variant_dir(root, "offline") / "result_2.txt", set_value("result_validity", "VALID"))


def _remove(relative):
    def tamper(root, defs):
        (variant_dir(root, "server") / relative).unlink()
    return tamper


def _scenario_mismatch(root, defs):
    """LoadGen ran the Server variant's run 1 as Offline; the log still claims Server."""
    rerun(root, defs, "server", 1, settings=VARIANTS["offline"][0], service_s=0.001)


def _log_result_differs(root, defs):
    synth.edit_log(variant_dir(root, "server") / "result_2.txt",
                   set_value("result_completed_tokens_per_second", 123456.0))


def _answer_changed(root, defs):
    path = variant_dir(root, "server") / "loadgen_3" / "accuracy" / loadgen.ACCURACY
    path.write_text(path.read_text().replace('"data" : "', '"data" : "09000000', 1))


def _unlisted(root, defs):
    path = variant_dir(root, "singlestream") / "loadgen_1" / "accuracy" / loadgen.SUMMARY
    path.write_text(path.read_text() + "\n")


def _malformed_detail_line(root, defs):
    path = variant_dir(root, "singlestream") / "loadgen_2" / "performance" / loadgen.DETAIL
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + ["garbage, not an MLLOG line"] + lines[2:]) + "\n")


def _rename_variant(root, defs):
    variant_dir(root, "server").rename(variant_dir(root, "servr"))


def _missing_run(root, defs):
    (variant_dir(root, "server") / "result_3.txt").unlink()
    shutil.rmtree(variant_dir(root, "server") / "loadgen_3")


def _loadgen_error(root, defs):
    path = variant_dir(root, "offline") / "loadgen_3" / "performance" / loadgen.DETAIL
    error = {"key": "error_runtime", "value": "the SUT answered a sample twice", "time_ms": 1.0,
             "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": True}}
    path.write_text(path.read_text() + ":::MLLOG " + json.dumps(error) + "\n")
    rehash(root, "offline", 3)


def _edit_log(variant, index, edit):
    return lambda root, defs: synth.edit_log(variant_dir(root, variant) / f"result_{index}.txt", edit)


def _shorter_than_the_definition(root, defs):
    rerun(root, defs, "singlestream", 1, settings={**VARIANTS["singlestream"][0], "min_duration_ms": 50})


def _other_checkpoint(root, defs):
    def change(e):
        e["value"]["sha256"] = synth.sha("another checkpoint")
    synth.edit_log(variant_dir(root, "offline") / "result_3.txt", synth.each("checkpoint", change))


def _other_model(root, defs):
    def change(e):
        e["value"]["model_config"] = {**e["value"]["model_config"], "n_layer": 99}
    synth.edit_log(variant_dir(root, "offline") / "result_1.txt", synth.each("checkpoint", change))


def _no_loadgen_folder(root, defs):
    shutil.rmtree(variant_dir(root, "offline") / "loadgen_2")


def _bad_reference(root, defs):
    path = variant_dir(root, "offline") / "loadgen_1" / "accuracy" / loadgen.REFERENCE
    path.write_text(json.dumps({"format": "int32 tokens", "samples": {"0": [1, "two"]}}))
    rehash(root, "offline", 1)


def _run_file_beside_the_variants(root, defs):
    shutil.copy(variant_dir(root, "offline") / "result_1.txt", variant_dir(root, "offline").parent / "result_1.txt")


def _linked_detail(root, defs):
    path = variant_dir(root, "offline") / "loadgen_1" / "performance" / loadgen.DETAIL
    path.unlink()
    path.symlink_to(variant_dir(root, "offline") / "loadgen_2" / "performance" / loadgen.DETAIL)


TAMPERING = {
    "edited throughput in the summary": (
        _edit_summary("Tokens per second", lambda v: f"{2 * float(v):.2f}"),
        ("offline/loadgen_1/performance/mlperf_log_summary.txt: 'Tokens per second' is ",
         " but the detail log's result_tokens_per_second is ")),
    "a NaN throughput in the summary": (
        _edit_summary("Tokens per second", lambda v: "nan"),
        "offline/loadgen_1/performance/mlperf_log_summary.txt: 'Tokens per second' is 'nan', not a finite number"),
    "a detail figure beyond float range": (
        _huge_detail_figure,
        "offline/loadgen_1/performance/mlperf_log_detail.txt: no result_tokens_per_second (a number): the metric "
        "tokens_per_second cannot be read"),
    "INVALID changed to VALID in the summary": (
        _invalid_to_valid_in_the_summary,
        "offline/loadgen_2/performance/mlperf_log_summary.txt: 'Result is' is 'VALID' but the detail log's "
        "result_validity is 'INVALID'"),
    "an INVALID run": (_invalid_run,
                       "offline/loadgen_2/performance/mlperf_log_detail.txt: LoadGen judged the performance run "
                       "INVALID: "),
    "an INVALID run whose log says success": (_invalid_run_says_success,
                                              ("offline/result_2.txt:",
                                               'run_stop says success but the log\'s result_validity is "INVALID"')),
    "INVALID changed to VALID in the detail log and the summary": (
        _invalid_to_valid_in_detail_and_summary,
        "offline/loadgen_2/performance/mlperf_log_detail.txt: result_validity is VALID but result_min_duration_met "
        "false"),
    "removed accuracy log": (_remove("loadgen_1/accuracy/mlperf_log_accuracy.json"),
                             "server/loadgen_1/accuracy/mlperf_log_accuracy.json is missing: the accuracy run's "
                             "answers are required"),
    "removed performance detail log": (_remove("loadgen_2/performance/mlperf_log_detail.txt"),
                                       "server/loadgen_2/performance/mlperf_log_detail.txt is missing"),
    "removed LoadGen folder": (_no_loadgen_folder, "offline/loadgen_2/ is missing: LoadGen's files of this run are "
                                                   "required"),
    "detail says Offline for a Server variant": (
        _scenario_mismatch,
        'server/loadgen_1/performance/mlperf_log_detail.txt: requested_scenario is "Offline"; variant server of '
        'the definition requires "Server"'),
    "the log's result differs from the detail's": (
        _log_result_differs,
        "server/result_2.txt:"),
    "an answer changed in the accuracy log": (_answer_changed, "server/loadgen_3/accuracy/mlperf_log_accuracy.json: "
                                                               "the accuracy gate fails: greedy_token_agreement 0.875"),
    "an accuracy log no longer the one hashed": (_unlisted, "singlestream/loadgen_1/accuracy/mlperf_log_summary.txt: "
                                                            "sha256 "),
    "malformed detail line": (_malformed_detail_line, "singlestream/loadgen_2/performance/mlperf_log_detail.txt:3: "
                                                      "not an ':::MLLOG' line"),
    "wrong variant folder name": (_rename_variant, f"{BENCHMARK}/servr: unknown variant 'servr' of {BENCHMARK} "
                                                   "(its variants: offline, server, singlestream)"),
    "missing run": (_missing_run, "server: 2 result files, the benchmark requires 3"),
    "LoadGen logged an error": (_loadgen_error, "offline/loadgen_3/performance/mlperf_log_detail.txt: LoadGen logged "
                                                "1 error (line: key: value): "),
    "checkpoint_val_loss above the training target": (
        _edit_log("server", 1, set_value("checkpoint_val_loss", 2.5)),
        "checkpoint_val_loss 2.5 does not meet the nanogpt quality target (minimize to 1.85)"),
    "a gate failed but the log says success": (
        _edit_log("server", 1, set_value("checkpoint_val_loss", 2.5)),
        "run_stop says success but the log's checkpoint_val_loss 2.5 does not meet the nanogpt target"),
    "accuracy logged otherwise than recomputed": (
        _edit_log("offline", 2, set_value("accuracy", 0.5)),
        "accuracy 0.5 is not the 1 recomputed from"),
    "an INVALID run is a failed run": (_invalid_run, "offline/result_2.txt: failed run (run_stop status aborted)"),
    "a figure the log does not repeat": (
        _edit_log("server", 3, lambda events: [e for e in events if e["key"] != "result_99.00_percentile_latency_ns"]),
        "server/result_3.txt: no result_99.00_percentile_latency_ns logged: the log repeats every figure of the "
        "performance detail log"),
    "inference_variant of another folder": (
        _edit_log("server", 2, set_value("inference_variant", "offline")),
        "inference_variant \"offline\" does not match the folder 'server'"),
    "loadgen_scenario of another variant": (
        _edit_log("server", 2, set_value("loadgen_scenario", "Offline")),
        'loadgen_scenario "Offline" is not the scenario of variant server (Server)'),
    "LoadGen settings not the definition's": (
        _edit_log("server", 2, set_value("loadgen_settings", {"server_target_qps": 1.0})),
        # server_target_qps is the submitter's to tune (USER_CONF); the settings it leaves out are not
        "loadgen_settings differ from variant server of the definition: server_target_latency_ns (not set) "
        "(definition: 50000000)"),
    "SUT parameters not the definition's": (
        _edit_log("server", 2, set_value("sut_config", {"batch_size": 8})),
        "sut_config differs from variant server of the definition: batch_size 8 (definition: \"(not set)\")"),
    "a shorter measurement": (_shorter_than_the_definition,
                              "requested_min_duration_ms is 50; variant singlestream of the definition requires 100 "
                              "(a shorter measurement than the definition's, in any division)"),
    "an aborted run": (_edit_log("singlestream", 3, set_value("run_stop", metadata={"status": "aborted"})),
                       "singlestream/result_3.txt: failed run (run_stop status aborted): an inference result "
                       "tolerates none"),
    "runs serving different checkpoints": (_other_checkpoint, "the runs serve different checkpoints"),
    "another model than the training benchmark's": (_other_model, "is not the model of the nanogpt definition"),
    "malformed expected answers": (_bad_reference, "offline/loadgen_1/accuracy/reference_outputs.json: sample \"0\" "
                                                   "is not a sample index with a list of int32 tokens"),
    "no quality logged": (_edit_log("offline", 1, lambda events: [e for e in events if e["key"] != "accuracy"]),
                          "offline/result_1.txt: no accuracy logged (required: exactly one)"),
    "accuracy run after the performance run": (
        _edit_log("offline", 1, lambda events: [e for e in events if e["key"] not in ("eval_start", "eval_stop")] +
                  [e for e in events if e["key"] in ("eval_start", "eval_stop")]),
        "eval_start: must be logged before run_start"),
    "a result file beside the variant folders": (_run_file_beside_the_variants,
                                                 f"{BENCHMARK}/result_1.txt: {BENCHMARK} is an inference benchmark: "
                                                 "the runs of each variant go in <benchmark>/<variant>/result_<i>.txt"),
    "a linked LoadGen file": (_linked_detail, "offline/loadgen_1/performance/mlperf_log_detail.txt: symlink"),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_each_tampering_fails_with_its_reason(case, package, defs):
    tamper, expected = TAMPERING[case]  # expected: a piece of one error message, or several
    tamper(package, defs)
    rep = check(package, defs)
    errors = errors_of(rep)
    assert not rep.valid and all(part in errors for part in ((expected,) if isinstance(expected, str) else expected)), \
        errors
    assert "internal error" not in errors, errors
    failing = [r for r in rep.results if not r.valid]
    assert failing and all(r.score_value is None for r in failing)
    document = report.to_json(rep)  # the reports of a failing folder (the HTML's plots: see the next test)
    assert "FAIL  acme/dgx-a100/" in report.to_text(document) and report.to_markdown(report.summary(document))


def test_every_report_is_written_for_a_failing_folder(package, defs, tmp_path):
    _invalid_run_says_success(package, defs)
    _remove("loadgen_1/accuracy/mlperf_log_accuracy.json")(package, defs)
    assert main([str(package), "--definitions", str(defs), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    html = (tmp_path / "out" / "summary.html").read_text()
    assert html.count("latency' src='data:image/png;base64,") == len(VARIANTS) and "class='FAIL'" in html


def test_the_log_result_message_names_both_values(package, defs):
    _log_result_differs(package, defs)
    detail = variant_dir(package, "server") / "loadgen_2" / "performance" / loadgen.DETAIL
    logged = detail_value(detail, "result_completed_tokens_per_second")
    errors = errors_of(check(package, defs))
    assert f"result_completed_tokens_per_second 123456.0 differs from {json.dumps(logged)} in " in errors, errors


def test_the_other_variants_still_pass_when_one_fails(package, defs):
    _answer_changed(package, defs)
    rep = check(package, defs)
    assert [r.variant for r in rep.results if not r.valid] == ["server"]
    assert result_of(rep, "offline").score_value is not None


def test_no_variant_folder_is_no_results(package, defs):
    for name in VARIANTS:
        shutil.rmtree(variant_dir(package, name))
    rep = check(package, defs)
    assert len(rep.results) == 1 and rep.results[0].variant is None
    assert f"{BENCHMARK}: no results: an inference benchmark holds one folder per variant" in errors_of(rep)


def test_open_division_setting_changes_warn_but_not_the_scenario_nor_a_shorter_run(package, defs):
    for name in VARIANTS:
        for index in range(1, RUNS + 1):
            synth.edit_log(variant_dir(package, name) / f"result_{index}.txt", set_value("submission_division", "open"))
    system = package / "acme" / "systems" / "dgx-a100.json"
    system.write_text(system.read_text().replace('"closed"', '"open"'))
    _other_model(package, defs)
    rerun(package, defs, "server", 2, settings={**VARIANTS["server"][0], "tpot_latency_ms": 30}, division="open")
    rep = check(package, defs)
    server, offline = result_of(rep, "server"), result_of(rep, "offline")
    assert server.valid and offline.valid, errors_of(rep)
    warnings = "\n".join(server.warnings + offline.warnings)
    assert "requested_server_tpot_latency is 30000000; variant server of the definition requires 20000000 (allowed " \
           "in the open division)" in warnings
    assert "is not the model of the nanogpt definition" in warnings and "(allowed in the open division)" in warnings
    _shorter_than_the_definition(package, defs)
    synth.edit_log(variant_dir(package, "singlestream") / "result_1.txt", set_value("submission_division", "open"))
    assert "(a shorter measurement than the definition's, in any division)" in errors_of(check(package, defs))
    _scenario_mismatch(package, defs)
    synth.edit_log(variant_dir(package, "server") / "result_1.txt", set_value("submission_division", "open"))
    assert 'requested_scenario is "Offline"' in errors_of(check(package, defs))


def test_the_submitters_tuning_passes_in_the_closed_division(package, defs):
    """target_qps (Server, Offline) and target_latency_ms (SingleStream) are the submitter's to tune, as MLPerf's
    user.conf: a closed-division run with another arrival rate or latency estimate passes, without a warning."""
    rerun(package, defs, "server", 2, settings={**VARIANTS["server"][0], "target_qps": 300})
    rerun(package, defs, "singlestream", 1, settings={**VARIANTS["singlestream"][0], "target_latency_ms": 3})
    rep = check(package, defs)
    assert rep.valid, errors_of(rep)
    tuned = "\n".join(result_of(rep, "server").warnings + result_of(rep, "singlestream").warnings)
    assert "target_qps" not in tuned and "expected_latency" not in tuned, tuned


def test_a_variant_not_submitted_is_noted_and_the_others_pass(package, defs):
    """Submitters choose the variants they measure (as MLPerf's scenarios): one without a folder is not a result."""
    shutil.rmtree(variant_dir(package, "server"))
    rep = check(package, defs)
    assert rep.valid, errors_of(rep)
    assert sorted(r.variant for r in rep.results) == ["offline", "singlestream"]
    notes = "\n".join(n for r in rep.results for n in r.notes)
    assert f"{BENCHMARK}: variant not submitted: server" in notes, notes


def test_smoke_flag_must_match_the_runs(package, defs):
    assert "--smoke was given but this run is not a smoke run" in errors_of(check(package, defs, smoke=True))


def test_garbled_loadgen_files_never_crash_nor_pass(package, defs, tmp_path):
    """Random byte damage in each of LoadGen's files (hash recorded anew, as a forger would): a clear error, never
    an internal error, never a pass."""
    rng = random.Random(3)
    names = list(synth.loadgen_files(variant_dir(package, "offline") / "loadgen_1"))
    failed = 0
    for trial, name in enumerate(names * 2):
        root = Path(shutil.copytree(package, tmp_path / f"t{trial}"))
        path = variant_dir(root, "offline") / "loadgen_1" / name
        data = bytearray(path.read_bytes())
        for _ in range(rng.choice([1, 3, 20])):
            data[rng.randrange(len(data))] = rng.choice(b'\x00\xff{}[]":,0123456789e-')
        path.write_bytes(bytes(data))
        rehash(root, "offline", 1)
        rep = check(root, defs)
        offline = result_of(rep, "offline")
        if offline.valid:  # damage that changes nothing the checker reads (a byte of an unused detail field)
            continue
        failed += 1
        assert "internal error" not in errors_of(rep), errors_of(rep)
        assert any("loadgen_1" in e or "result_1.txt" in e for e in offline.errors), offline.errors
    assert failed >= len(names), f"only {failed} of {2 * len(names)} damaged files were noticed"


def test_a_summary_figure_rounded_as_loadgen_prints_it_agrees_and_a_coarser_one_does_not():
    """LoadGen prints 'Completed samples per second : 3.66' for 3.66487 (two decimals): that agrees with the
    detail log; '4' (rounded further) or '3.70' (edited) does not."""
    from submission_checker import loadgen_summary

    detail = {"result_completed_samples_per_sec": 3.66487, "effective_scenario": "Server"}
    for stated, agrees in (("3.66", True), ("3.665", True), ("4", False), ("3.70", False), ("3.67", False)):
        problems = loadgen_summary.summary_disagreements({"Completed samples per second": stated}, detail)
        assert (not problems) == agrees, (stated, problems)
