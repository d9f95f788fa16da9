"""Check a results folder: walk the layout, read every log, apply the rules, score each benchmark.

    <submitter>/systems/<system>.json                       system description
    <submitter>/results/<system>/<benchmark>/result_<i>.txt one MLLOG log per run
    <submitter>/benchmarks/<benchmark>/                     code (open division)

What a benchmark requires comes from data: rules/common.yaml (keys every log carries) and the benchmark's own
definition (<suite>/<workload>/benchmark.yaml: target, closed hyperparameters, dataset checksums, required runs,
released code hash, reference convergence, optional `log_rules:`). There is no per-benchmark code here.
A real MLCommons training results folder is read with rules/mlcommons.yaml instead (format and scoring only).

Two kinds of problems: an *error* breaks the rules and fails the benchmark; a *failed run* (run_stop status not
success) is allowed once, as MLPerf allows, and counts as the slowest run in olympic scoring.
"""
from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from common import benchmark as definitions_lib
from submission_checker import logparse, schema, scoring

RULES_DIR = Path(__file__).resolve().parent / "rules"
RESULT_NAME = re.compile(r"result_([0-9]{1,6})\.txt")
MAX_JSON_BYTES = 1 << 20       # system descriptions and scaling.json are a few KB
MAX_PROBLEMS_PER_FILE = 10     # a broken file reports its first problems, then a count
QUALITY_KEY = "{quality.log_key}"


@dataclass
class Run:
    """One result file, as read."""
    file: str                       # relative to the checked folder
    index: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: str | None = None       # why the run does not count (scored as the slowest); None if it converged
    first: dict = field(default_factory=dict)   # key -> (lineno, time_ms, value, metadata) of its first occurrence
    counts: Counter = field(default_factory=Counter)
    evals: list = field(default_factory=list)   # (lineno, time_ms, value, metadata) of quality evals, timed region
    run_start: float | None = None
    run_stop: float | None = None
    status: str | None = None
    samples_to_target: float | None = None
    epochs_to_target: float | None = None
    digest: dict = field(default_factory=dict)  # provenance fields that every run of a result must share
    seed: object = None
    division: str | None = None
    hidden_problems: int = 0

    def error(self, message: str, lineno: int | None = None) -> None:
        if len(self.errors) >= MAX_PROBLEMS_PER_FILE:
            self.hidden_problems += 1
            return
        self.errors.append(f"{self.file}:{lineno}: {message}" if lineno else f"{self.file}: {message}")

    def value(self, key, default=None):
        return self.first[key][2] if key in self.first else default

    @property
    def score_ms(self) -> float | None:
        if self.errors or self.failed or self.run_start is None or self.run_stop is None:
            return None
        return self.run_stop - self.run_start


@dataclass
class Result:
    """One benchmark of one system of one submitter: the unit that gets a verdict and a score."""
    submitter: str
    system: str
    benchmark: str
    path: str
    mode: str = "suite"             # suite | mlcommons
    division: str | None = None
    required_runs: int | None = None
    runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    score_minutes: float | None = None
    scaling_factor: float = 1.0
    convergence: dict | None = None
    quality: dict | None = None     # metric, log_key, target, direction (for the plots)

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass
class Report:
    folder: str
    smoke: bool
    mode: str
    errors: list[str] = field(default_factory=list)     # folder-level problems (layout, names, links)
    warnings: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return bool(self.results) and not self.errors and all(r.valid for r in self.results)


# --- entry point ------------------------------------------------------------------------------------------------
def check(folder: str | Path, smoke: bool = False, mlcommons: bool | None = None,
          definitions_root: str | Path | None = None, jobs: int = 0) -> Report:
    """Check a results folder. mlcommons=None detects the mode from the benchmark folder names.
    jobs: processes checking benchmark folders in parallel (0: one per CPU core for large folders, else 1)."""
    root = Path(folder).resolve()
    _load_definition.cache_clear()  # read each definition once per check, afresh for every check
    definitions, definition_error = _find_definitions(definitions_root)
    report = Report(folder=str(root), smoke=smoke, mode="suite")
    if not root.is_dir():
        report.errors.append(f"{folder}: not a directory")
        return report
    submitters = [root] if _is_submitter(root) else []
    for _, path in ([] if submitters else _entries(root, root, report.errors)):
        if path.is_dir() and _is_submitter(path):
            submitters.append(path)
        else:
            report.warnings.append(f"{_rel(path, root)}: ignored (not a submitter folder with results/ and systems/)")
    if not submitters:
        report.errors.append(f"{folder}: no submissions found; expected <submitter>/results/<system>/<benchmark>/"
                             "result_<i>.txt next to <submitter>/systems/<system>.json (see --help)")
        return report
    mlcommons_rules = _load_rules("mlcommons")
    if mlcommons is None:
        names = {p.name for s in submitters for p in _benchmark_dirs(s)}
        mlcommons = bool(names) and not names & set(definitions) and names <= set(mlcommons_rules["result_counts"])
    report.mode = "mlcommons" if mlcommons else "suite"
    rules = mlcommons_rules if mlcommons else _load_rules("common")
    tasks = []
    for submitter_dir in submitters:
        tasks += _walk_submitter(report, root, submitter_dir, definitions, definition_error, rules, smoke)
    jobs = jobs or (min(os.cpu_count() or 1, 8) if len(tasks) >= 16 else 1)
    report.results = []
    if jobs > 1:
        try:
            with ProcessPoolExecutor(jobs) as pool:
                report.results = list(pool.map(_check_task, tasks, chunksize=max(1, len(tasks) // (4 * jobs))))
        except (OSError, RuntimeError) as error:  # no processes here (sandbox, broken pool): check serially
            report.warnings.append(f"parallel check unavailable ({error}); checked in one process")
    if not report.results:
        report.results = [_check_task(task) for task in tasks]
    return report


def _check_task(task) -> Result:
    """Check one benchmark folder (in a worker process when jobs > 1)."""
    function, result, *args = task
    try:
        function(result, *args)
    except Exception as error:  # a checker bug or a definition it cannot apply: never a pass
        result.errors.append(f"{result.path}: internal error while checking: {type(error).__name__}: {error}")
    return result


def _walk_submitter(report, root, submitter_dir, definitions, definition_error, rules, smoke) -> list:
    """Layout checks of one submitter folder; returns the benchmark folders to check, as tasks."""
    tasks = []
    submitter = submitter_dir.name if submitter_dir != root else root.name
    entries = dict(_entries(submitter_dir, root, report.errors))
    for name in sorted(set(entries) - {"systems", "results", "benchmarks"}):
        report.warnings.append(f"{_rel(entries[name], root)}: ignored (a submitter folder holds systems/, "
                               "results/ and benchmarks/)")
    results_dir, systems_dir = entries.get("results"), entries.get("systems")
    results_dir = results_dir if results_dir and results_dir.is_dir() else None
    systems = dict(_entries(systems_dir, root, report.errors)) if systems_dir and systems_dir.is_dir() else {}
    system_dirs = [p for _, p in _entries(results_dir, root, report.errors)] if results_dir else []
    if not [p for p in system_dirs if p.is_dir()]:
        report.errors.append(f"{_rel(submitter_dir, root)}: no system folders in results/")
    for system_dir in system_dirs:
        if not system_dir.is_dir():
            report.warnings.append(f"{_rel(system_dir, root)}: ignored (results/ holds one folder per system)")
            continue
        system_file = f"{_rel(submitter_dir, root)}/systems/{system_dir.name}.json"
        system, system_errors = _load_system(systems.get(f"{system_dir.name}.json"), system_file, root)
        bench_dirs = [p for _, p in _entries(system_dir, root, report.errors)]
        if not [p for p in bench_dirs if p.is_dir()]:
            report.errors.append(f"{_rel(system_dir, root)}: no benchmark folders")
        for bench_dir in bench_dirs:
            if not bench_dir.is_dir():
                if report.mode == "suite" or bench_dir.name != "privateid.json":
                    report.warnings.append(f"{_rel(bench_dir, root)}: ignored (not a benchmark folder)")
                continue
            result = Result(submitter=submitter, system=system_dir.name, benchmark=bench_dir.name,
                            path=_rel(bench_dir, root), mode=report.mode)
            result.errors += system_errors
            result.division = (system or {}).get("division")
            if report.mode == "mlcommons":
                tasks.append((_check_mlcommons_benchmark, result, bench_dir, root, system, rules))
            else:
                tasks.append((_check_benchmark, result, bench_dir, root, entries.get("benchmarks"), system,
                              definitions, definition_error, rules, smoke))
    return tasks


# --- one benchmark of our suite ---------------------------------------------------------------------------------
def _check_benchmark(result, bench_dir, root, code_root, system, definitions, definition_error, rules, smoke):
    if result.benchmark not in definitions:
        known = ", ".join(sorted(definitions)) or "none"
        result.errors.append(f"{result.path}: unknown benchmark '{result.benchmark}' (benchmarks with a definition: "
                             f"{known}){definition_error}")
        return
    try:
        definition, smoke_section = _load_definition(definitions[result.benchmark], smoke)
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
        result.errors.append(f"{result.path}: cannot read the benchmark definition: {error}")
        return
    quality = definition["quality"]
    log_key = quality.get("log_key", "eval_accuracy")
    result.quality = {"metric": quality.get("metric", log_key), "log_key": log_key, "target": quality["target"],
                      "direction": quality["direction"]}
    result.required_runs = int(definition.get("required_runs", 5))
    keys = _key_rules(rules, definition, log_key)
    files = _result_files(result, bench_dir, root)
    _check_indices(result, files)
    division = result.division
    for index, path in files:
        run = _read_run(path, _rel(path, root), index, keys, rules, log_key, mlcommons=False)
        division = division or run.value("submission_division")
        _check_run(run, result, definition, rules, system, division or "closed", smoke, log_key)
        result.runs.append(run)
    result.division = division
    _check_runs_together(result, definition, rules, smoke, smoke_section, code_root, root)


def _check_run(run, result, definition, rules, system, division, smoke, log_key):
    """Every rule that one log must satisfy on its own."""
    quality = definition["quality"]
    # what the log says it is
    logged = run.value("submission_benchmark")
    if "submission_benchmark" in run.first and logged != result.benchmark:
        run.error(f"submission_benchmark {_show(logged)} does not match the folder '{result.benchmark}'",
                  run.first["submission_benchmark"][0])
    is_smoke = run.value("smoke_configuration") is True
    if is_smoke and not smoke:
        run.error("smoke configuration run (smoke_configuration=true): accepted only with --smoke",
                  run.first["smoke_configuration"][0])
    if smoke and not is_smoke:
        run.error("--smoke was given but this run is not a smoke run (no smoke_configuration=true)")
    # the clock: run_stop after run_start, status
    if run.run_start is not None and run.run_stop is not None:
        start_line, stop_line = run.first["run_start"][0], run.first["run_stop"][0]
        if run.run_stop < run.run_start or stop_line < start_line:
            run.error(f"run_stop (line {stop_line}, time_ms {run.run_stop:.0f}) is earlier than run_start "
                      f"(line {start_line}, time_ms {run.run_start:.0f})")
    if run.status not in (None, "success", "aborted"):
        run.error(f"run_stop status {run.status!r} is neither success nor aborted", run.first["run_stop"][0])
    elif run.status == "aborted":
        run.failed = "run_stop status aborted (did not converge)"
    # quality: the first eval inside the timed region that reaches the target
    reached = None
    for lineno, _, value, metadata in run.evals:
        if not _is_number(value):
            run.error(f"{log_key} value {_show(value)} is not a number", lineno)
        elif reached is None and definitions_lib.target_reached(value, quality):
            reached = (lineno, value, metadata)
    if reached:
        run.samples_to_target = reached[2].get("samples_count")
        run.epochs_to_target = reached[2].get("epoch_num")
    elif run.status == "success":
        best = [v for _, _, v, _ in run.evals if _is_number(v)]
        best = (min(best) if quality["direction"] == "minimize" else max(best)) if best else None
        run.error(f"run_stop says success but no {log_key} inside the timed region reached the target "
                  f"({quality['direction']} to {quality['target']}; best {_show(best)})")
    _check_eval_cadence(run, quality)
    # initialisation time
    if "init_start" in run.first and "init_stop" in run.first and "init_time_limit_s" in definition:
        init_s = (run.first["init_stop"][1] - run.first["init_start"][1]) / 1000
        if init_s > definition["init_time_limit_s"]:
            run.error(f"initialisation took {init_s:.1f} s, more than the {definition['init_time_limit_s']} s "
                      "limit (init_start to init_stop)", run.first["init_stop"][0])
    _check_hyperparameters(run, definition, division, rules)
    _check_provenance(run, definition, division)
    if system:
        _check_system_agreement(run, system, rules)
    run.first = {}  # bounded memory: the rest of the checks use what was extracted above


def _check_eval_cadence(run, quality):
    """Evaluations happen every eval_every_steps (and at max_steps), never after max_steps: evaluating more
    often would let a run stop earlier than the benchmark allows."""
    every, max_steps = quality.get("eval_every_steps"), quality.get("max_steps")
    off = [(lineno, step) for lineno, _, _, metadata in run.evals
           for step in [metadata.get("step")] if every and isinstance(step, int) and not isinstance(step, bool)
           and ((max_steps and step > max_steps) or (step % every and step != max_steps))]
    if off:
        steps = ", ".join(str(step) for _, step in off[:5]) + (", ..." if len(off) > 5 else "")
        run.error(f"{len(off)} evals off the definition's cadence (every {every} steps, and at max_steps "
                  f"{max_steps}): steps {steps}", off[0][0])


def _check_hyperparameters(run, definition, division, rules):
    """Closed: every key of the definition's hyperparameters logged, with an allowed value, and no unknown opt_*
    key. Open: the keys listed in open_division_relaxes may take any value (or be absent); the rest as closed."""
    expected = definition.get("hyperparameters") or {}
    relaxed = set(definition.get("open_division_relaxes") or []) if division == "open" else set()
    for key, spec in expected.items():
        if key in relaxed:
            continue
        if key not in run.first:
            run.error(f"hyperparameter {key} is not logged (the {division} division requires {_describe(spec)})")
        elif not value_allowed(spec, run.value(key)):
            run.error(f"hyperparameter {key} = {_show(run.value(key))}; the {division} division requires "
                      f"{_describe(spec)}", run.first[key][0])
    if division == "closed":
        prefixes = tuple(rules.get("hyperparameter_prefixes") or ())
        for key, (lineno, *_) in run.first.items():
            if prefixes and key.startswith(prefixes) and key not in expected:
                run.error(f"hyperparameter {key} is not in the benchmark definition (closed division)", lineno)


def value_allowed(spec, value) -> bool:
    """A definition's hyperparameter entry: a value (exact), a list (allowed set; a logged list must equal the
    whole list or one member), {one_of: [...]} or a range {min: , max: } (either bound optional)."""
    if isinstance(spec, dict) and spec and set(spec) <= {"min", "max"}:
        return _is_number(value) and spec.get("min", -math.inf) <= value <= spec.get("max", math.inf)
    if isinstance(spec, dict) and set(spec) == {"one_of"}:
        return any(_same(value, member) for member in spec["one_of"])
    if isinstance(spec, list):
        return _same(value, spec) or any(_same(value, member) for member in spec)
    return _same(value, spec)


def _check_provenance(run, definition, division):
    if "provenance" not in run.first:
        return  # the key rule already reported it
    lineno, _, record, _ = run.first["provenance"]
    problem = schema.load("provenance").error(record)  # records repeat across runs: cheap after the first
    if problem:
        run.error(f"provenance: {problem}", lineno)
        return
    expected = {entry["path"]: entry["sha256"] for entry in (definition.get("dataset") or {}).get("files", [])}
    logged = record["dataset_sha256"]
    for path in sorted(set(expected) | set(logged)):
        if path not in logged:
            run.error(f"provenance: dataset file {path} was not verified (no sha256 logged)", lineno)
        elif path not in expected:
            run.error(f"provenance: dataset file {path} is not part of the benchmark's dataset", lineno)
        elif logged[path] != expected[path]:
            run.error(f"provenance: dataset {path} sha256 {logged[path]} differs from the definition's "
                      f"{expected[path]}", lineno)
    reference = definition.get("reference_code") or {}
    for name in ("workload_sha256", "common_sha256"):
        if name not in reference:
            continue
        if record["code"][name] != reference[name]:
            message = f"provenance: code {name} {record['code'][name]} differs from the released reference " \
                      f"{reference[name]}"
            if division == "closed":
                run.error(message + " (the closed division runs the released code)", lineno)
            else:
                run.warnings.append(f"{run.file}:{lineno}: {message} (allowed in the open division)")
    if record["git"].get("dirty"):
        run.warnings.append(f"{run.file}:{lineno}: produced from a git tree with uncommitted changes")
    hardware = record["hardware"]
    run.digest = {"code": record["code"], "packages.sha256": record["packages"]["sha256"],
                  "python": record["python"], "torch": record["torch"], "cuda": record["cuda"],
                  "hardware": {k: hardware[k] for k in ("cpu_model", "gpu_name", "gpu_count", "machine")}}


def _check_system_agreement(run, system, rules):
    for system_field, log_field in (rules.get("system_agreement") or {}).items():
        stated, logged_line = system.get(system_field), None
        key, *path = log_field.split(".")
        if key in run.first:
            logged_line, _, logged, _ = run.first[key]
            for part in path:
                logged = logged.get(part) if isinstance(logged, dict) else None
            if not _agree(stated, logged):
                run.error(f"{log_field} {_show(logged)} disagrees with the system description's {system_field} "
                          f"{_show(stated)}", logged_line)


def _check_runs_together(result, definition, rules, smoke, smoke_section, code_root, root):
    """Rules over the set of runs: seeds, shared provenance, failed runs, convergence; then the score."""
    runs = result.runs
    seeds = {}
    for run in runs:
        seed = _show(run.seed)
        if run.seed is not None and seed in seeds:
            result.errors.append(f"{run.file}: seed {seed} already used by {seeds[seed]} (seeds must differ)")
        seeds.setdefault(seed, run.file)
    digests = [(run.file, run.digest) for run in runs if run.digest]
    for file, digest in digests[1:]:
        first_file, first = digests[0]
        for name in digest:
            if digest[name] != first[name]:
                result.errors.append(f"{file}: provenance {name} {_show(digest[name])} differs from {first_file}'s "
                                     f"{_show(first[name])} (runs of one result share code, environment, hardware)")
    divisions = {run.file: run.division for run in runs}
    for run in runs:
        result.errors += run.errors + ([f"{run.file}: ... and {run.hidden_problems} more problems"]
                                       if run.hidden_problems else [])
        result.warnings += run.warnings
    if len(set(_show(d) for d in divisions.values() if d)) > 1:
        result.errors.append(f"runs disagree on the division: {_show(divisions, 300)}")
    _check_code_folder(result, code_root, root, digests)
    if not definition.get("reference_code"):
        result.notes.append("the definition publishes no reference_code: code hashes not compared")
    failed = [run for run in runs if run.failed]
    limit = int(rules.get("max_failed_runs", 1))
    for run in failed:
        result.notes.append(f"{run.file}: failed run ({run.failed}); counts as the slowest run")
    if len(failed) > limit:
        result.errors.append(f"{len(failed)} failed runs; olympic scoring tolerates at most {limit}")
    if not result.errors:
        _check_convergence(result, definition, rules, smoke, smoke_section)
    _score(result, drop=limit)


def _check_code_folder(result, code_root, root, digests):
    """Open division: code submitted in <submitter>/benchmarks/<benchmark>/ must hash to what the logs record."""
    if result.division != "open":
        return
    code_dir = dict(_entries(code_root, root, result.errors)).get(result.benchmark) if code_root else None
    if code_dir is None or not code_dir.is_dir():
        result.warnings.append(f"open division: no code in benchmarks/{result.benchmark}/ to compare with the logs")
        return
    unsafe = []
    list(_walk_files(code_dir, root, unsafe))  # links and odd names anywhere in the code: refuse to hash
    if unsafe:
        result.errors += unsafe
        return
    from common.provenance import tree_hash  # hashing only: provenance imports torch inside its functions

    submitted = tree_hash(code_dir)
    for file, digest in digests:
        if digest["code"]["workload_sha256"] != submitted:
            result.errors.append(f"{file}: logged workload_sha256 {digest['code']['workload_sha256']} is not the "
                                 f"hash of the code in {_rel(code_dir, root)} ({submitted})")
            break


def _check_convergence(result, definition, rules, smoke, smoke_section):
    reference = definition.get("reference_convergence") or {}
    if result.division != "closed" or not reference:
        if result.division == "closed":
            result.notes.append("the definition has no reference_convergence: convergence not compared")
        return
    if smoke and "reference_convergence" not in smoke_section:
        result.notes.append("--smoke: the definition's reference convergence is for the full configuration; skipped")
        return
    unit = "samples_to_target" if "samples_to_target" in reference else "epochs_to_target"
    points = [float(x) for x in reference.get(unit) or []]
    if len(points) < 3:
        result.warnings.append(f"reference_convergence.{unit} has {len(points)} points; at least 3 needed")
        return
    submission = []
    for run in result.runs:
        value = getattr(run, unit)
        submission.append(math.inf if run.failed or not _is_number(value) else float(value))
    test = scoring.convergence_test(points, submission, result.required_runs or len(submission),
                                    float(rules.get("convergence_alpha", 0.05)))
    test["unit"] = unit
    result.convergence = test
    if not test["passed"]:
        result.errors.append(
            f"converges significantly faster than the reference: trimmed mean {test['submission_mean']:.6g} "
            f"{unit.replace('_', ' ')} < {test['min_acceptable_mean']:.6g}, the smallest a one-sided t-test "
            f"(alpha {test['alpha']}) accepts against the reference trimmed mean {test['reference_mean']:.6g}")
    elif test["score_scale"] > 1:
        result.scaling_factor = test["score_scale"]
        result.notes.append(f"converges faster than the reference mean (within the accepted range): score scaled "
                            f"by {test['score_scale']:.4f} = reference mean / submission mean, as MLCommons does")


def _score(result, drop):
    scores = [run.score_ms for run in result.runs if run.score_ms is not None]
    failed = sum(1 for run in result.runs if run.score_ms is None)
    olympic = scoring.olympic_mean(scores, failed, drop)
    if olympic is None and not result.errors:
        result.errors.append(f"no olympic score: {len(scores)} successful runs, {failed} failed")
    if olympic is not None and not result.errors:
        result.score_minutes = olympic / 60000 * result.scaling_factor


# --- one benchmark of a real MLCommons results folder ----------------------------------------------------------
def _check_mlcommons_benchmark(result, bench_dir, root, system, rules):
    """Format and scoring as the MLCommons result summarizer does it: a log that breaks the rules is dropped
    (counts as a failed run); more failed runs than allowed leaves the benchmark without a score."""
    counts = rules["result_counts"]
    if result.benchmark not in counts:
        result.errors.append(f"{result.path}: unknown MLCommons benchmark '{result.benchmark}' "
                             f"(known: {', '.join(sorted(counts))})")
        return
    result.required_runs = counts[result.benchmark]
    keys = rules["keys"]
    files = _result_files(result, bench_dir, root, extra_ok={"scaling.json", "power"})
    _check_indices(result, files)
    for index, path in files:
        run = _read_run(path, _rel(path, root), index, keys, rules, "eval_accuracy", mlcommons=True)
        if run.run_start is not None and run.run_stop is not None and run.run_stop < run.run_start:
            run.error("run_stop is earlier than run_start")
        if run.status not in (None, "success"):
            run.failed = f"run_stop status {run.status!r}"
        if run.errors:
            run.failed = run.failed or "dropped: " + run.errors[0].split(": ", 1)[-1]
            result.notes += run.errors
        if run.failed:
            result.notes.append(f"{run.file}: failed run ({run.failed}); counts as the slowest run")
        result.warnings += run.warnings
        run.errors, run.first = [], {}
        result.runs.append(run)
    scaling = bench_dir / "scaling.json"
    if scaling.is_file() and not scaling.is_symlink():
        value, problem = _read_json(scaling, root)
        factor = value.get("scaling_factor") if isinstance(value, dict) else None
        if problem or not _is_number(factor) or factor <= 0:
            result.errors.append(problem or f"{_rel(scaling, root)}: needs a positive number scaling_factor")
        else:
            result.scaling_factor = float(factor)
            result.notes.append(f"scaling.json: score scaled by {factor}")
    drop = int(rules.get("max_failed_runs_per_benchmark", {}).get(result.benchmark, rules["max_failed_runs"]))
    failed = sum(1 for run in result.runs if run.failed)
    if failed > drop:
        result.errors.append(f"{failed} failed runs; olympic scoring tolerates at most {drop}")
    _score(result, drop)


# --- reading one log ----------------------------------------------------------------------------------------------
def _read_run(path, rel, index, keys, rules, log_key, mlcommons) -> Run:
    """Stream one log through the key rules; keep each key's first occurrence and the quality evals."""
    run = Run(file=rel, index=index)
    backwards = rules.get("time_goes_backwards", "error")
    phase, last_time = "init", None
    try:
        lines = logparse.read_events(path, mlcommons=mlcommons)
        for lineno, event, problem in lines:
            if problem:
                run.error(problem, lineno)
                continue
            key, time_ms, metadata = event["key"], event["time_ms"], event["metadata"]
            if not math.isfinite(time_ms):
                run.error(f"time_ms {time_ms} is not a finite number", lineno)
                continue
            if last_time is not None and time_ms < last_time and backwards != "off":
                message = f"time_ms {time_ms} is earlier than the line before ({last_time}): timestamps go backwards"
                if backwards == "error":
                    run.error(message, lineno)
                elif not run.warnings:  # interleaved ranks: say it once per log
                    run.warnings.append(f"{rel}:{lineno}: {message}")
            last_time = time_ms
            rule = keys.get(key)
            if rule:
                run.counts[key] += 1
                for problem in _rule_problems(rule, event, phase):
                    run.error(f"{key}: {problem}", lineno)
            if key == "run_start" and run.run_start is None:
                phase, run.run_start = "timed", time_ms
            elif key == "run_stop" and run.run_stop is None:
                phase, run.run_stop, run.status = "after", time_ms, metadata.get("status")
            elif key == log_key and phase == "timed":
                run.evals.append((lineno, time_ms, event["value"], metadata))
            if key not in run.first:
                run.first[key] = (lineno, time_ms, event["value"], metadata)
    except OSError as error:
        run.error(f"cannot read: {error.strerror or error}")
        return run
    for key, rule in keys.items():
        occurs, n = rule.get("occurs"), run.counts[key]
        if n == 0 and occurs in ("exactly_one", "at_least_one"):
            run.error(f"no {key} logged (required: {occurs.replace('_', ' ')})")
        elif n > 1 and occurs in ("exactly_one", "at_most_one"):
            run.error(f"{key} logged {n} times (allowed: {occurs.replace('_', ' ')})")
    run.seed, run.division = run.value("seed"), run.value("submission_division")
    return run


def _rule_problems(rule, event, phase):
    where = rule.get("where")
    if where == "init" and phase != "init":
        yield "must be logged before run_start (initialisation, untimed)"
    if where == "timed" and phase != "timed":
        yield "must be logged inside the timed region (between run_start and run_stop)"
    if "event_type" in rule and event["event_type"] != rule["event_type"]:
        yield f"event_type {event['event_type']}, expected {rule['event_type']}"
    for name in rule.get("metadata", ()):
        if name not in event["metadata"]:
            yield f"metadata lacks '{name}'"
    if "values" in rule and not any(_same(event["value"], v) for v in rule["values"]):
        yield f"value {_show(event['value'])} is not one of {_show(rule['values'])}"


def _key_rules(rules, definition, log_key) -> dict:
    """Common key rules + the definition's hyperparameter keys + its log_rules (merged key by key)."""
    keys = {}
    for key, rule in rules["keys"].items():
        keys[log_key if key == QUALITY_KEY else key] = dict(rule)
    for key in definition.get("hyperparameters") or {}:
        keys.setdefault(key, {"occurs": "at_most_one", "where": "init"})
    for key, rule in (definition.get("log_rules") or {}).items():
        keys[key] = {**keys.get(key, {}), **rule}
    return keys


# --- layout -------------------------------------------------------------------------------------------------------
def _result_files(result, bench_dir, root, extra_ok=frozenset()) -> list[tuple[int, Path]]:
    files = []
    for name, path in _entries(bench_dir, root, result.errors):
        match = RESULT_NAME.fullmatch(name)
        if match and path.is_file():
            files.append((int(match.group(1)), path))
        elif name.startswith("result"):
            result.errors.append(f"{_rel(path, root)}: not a result file (expected a file named result_<i>.txt)")
        elif name not in extra_ok:
            result.warnings.append(f"{_rel(path, root)}: ignored")
    return sorted(files, key=lambda item: (item[0], item[1].name))


def _check_indices(result, files):
    indices = [index for index, _ in files]
    for index, n in Counter(indices).items():
        if n > 1:
            names = ", ".join(p.name for i, p in files if i == index)
            result.errors.append(f"{result.path}: duplicate result index {index} ({names})")
    if indices:
        first = min(indices)
        expected = set(range(first, first + result.required_runs))
        if first not in (0, 1):
            result.errors.append(f"{result.path}: result indices start at {first}; they start at 0 or 1")
        missing = sorted(expected - set(indices))
        if missing and first in (0, 1):
            result.errors.append(f"{result.path}: missing result index {', '.join(map(str, missing))}")
        extra = sorted(set(indices) - expected)
        if extra and first in (0, 1):
            result.errors.append(f"{result.path}: unexpected result index {', '.join(map(str, extra))} "
                                 f"(the benchmark requires {result.required_runs} runs)")
    if len(files) < result.required_runs:
        result.errors.append(f"{result.path}: {len(files)} result files, the benchmark requires "
                             f"{result.required_runs}")


def _entries(directory: Path, root: Path, errors: list):
    """(name, path) of a folder's entries, sorted; hidden entries skipped. Names that are not plain, symlinks and
    special files are reported as errors and skipped: nothing outside the checked folder is ever read."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        errors.append(f"{_rel(directory, root)}: cannot list: {error.strerror or error}")
        return []
    entries = []
    for name in names:
        path = directory / name
        shown = _rel(path, root)
        if name.startswith("."):
            continue
        problem = _bad_name(name)
        if problem:
            errors.append(f"{shown}: {problem}")
        elif path.is_symlink():
            target = os.path.realpath(path)
            if os.path.commonpath([target, str(root)]) != str(root):
                errors.append(f"{shown}: symlink pointing outside the checked folder (to {_printable(target)}); "
                              "not followed")
            else:
                errors.append(f"{shown}: symlink; results must be plain files and folders, not links")
        elif not (path.is_file() or path.is_dir()):
            errors.append(f"{shown}: not a regular file or folder")
        else:
            entries.append((name, path))
    return entries


def _walk_files(directory, root, errors):
    for name, path in _entries(directory, root, errors):
        if path.is_dir():
            yield from _walk_files(path, root, errors)
        else:
            yield path


def _bad_name(name: str) -> str | None:
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in name):
        return "name is not valid UTF-8"
    if ".." in name:
        return "'..' in a name is not allowed"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "control characters in a name are not allowed"
    if len(name.encode()) > 255:
        return "name longer than 255 bytes"
    return None


def _benchmark_dirs(submitter_dir):
    results = submitter_dir / "results"
    if results.is_symlink():
        return []
    try:
        return [b for s in results.iterdir() if s.is_dir() and not s.is_symlink()
                for b in s.iterdir() if b.is_dir() and not b.is_symlink() and not _bad_name(b.name)]
    except OSError:
        return []


def _is_submitter(path: Path) -> bool:
    return (path / "results").is_dir() or (path / "systems").is_dir()


def _load_system(path: Path | None, shown: str, root: Path):
    if path is None or not path.is_file():
        return None, [f"{shown}: missing system description"]
    value, problem = _read_json(path, root)
    if problem:
        return None, [problem]
    problem = schema.load("system_desc").error(value)
    if problem:
        return None, [f"{shown}: {problem}"]
    return value, []


def _read_json(path: Path, root: Path):
    shown = _rel(path, root)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None, f"{shown}: larger than {MAX_JSON_BYTES} bytes"
        return json.loads(path.read_bytes().decode("utf-8")), None
    except UnicodeDecodeError as error:
        return None, f"{shown}: not valid UTF-8 (byte offset {error.start})"
    except (ValueError, RecursionError) as error:
        return None, f"{shown}: invalid JSON: {error}"
    except OSError as error:
        return None, f"{shown}: cannot read: {error.strerror or error}"


def _find_definitions(definitions_root):
    root = Path(definitions_root) if definitions_root else definitions_lib.REPO_ROOT
    try:
        return definitions_lib.workload_dirs(root), ""
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        return {}, f"; the benchmark definitions under {root} could not be read: {error}"


@lru_cache(maxsize=None)
def _load_definition(directory: Path, smoke: bool) -> tuple[dict, dict]:
    """The definition (smoke overrides applied with --smoke) and its raw smoke section. Callers do not mutate."""
    raw = yaml.safe_load((directory / definitions_lib.DEFINITION_FILE).read_text())
    return definitions_lib.load(directory, smoke=smoke), raw.get("smoke") or {}


@lru_cache(maxsize=None)
def _load_rules(name: str) -> dict:
    return yaml.safe_load((RULES_DIR / f"{name}.yaml").read_text())


# --- small helpers ----------------------------------------------------------------------------------------------
def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _same(a, b) -> bool:
    """JSON equality: true is not 1, 64 equals 64.0, lists and objects compare element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _agree(stated, logged) -> bool:
    """Where the system description and a log both state a fact, they must agree (see rules/common.yaml)."""
    missing = (None, "", "n/a", "na", "none")
    if stated is None or logged is None or str(stated).strip().lower() in missing or \
            str(logged).strip().lower() in missing:
        return True
    if _is_number(logged) or _is_number(stated):
        try:
            return int(str(stated).strip()) == int(str(logged).strip())
        except ValueError:
            return False
    a, b = (" ".join(str(x).casefold().split()) for x in (stated, logged))
    return a in b or b in a


def _describe(spec) -> str:
    if isinstance(spec, dict) and set(spec) <= {"min", "max"}:
        return f"a value in [{spec.get('min', '-inf')}, {spec.get('max', 'inf')}]"
    if isinstance(spec, dict) and set(spec) == {"one_of"}:
        return f"one of {_show(spec['one_of'])}"
    if isinstance(spec, list):
        return f"one of {_show(spec)}"
    return _show(spec)


def _show(value, limit: int = 80) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _printable(text: str) -> str:
    """Names come from the file system: escape what would garble a terminal or fail to encode."""
    return text if text.isprintable() else ascii(text)[1:-1]


def _rel(path: Path, root: Path) -> str:
    try:
        return _printable(path.relative_to(root).as_posix())
    except ValueError:
        return _printable(str(path))
