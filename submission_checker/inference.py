"""Our suite's inference benchmarks (kind: inference; MLPerf LoadGen, see common/README.md): each variant of the
definition's `performance:` section is a result of its own, in its own folder:

    <benchmark>/<variant>/result_<i>.txt                      our MLLOG log of one run of the variant
    <benchmark>/<variant>/loadgen_<i>/performance/            LoadGen's mlperf_log_summary.txt, mlperf_log_detail.txt
    <benchmark>/<variant>/loadgen_<i>/accuracy/               the same, mlperf_log_accuracy.json, reference_outputs.json

A run counts when our log passes the key rules (rules/inference.yaml over rules/common.yaml), LoadGen's files are
the ones the log hashed, LoadGen ran the definition's settings and judged the performance run VALID, the log repeats
LoadGen's figures as LoadGen wrote them, and the accuracy recomputed from LoadGen's answers meets the target. The
score of a variant is the median of its runs' performance metric, read from LoadGen's detail log. What every log of
the suite says (identity, clock, provenance, system agreement) is suite.py's; every number comes from the
definition and the rules: there is no per-benchmark code here.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from common import benchmark as definitions_lib
from common import grading, loadgen
from common.fetch import sha256_of
from submission_checker import layout, loadgen_summary, logrules, scoring, suite
from submission_checker.util import is_count, is_number, rel, same, show

QUALITY_KEY = "{quality.log_key}"
LOADGEN_DIR = re.compile(r"loadgen_([0-9]{1,6})")
SHA256 = re.compile(r"[0-9a-f]{64}")
SAMPLE_INDEX = re.compile(r"[0-9]{1,9}")
PERFORMANCE, ACCURACY = "performance", "accuracy"
# The files of loadgen_<i>/ (relative to it), and why each one is required.
LOADGEN_FILES = {
    f"{PERFORMANCE}/{loadgen.SUMMARY}": "the performance run's LoadGen summary is required",
    f"{PERFORMANCE}/{loadgen.DETAIL}": "the performance run's LoadGen detail log is required",
    f"{ACCURACY}/{loadgen.SUMMARY}": "the accuracy run's LoadGen summary is required",
    f"{ACCURACY}/{loadgen.DETAIL}": "the accuracy run's LoadGen detail log is required",
    f"{ACCURACY}/{loadgen.ACCURACY}": "the accuracy run's answers are required",
    f"{ACCURACY}/{loadgen.REFERENCE}": "the accuracy run's expected answers are required",
}
# LoadGen writes VALID only when each of these holds; a VALID detail log saying otherwise was edited.
VALIDITY_CONDITIONS = ("result_min_duration_met", "result_min_queries_met", "result_perf_constraints_met",
                       "early_stopping_met")
SCENARIO_KEYS = ("requested_scenario", "effective_scenario")
REFERENCE_SHAPE = '{"format": "int32 tokens", "samples": {"<qsl_idx>": [token, ...]}}'
GRADED_SHAPE = ('{"format": "graded answers", "samples": {"<qsl_idx>": {"answer_sha256": hex, "score": 0|1, '
                '"how": "exact|contains|executed", "expected": text|null}}}')
NO_ERRORS = "No errors encountered during test."  # the last words of every summary of a run without errors
MAX_LISTED = 3  # a detail log's errors, undecodable answers: the first few are listed, then a count


class _LoadgenFolders:
    """The entries a variant folder holds beside its result_<i>.txt files (for layout.result_files)."""

    def __contains__(self, name) -> bool:
        return LOADGEN_DIR.fullmatch(name) is not None


REPORTED_KEYS = loadgen.REPORTED_KEYS  # every LoadGen figure a log may repeat


def inference_rules(common_rules: dict) -> dict:
    """rules/inference.yaml over rules/common.yaml: the keys are inference's, the other settings common unless
    inference.yaml sets them."""
    return {**common_rules, **logrules.load_rules("inference")}


def key_rules(rules: dict, definition: dict, log_key: str, gates: dict | None = None) -> dict:
    """The inference key rules, the checkpoint keys when the definition serves a checkpoint, one per gate of the
    variant (quality: gates:), a rule for every LoadGen figure the log may repeat, and the definition's log_rules
    (merged key by key)."""
    keys = {log_key if key == QUALITY_KEY else key: dict(rule) for key, rule in rules["keys"].items()}
    if definition.get("checkpoint"):
        keys.update({key: dict(rule) for key, rule in rules["checkpoint_keys"].items()})
    for key in gates or {}:
        keys[key] = dict(rules["gate_key_rule"])
    for key in REPORTED_KEYS:
        keys.setdefault(key, dict(rules["reported_key_rule"]))
    for key, rule in (definition.get("log_rules") or {}).items():
        keys[key] = {**keys.get(key, {}), **rule}
    return keys


@dataclass
class Variant:
    """What every run of one variant is checked against, read once per variant."""
    name: str
    settings: dict          # the definition's performance.<name> entry (smoke overrides applied with --smoke)
    definition: dict
    training: dict | None   # the definition of the training benchmark whose checkpoint is served, if any
    rules: dict
    system: dict | None
    root: Path
    smoke: bool

    @property
    def log_key(self) -> str:
        return self.definition["quality"]["log_key"]

    @property
    def quality(self) -> dict:
        """The quality this variant is held to: the definition's, with the variant's own target and gates."""
        return loadgen.variant_quality(self.definition, self.name)


# --- one benchmark folder: its variants -----------------------------------------------------------------------------
def check_benchmark(result, bench_dir, root, code_root, system, definitions, definition_error, rules, smoke):
    """Check every variant folder of an inference benchmark; returns one result per variant (or the benchmark's
    own result when there is nothing to check per variant)."""
    found = suite.definition_of(result, definitions, definition_error, smoke)
    if found is None:
        return [result]
    definition = found[0]
    result.kind = "inference"
    known = list(definition["performance"])
    inherited = list(result.errors)  # the system description's problems fail every variant
    folders = {}
    for name, path in layout.entries(bench_dir, root, result.errors):
        if path.is_dir():
            folders[name] = path
        elif layout.RESULT_NAME.fullmatch(name):
            result.errors.append(f"{rel(path, root)}: {result.benchmark} is an inference benchmark: the runs of each "
                                 f"variant go in <benchmark>/<variant>/result_<i>.txt (variants: {', '.join(known)})")
        else:
            result.warnings.append(f"{rel(path, root)}: ignored (an inference benchmark folder holds one folder per "
                                   "variant)")
    if not folders:
        result.errors.append(f"{result.path}: no results: an inference benchmark holds one folder per variant, "
                             f"<variant>/result_<i>.txt (variants of {result.benchmark}: {', '.join(known)})")
        return [result]
    results = []
    # As MLPerf submitters choose their scenarios, a submission holds the variants it measured: each is scored on
    # its own, and a variant not submitted is noted, not failed.
    for name in [n for n in known if n in folders] + sorted(set(folders) - set(known)):
        variant_result = dataclasses.replace(result, variant=name, path=f"{result.path}/{name}", runs=[],
                                             errors=list(inherited), warnings=[], notes=[])
        if not results:  # the benchmark folder's own problems, once
            variant_result.errors, variant_result.warnings = list(result.errors), list(result.warnings)
            missing = [n for n in known if n not in folders]
            if missing:
                variant_result.notes.append(f"{result.path}: variant{'s' if len(missing) > 1 else ''} not submitted: "
                                            f"{', '.join(missing)} (each variant is a result of its own)")
        results.append(variant_result)
        if name not in known:
            variant_result.errors.append(f"{variant_result.path}: unknown variant '{name}' of {result.benchmark} "
                                         f"(its variants: {', '.join(known)})")
        else:
            _check_variant_safely(variant_result, folders[name], root, code_root, system, definition, definitions,
                                  rules, smoke)
    return results


def _check_variant_safely(result, variant_dir, *args):
    try:
        check_variant(result, variant_dir, *args)
    except Exception as error:  # a checker bug or a definition it cannot apply: never a pass, never the others lost
        result.errors.append(f"{result.path}: internal error while checking: {type(error).__name__}: {error}")


def check_variant(result, variant_dir, root, code_root, system, definition, definitions, common_rules, smoke):
    settings = definition["performance"][result.variant]
    quality = loadgen.variant_quality(definition, result.variant)
    result.scenario, result.metric = settings["scenario"], settings["metric"]
    result.score_direction = settings["direction"]
    result.quality = {"metric": quality["metric"], "log_key": quality["log_key"], "target": quality["target"],
                      "direction": quality["direction"]}
    result.required_runs = definition["required_runs"]
    rules = inference_rules(common_rules)
    variant = Variant(result.variant, settings, definition, training_definition(result, definition, definitions, smoke),
                      rules, system, root, smoke)
    keys = key_rules(rules, definition, variant.log_key, quality["gates"])
    files = layout.result_files(result, variant_dir, root, extra_ok=_LoadgenFolders())
    layout.check_indices(result, files)
    warn_unpaired_loadgen_folders(result, variant_dir, root, {index for index, _ in files})
    division = result.division
    for index, path in files:
        run = logrules.read_run(path, rel(path, root), index, keys, rules, variant.log_key)
        division = division or run.value("submission_division")
        check_run(run, result, variant, variant_dir / f"loadgen_{index}", division or "closed")
        result.runs.append(run)
    result.division = division
    check_runs_together(result, definition, rules, code_root, root)


def training_definition(result, definition, definitions, smoke) -> dict | None:
    """The definition of the training benchmark whose checkpoint the variant serves (same smoke flag), or None:
    the definition serves no checkpoint, or that benchmark cannot be read (an error)."""
    checkpoint = definition.get("checkpoint")
    if not checkpoint:
        return None
    name = checkpoint["training_benchmark"]
    if name not in definitions:
        result.errors.append(f"{result.path}: the definition's checkpoint.training_benchmark '{name}' has no "
                             "definition: the checkpoint's quality target cannot be checked")
        return None
    try:
        training = suite.load_definition(definitions[name], smoke)[0]
    except (OSError, definitions_lib.DefinitionError) as error:
        result.errors.append(f"{result.path}: cannot read the definition of checkpoint.training_benchmark "
                             f"'{name}': {error}")
        return None
    if training["kind"] != "training":
        result.errors.append(f"{result.path}: checkpoint.training_benchmark '{name}' is not a training benchmark")
        return None
    return training


def warn_unpaired_loadgen_folders(result, variant_dir, root, indices):
    for path in sorted(variant_dir.iterdir()):
        match = LOADGEN_DIR.fullmatch(path.name)
        if match and int(match.group(1)) not in indices and not path.is_symlink():
            result.warnings.append(f"{rel(path, root)}: ignored (no result_{match.group(1)}.txt beside it)")


# --- one run ------------------------------------------------------------------------------------------------------
def check_run(run, result, variant: Variant, loadgen_dir: Path, division: str):
    """Every rule that one run must satisfy on its own: its log, then LoadGen's files against the log and the
    definition, then whether the run_stop status tells the truth."""
    suite.check_identity(run, result.benchmark, variant.smoke)
    suite.check_clock(run)
    suite.check_status(run, "run_stop status aborted")
    suite.check_init_time(run, variant.definition)
    check_sequence(run, variant)
    check_what_ran(run, variant, division)
    check_checkpoint(run, variant, division)
    check_gates(run, variant)
    files = find_loadgen_files(run, loadgen_dir, variant.root)
    if files is not None:
        check_hashes(run, files, variant.root)
        check_performance(run, files, variant, division)
        check_accuracy_run(run, files, variant, division)
    check_status_tells_the_truth(run, variant)
    suite.check_provenance(run, variant.definition, division)
    if variant.system:
        suite.check_system_agreement(run, variant.system, variant.rules)
    run.first = {}  # bounded memory: the rest of the checks use what was extracted above


def file_error(run, message: str) -> None:
    """A problem of one of the run's LoadGen files: the message names that file, not the log."""
    if len(run.errors) >= logrules.MAX_PROBLEMS_PER_FILE:
        run.hidden_problems += 1
    else:
        run.errors.append(message)


def file_warning(run, message: str) -> None:
    if len(run.warnings) < logrules.MAX_PROBLEMS_PER_FILE:
        run.warnings.append(message)


def line_of(run, key):
    return run.first[key][0] if key in run.first else None


def check_sequence(run, variant: Variant):
    """Initialisation, then the accuracy run, then the performance run (rules/inference.yaml: sequence)."""
    keys = [variant.log_key if key == QUALITY_KEY else key for key in variant.rules.get("sequence") or ()]
    present = [(key, run.first[key][0]) for key in keys if key in run.first]
    for (before, before_line), (after, after_line) in zip(present, present[1:]):
        if after_line < before_line:
            run.error(f"{after} (line {after_line}) comes before {before} (line {before_line}): a log holds the "
                      "initialisation, then the accuracy run, then the performance run", after_line)
            return


def settings_agree(logged, expected, tolerance: float) -> bool:
    """Numbers agree within LoadGen's printing precision (it writes 5e+06 for 5000000); the rest exactly."""
    if is_number(logged) and is_number(expected):
        return abs(logged - expected) <= tolerance * max(abs(logged), abs(expected))
    return same(logged, expected)


def check_what_ran(run, variant: Variant, division: str):
    """The log names the variant of its folder, the variant's scenario, and (closed division) its settings."""
    name, scenario = variant.name, variant.settings["scenario"]
    if "inference_variant" in run.first and run.value("inference_variant") != name:
        run.error(f"inference_variant {show(run.value('inference_variant'))} does not match the folder '{name}'",
                  line_of(run, "inference_variant"))
    if "loadgen_scenario" in run.first and run.value("loadgen_scenario") != scenario:
        run.error(f"loadgen_scenario {show(run.value('loadgen_scenario'))} is not the scenario of variant {name} "
                  f"({scenario})", line_of(run, "loadgen_scenario"))
    for key in ("accuracy_samples", "performance_sample_count"):
        if key in run.first and not is_count(run.value(key)):
            run.error(f"{key} {show(run.value(key))} is not a positive integer", line_of(run, key))
    check_sut_config(run, variant, division)
    if "loadgen_settings" not in run.first:
        return
    logged, lineno = run.value("loadgen_settings"), line_of(run, "loadgen_settings")
    if not isinstance(logged, dict):
        run.error(f"loadgen_settings {show(logged)} is not a mapping of LoadGen settings", lineno)
        return
    expected = loadgen.loadgen_settings(variant.settings)
    tolerance = float(variant.rules["loadgen_relative_tolerance"])
    # what a submitter tunes to their system (USER_CONF, as MLPerf's user.conf) may differ in either division
    tunable = loadgen.tunable_attributes(scenario)
    for key in sorted(tunable & set(logged)):
        if not is_number(logged[key]) or logged[key] <= 0:
            run.error(f"loadgen_settings {key} {show(logged[key])} is not a positive number", lineno)
    differences = [f"{key} {show(logged[key]) if key in logged else '(not set)'} (definition: {show(value)})"
                   for key, value in expected.items() if key not in tunable and
                   (key not in logged or not settings_agree(logged[key], value, tolerance))]
    differences += [f"{key} {show(logged[key])} (not a setting of the definition)" for key in logged
                    if key not in expected and key not in tunable]
    if not differences:
        return
    message = f"loadgen_settings differ from variant {name} of the definition: {'; '.join(differences[:5])}" + \
        (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
    if division == "closed":
        run.error(message + " (closed division)", lineno)
    else:
        run.warn(message + " (allowed in the open division)", lineno)


def check_sut_config(run, variant: Variant, division: str):
    """serve.py's parameters (batch size, prompt and answer lengths) change what is measured and live in
    benchmark.yaml, outside the code hash: the closed division runs the definition's (open: a warning)."""
    if "sut_config" not in run.first:
        return
    logged, lineno = run.value("sut_config"), line_of(run, "sut_config")
    expected = loadgen.sut_config(variant.definition, variant.name)
    if not isinstance(logged, dict):
        run.error(f"sut_config {show(logged)} is not a mapping", lineno)
        return
    differences = [f"{key} {show(logged.get(key, '(not set)'))} (definition: {show(expected.get(key, '(not set)'))})"
                   for key in sorted(set(logged) | set(expected)) if not same(logged.get(key), expected.get(key))]
    if not differences:
        return
    message = f"sut_config differs from variant {variant.name} of the definition: {'; '.join(differences[:5])}"
    if division == "closed":
        run.error(message + " (closed division)", lineno)
    else:
        run.warn(message + " (allowed in the open division)", lineno)


def check_checkpoint(run, variant: Variant, division: str):
    """The checkpoint served: a trained model of the training benchmark the definition names (its quality target
    recomputed from that definition, never from the log's metadata), with its model config in the closed division."""
    spec = variant.definition.get("checkpoint")
    if not spec or "checkpoint" not in run.first:
        return  # no checkpoint served, or the key rule reported it missing
    record, lineno = run.value("checkpoint"), line_of(run, "checkpoint")
    problem = checkpoint_problem(record, spec["training_benchmark"])
    if problem:
        run.error(f"checkpoint: {problem}", lineno)
        return
    run.checkpoint = record["sha256"]
    training = variant.training
    if training is None:
        return  # the training definition cannot be read: reported once for the result
    if not same(record["model_config"], training.get("model")):
        message = f"checkpoint model_config {show(record['model_config'], 160)} is not the model of the " \
                  f"{training['name']} definition {show(training.get('model'), 160)}"
        if division == "closed":
            run.error(message + " (closed division)", lineno)
        else:
            run.warn(message + " (allowed in the open division)", lineno)
    key = variant.rules["checkpoint_quality_key"]
    if key in run.first:
        value, quality = run.value(key), training["quality"]
        if not is_number(value):
            run.error(f"{key} {show(value)} is not a number", line_of(run, key))
        elif not definitions_lib.target_reached(value, quality):
            run.error(f"{key} {show(value)} does not meet the {training['name']} quality target "
                      f"({quality['direction']} to {quality['target']}): the checkpoint served is not a trained "
                      f"{training['name']} model", line_of(run, key))


def check_gates(run, variant: Variant):
    """Each gate of the variant (quality: gates:) meets the definition's target (never the target the log states)."""
    for key, gate in variant.quality["gates"].items():
        if key not in run.first:
            continue  # the key rule reported it missing
        value = run.value(key)
        if not is_number(value):
            run.error(f"{key} {show(value)} is not a number", line_of(run, key))
        elif not definitions_lib.target_reached(value, gate):
            run.error(f"{key} {show(value)} does not meet its gate ({gate['direction']} to {gate['target']}, "
                      "benchmark.yaml)", line_of(run, key))


def checkpoint_problem(record, training_benchmark: str) -> str | None:
    if not isinstance(record, dict):
        return f"{show(record)} is not a record of the checkpoint served"
    for field in ("sha256", "model_code_sha256"):
        if not (isinstance(record.get(field), str) and SHA256.fullmatch(record[field])):
            return f"{field} {show(record.get(field))} is not a sha256 (64 lowercase hex digits)"
    log_sha = record.get("training_log_sha256")
    if log_sha is not None and not (isinstance(log_sha, str) and SHA256.fullmatch(log_sha)):
        return f"training_log_sha256 {show(log_sha)} is neither a sha256 nor null"
    if not (isinstance(record.get("file"), str) and record["file"]):
        return f"file {show(record.get('file'))} is not a file name"
    if record.get("training_benchmark") != training_benchmark:
        return f"training_benchmark {show(record.get('training_benchmark'))} is not the definition's " \
               f"'{training_benchmark}'"
    if not isinstance(record.get("model_config"), dict):
        return f"model_config {show(record.get('model_config'))} is not a model config (a mapping)"
    return None


# --- LoadGen's files ----------------------------------------------------------------------------------------------
def find_loadgen_files(run, loadgen_dir: Path, root: Path) -> dict[str, Path] | None:
    """{name relative to loadgen_<i>/: path} of LoadGen's files, each a plain file (links are reported, never
    followed); a missing one is an error. None when the folder itself is missing."""
    shown = rel(loadgen_dir, root)
    if loadgen_dir.is_symlink():
        return None  # reported as a link when the variant folder was listed
    if not loadgen_dir.is_dir():
        file_error(run, f"{shown}/ is missing: LoadGen's files of this run are required (performance/ and accuracy/ "
                        f"beside {run.file.rsplit('/', 1)[-1]})")
        return None
    problems, found = [], {}
    parts = dict(layout.entries(loadgen_dir, root, problems))
    for part in (PERFORMANCE, ACCURACY):
        if part in parts and parts[part].is_dir():
            for name, path in layout.entries(parts[part], root, problems):
                if path.is_file():
                    found[f"{part}/{name}"] = path
    for problem in problems:
        file_error(run, problem)
    for name, why in LOADGEN_FILES.items():
        if name not in found:
            file_error(run, f"{shown}/{name} is missing: {why}")
    return {name: path for name, path in found.items() if name in LOADGEN_FILES}


def check_hashes(run, files: dict[str, Path], root: Path):
    """Every LoadGen file is the one the run hashed when it wrote its log (loadgen_files)."""
    if "loadgen_files" not in run.first:
        return  # the key rule reported it missing
    logged, lineno = run.value("loadgen_files"), line_of(run, "loadgen_files")
    if not isinstance(logged, dict):
        run.error(f"loadgen_files {show(logged)} is not a mapping of LoadGen's files to their sha256", lineno)
        return
    for name in LOADGEN_FILES:
        if name not in logged:
            run.error(f"loadgen_files does not record {name}", lineno)
        elif name in files:
            try:
                actual = sha256_of(files[name])
            except OSError as error:
                file_error(run, f"{rel(files[name], root)}: cannot read: {error.strerror or error}")
                continue
            if actual != logged[name]:
                file_error(run, f"{rel(files[name], root)}: sha256 {actual} is not the {show(logged[name], 70)} the "
                                f"log records (loadgen_files, {run.file}:{lineno}): the file changed after the run")


def read_loadgen(run, reader, path: Path | None, root: Path):
    """A LoadGen file read by common.loadgen's reader, or None (a missing file was reported, a malformed one is)."""
    if path is None:
        return None
    try:
        return reader(path, rel(path, root))
    except loadgen.LoadGenFileError as error:
        file_error(run, str(error))
    except OSError as error:
        file_error(run, f"{rel(path, root)}: cannot read: {error.strerror or error}")
    return None


def check_detail(run, detail: dict, shown: str, mode: str, variant: Variant, division: str):
    """One detail log ran the definition's settings, in the expected mode, without LoadGen errors. The closed
    division runs the settings exactly; the open division may change them (a warning), but never the scenario and
    never to a shorter measurement (rules/inference.yaml: minimum_settings)."""
    if detail.get("effective_test_mode") != mode:
        file_error(run, f"{shown}: effective_test_mode is {show(detail.get('effective_test_mode'))}, expected "
                        f"{mode}")
    tolerance = float(variant.rules["loadgen_relative_tolerance"])
    minimum = set(variant.rules.get("minimum_settings") or ())
    for key, expected in loadgen.expected_detail(variant.settings, tunable=False).items():
        logged = detail.get(key)
        if key in detail and settings_agree(logged, expected, tolerance):
            continue
        stated = show(logged) if key in detail else "not logged"
        message = f"{shown}: {key} is {stated}; variant {variant.name} of the definition requires {show(expected)}"
        if key in SCENARIO_KEYS:
            file_error(run, message)
        elif key in minimum and not is_number(logged):
            file_error(run, message + " (not a number LoadGen writes)")
        elif key in minimum and logged < expected:
            file_error(run, message + " (a shorter measurement than the definition's, in any division)")
        elif division == "closed":
            file_error(run, message + " (closed division)")
        else:
            file_warning(run, message + " (allowed in the open division)")
    errors = detail.get("errors") or []
    if errors:
        listed = "; ".join(errors[:MAX_LISTED]) + (f"; and {len(errors) - MAX_LISTED} more" if
                                                   len(errors) > MAX_LISTED else "")
        file_error(run, f"{shown}: LoadGen logged {len(errors)} error{'s' if len(errors) > 1 else ''} (line: key: "
                        f"value): {listed}")
    for key, logged_key in (("qsl_reported_total_count", "accuracy_samples"),
                            ("qsl_reported_performance_count", "performance_sample_count")):
        if key in detail and logged_key in run.first and not same(detail[key], run.value(logged_key)):
            file_error(run, f"{shown}: {key} is {show(detail[key])} but the log's {logged_key} is "
                            f"{show(run.value(logged_key))}")


def check_performance(run, files: dict[str, Path], variant: Variant, division: str):
    """The performance run: the definition's settings, LoadGen's VALID verdict, a summary that says what the
    detail log says, the log repeating LoadGen's figures as written; then the run's metric value."""
    root = variant.root
    detail_path = files.get(f"{PERFORMANCE}/{loadgen.DETAIL}")
    detail = read_loadgen(run, loadgen.read_detail, detail_path, root)
    if detail is None:
        return
    shown = rel(detail_path, root)
    check_detail(run, detail, shown, "PerformanceOnly", variant, division)
    validity = detail.get("result_validity")
    unmet = [condition for condition in VALIDITY_CONDITIONS if condition in detail and detail[condition] is not True]
    if validity != "VALID":
        reasons = [str(detail["result_invalid_reason"]).strip().rstrip(".")] \
            if detail.get("result_invalid_reason") else []
        reasons += [f"{condition} {show(detail[condition])}" for condition in unmet]
        file_error(run, f"{shown}: LoadGen judged the performance run {validity if validity else '(no verdict)'}"
                        + (f": {'; '.join(reasons)}" if reasons else ""))
    elif unmet:
        file_error(run, f"{shown}: result_validity is VALID but {', '.join(unmet)} false: LoadGen writes VALID "
                        "only when every condition holds (an edited detail log?)")
    summary_path = files.get(f"{PERFORMANCE}/{loadgen.SUMMARY}")
    summary = read_loadgen(run, loadgen_summary.read_summary, summary_path, root)
    if summary is not None:
        for disagreement in summary_problems(summary, detail):
            file_error(run, f"{rel(summary_path, root)}: {disagreement} (the summary was edited?)")
        check_summary_reports_no_errors(run, summary_path, root)
    check_repeated_figures(run, detail, shown, variant)
    run.performance = performance_figures(run, detail, shown, variant)


def summary_problems(summary: dict, detail: dict) -> list[str]:
    """common.loadgen_summary.summary_disagreements, without what its arithmetic cannot compare: a summary figure that is not
    a finite number (a NaN is within any tolerance of anything) is reported here; a detail figure that is not (an
    integer beyond float range would raise OverflowError) is left out, the detail checks report it."""
    problems, stated = [], dict(summary)
    for label, key in loadgen_summary.SUMMARY_FIELDS.items():
        if label in summary and is_number(detail.get(key)) and not is_number(_as_float(summary[label])):
            problems.append(f"'{label}' is {summary[label]!r}, not a finite number (detail log: {show(detail[key])})")
            del stated[label]
    finite = {key: value for key, value in detail.items()
              if is_number(value) or isinstance(value, bool) or not isinstance(value, (int, float))}
    return problems + loadgen_summary.summary_disagreements(stated, finite)


def _as_float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def check_repeated_figures(run, detail: dict, shown: str, variant: Variant):
    """Our log repeats LoadGen's verdict and figures, as LoadGen wrote them, and no figure LoadGen did not write."""
    required = {key for key, rule in variant.rules["keys"].items() if rule.get("occurs") in ("exactly_one",
                                                                                          "at_least_one")}
    for key in loadgen.reported_keys(detail):
        if key not in run.first:
            if key not in required:  # a required key the log lacks: its key rule said so already
                run.error(f"no {key} logged: the log repeats every figure of the performance detail log ({shown} "
                          f"has {show(detail[key])})")
        elif not same(run.value(key), detail[key]):
            run.error(f"{key} {show(run.value(key))} differs from {show(detail[key])} in {shown}", line_of(run, key))
    for key in REPORTED_KEYS:
        if key in run.first and key not in detail:
            run.error(f"{key} is not in {shown}: the log repeats LoadGen's figures, it does not add any",
                      line_of(run, key))


def performance_figures(run, detail: dict, shown: str, variant: Variant) -> dict | None:
    """The run's metric value (in the definition's unit) and its latency percentiles (for the plots)."""
    key, factor = loadgen.metric_key(variant.settings["scenario"], variant.settings["metric"])
    value = detail.get(key)
    if not is_number(value):
        file_error(run, f"{shown}: no {key} (a number): the metric {variant.settings['metric']} cannot be read")
        return None

    def percentiles(template):
        found = {p: detail.get(template.format(p)) for p in loadgen.PERCENTILES}
        return {p: v for p, v in found.items() if is_number(v)}

    return {"value": value * factor, "key": key, "validity": detail.get("result_validity"),
            "latency_ns": percentiles("result_{}_percentile_latency_ns"),
            "first_token_ns": percentiles("result_first_token_{}_percentile_latency_ns"),
            "time_per_output_token_ns": percentiles("result_time_per_output_token_{}_percentile_ns")}


def check_accuracy_run(run, files: dict[str, Path], variant: Variant, division: str):
    """The accuracy run: the definition's settings in AccuracyOnly mode, every sample answered once, and the
    accuracy recomputed from LoadGen's answers and the expected answers: equal to what the log states, meeting the
    target."""
    root = variant.root
    detail_path = files.get(f"{ACCURACY}/{loadgen.DETAIL}")
    detail = read_loadgen(run, loadgen.read_detail, detail_path, root)
    if detail is not None:
        check_detail(run, detail, rel(detail_path, root), "AccuracyOnly", variant, division)
    if f"{ACCURACY}/{loadgen.SUMMARY}" in files:  # an accuracy run's summary says little more than this
        check_summary_reports_no_errors(run, files[f"{ACCURACY}/{loadgen.SUMMARY}"], root)
    answers_path = files.get(f"{ACCURACY}/{loadgen.ACCURACY}")
    reference_path = files.get(f"{ACCURACY}/{loadgen.REFERENCE}")
    responses = read_loadgen(run, loadgen.read_accuracy, answers_path, root)
    reference = read_loadgen(run, read_reference, reference_path, root)
    if responses is None or reference is None:
        return
    answers_shown, reference_shown = rel(answers_path, root), rel(reference_path, root)
    samples = run.value("accuracy_samples")
    if not (len(responses) == len(reference) and same(samples, len(reference))):
        file_error(run, f"{answers_shown} answers {len(responses)} samples, {reference_shown} expects "
                        f"{len(reference)} and the log's accuracy_samples is {show(samples)}: the accuracy run answers "
                        "every sample of the query sample library once")
    if isinstance(reference, GradedReference):
        agreement, wrong = regrade(run, responses, reference, answers_shown, reference_shown)
    else:
        agreement, wrong = loadgen.token_agreement(decode_answers(run, responses, answers_shown), reference)
    log_key, quality = variant.log_key, variant.quality
    logged = run.value(log_key)
    differing = f"samples answered otherwise: {show(wrong[:10])}{' ...' if len(wrong) > 10 else ''}" if wrong \
        else "every sample answered as expected"
    if log_key in run.first and (not is_number(logged) or
                                 abs(logged - agreement) > float(variant.rules["accuracy_tolerance"])):
        run.error(f"{log_key} {show(logged)} is not the {agreement:.9g} recomputed from {answers_shown} against "
                  f"{reference_shown} ({differing})", line_of(run, log_key))
    if not definitions_lib.target_reached(agreement, quality):
        file_error(run, f"{answers_shown}: the accuracy gate fails: {quality['metric']} {agreement:.6g}, recomputed "
                        f"from LoadGen's answers, does not reach the target ({quality['direction']} to "
                        f"{quality['target']}; {differing})")


def check_summary_reports_no_errors(run, path: Path, root: Path):
    """LoadGen ends a summary with 'No errors encountered during test.' or the count of its errors."""
    try:
        if path.stat().st_size > loadgen.MAX_DETAIL_BYTES:
            file_error(run, f"{rel(path, root)}: larger than {loadgen.MAX_DETAIL_BYTES} bytes; not a LoadGen summary")
        elif NO_ERRORS not in path.read_bytes().decode("utf-8"):
            file_error(run, f"{rel(path, root)}: does not say '{NO_ERRORS}' (LoadGen reports errors there)")
    except UnicodeDecodeError as error:
        file_error(run, f"{rel(path, root)}: not valid UTF-8 (byte {error.start})")
    except OSError as error:
        file_error(run, f"{rel(path, root)}: cannot read: {error.strerror or error}")


def decode_answers(run, responses: dict[int, bytes], shown: str) -> dict[int, list[int]]:
    answers, bad = {}, []
    for index, data in responses.items():
        try:
            answers[index] = loadgen.tokens_of(data)
        except ValueError as error:
            bad.append(f"sample {index}: {error}")
    if bad:
        file_error(run, f"{shown}: {len(bad)} answers are not int32 tokens: {'; '.join(bad[:MAX_LISTED])}")
    return answers


class GradedReference(dict):
    """{qsl_idx: {answer_sha256, score, how, expected}} of a graded accuracy run (common/grading.py)."""


def regrade(run, responses: dict[int, bytes], reference: GradedReference, answers_shown: str,
            reference_shown: str) -> tuple[float, list[int]]:
    """The mean grade, recomputed: every answer must be the one graded (its sha256), exact and contains grades are
    recomputed from LoadGen's answer bytes, executed grades (the workload ran the code) are taken as bound."""
    problems, scores = [], {}
    for index, entry in sorted(reference.items()):
        data = responses.get(index)
        if data is None:
            continue
        if grading.sha256_hex(data) != entry["answer_sha256"]:
            problems.append(f"sample {index}: LoadGen's answer is not the one graded (sha256 differs)")
            continue
        score = entry["score"]
        if entry["how"] != "executed":
            score = 1.0 if grading.matches(data.decode("utf-8", errors="replace"), entry["expected"],
                                           entry["how"]) else 0.0
            if score != entry["score"]:
                problems.append(f"sample {index}: graded {show(entry['score'])}, but the answer scores {score:g} "
                                f"({entry['how']} against {show(entry['expected'])})")
        scores[index] = score
    if problems:
        more = f" and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        file_error(run, f"{reference_shown} does not grade {answers_shown}: {'; '.join(problems[:MAX_LISTED])}{more}")
    total = len(reference)
    wrong = sorted(i for i in reference if scores.get(i, 0.0) < 1.0)
    return (sum(scores.values()) / total if total else 0.0), wrong


def read_graded(samples, shown: str) -> GradedReference:
    reference = GradedReference()
    for index, entry in samples.items():
        if not (SAMPLE_INDEX.fullmatch(index) and isinstance(entry, dict)
                and isinstance(entry.get("answer_sha256"), str) and SHA256.fullmatch(entry["answer_sha256"])
                and entry.get("score") in (0, 1) and not isinstance(entry.get("score"), bool)
                and entry.get("how") in grading.HOW
                and (isinstance(entry.get("expected"), str) or entry.get("how") == "executed")):
            raise loadgen.LoadGenFileError(f"{shown}: sample {show(index)} is not a graded answer ({GRADED_SHAPE})")
        reference[int(index)] = entry
    return reference


def read_reference(path: Path, shown: str) -> dict[int, list[int]] | GradedReference:
    """{qsl_idx: expected tokens} of a reference_outputs.json (written by our harness beside LoadGen's answers), or
    the grades of a graded run's text answers (GradedReference)."""
    if path.stat().st_size > loadgen.MAX_ACCURACY_BYTES:
        raise loadgen.LoadGenFileError(f"{shown}: larger than {loadgen.MAX_ACCURACY_BYTES} bytes")
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise loadgen.LoadGenFileError(f"{shown}: not JSON ({error})") from None
    samples = document.get("samples") if isinstance(document, dict) else None
    if isinstance(samples, dict) and document.get("format") == grading.FORMAT:
        return read_graded(samples, shown)
    if not isinstance(samples, dict) or document.get("format") != "int32 tokens":
        raise loadgen.LoadGenFileError(f"{shown}: not the harness's expected answers ({REFERENCE_SHAPE})")
    reference = {}
    for index, tokens in samples.items():
        if not (SAMPLE_INDEX.fullmatch(index) and isinstance(tokens, list) and
                all(isinstance(t, int) and not isinstance(t, bool) and -2**31 <= t < 2**31 for t in tokens)):
            raise loadgen.LoadGenFileError(f"{shown}: sample {show(index)} is not a sample index with a list of int32 "
                                           f"tokens ({REFERENCE_SHAPE})")
        reference[int(index)] = tokens
    return reference


def check_status_tells_the_truth(run, variant: Variant):
    """run_stop says success only when the log itself shows LoadGen's VALID verdict and every gate met."""
    if run.status != "success":
        return
    reasons = []
    validity = run.value("result_validity")
    if "result_validity" in run.first and validity != "VALID":
        reasons.append(f"the log's result_validity is {show(validity)}")
    quality, value = variant.quality, run.value(variant.log_key)
    if is_number(value) and not definitions_lib.target_reached(value, quality):
        reasons.append(f"the log's {variant.log_key} {show(value)} does not reach the target ({quality['direction']} "
                       f"to {quality['target']})")
    for key, gate in quality["gates"].items():
        gate_value = run.value(key)
        if is_number(gate_value) and not definitions_lib.target_reached(gate_value, gate):
            reasons.append(f"the log's {key} {show(gate_value)} does not meet its gate")
    key = variant.rules["checkpoint_quality_key"]
    gate = run.value(key)
    if variant.training and is_number(gate) and not definitions_lib.target_reached(gate, variant.training["quality"]):
        reasons.append(f"the log's {key} {show(gate)} does not meet the {variant.training['name']} target")
    if reasons:
        run.error(f"run_stop says success but {'; '.join(reasons)}", line_of(run, "run_stop"))


# --- the runs of one variant ----------------------------------------------------------------------------------------
def check_runs_together(result, definition, rules, code_root, root):
    """Rules over the runs of a variant: shared provenance and checkpoint, division, no failed run; then the score.
    Seeds may repeat: an inference run's seed does not change what is measured."""
    digests = suite.check_shared_provenance(result)
    checkpoints = {}
    for run in result.runs:
        if run.checkpoint:
            checkpoints.setdefault(run.checkpoint, run.file)
    if len(checkpoints) > 1:
        served = ", ".join(f"{file}: {sha[:12]}..." for sha, file in checkpoints.items())
        result.errors.append(f"the runs serve different checkpoints ({served}); every run of a result serves the same")
    suite.collect_run_problems(result)
    suite.check_code_folder(result, code_root, root, digests)
    suite.note_reference_code(result, definition)
    limit = int(rules.get("max_failed_runs", 0))
    failed = [run for run in result.runs if run.failed]
    for run in failed:
        if limit:
            result.notes.append(f"{run.file}: failed run ({run.failed})")
        else:
            result.errors.append(f"{run.file}: failed run ({run.failed}): an inference result tolerates none")
    if len(failed) > limit > 0:
        result.errors.append(f"{len(failed)} failed runs; at most {limit} tolerated")
    score_result(result)


def score_result(result):
    """The median over the runs of the variant's metric (and its coefficient of variation), for a result without
    errors."""
    if result.errors:
        return
    values = [run.performance["value"] for run in result.runs
              if run.score_ms is not None and run.performance is not None]
    if not values:
        result.errors.append(f"no score: none of the {len(result.runs)} runs gives the metric {result.metric}")
        return
    result.score_value, result.score_cv = scoring.median_and_cv(values)
