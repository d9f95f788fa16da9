"""Check a results folder: walk the layout, hand each benchmark folder to the rules of its kind, collect a verdict.

    <submitter>/systems/<system>.json                       system description
    <submitter>/results/<system>/<benchmark>/result_<i>.txt one MLLOG log per run
    <submitter>/benchmarks/<benchmark>/                     code (open division)

What a benchmark requires comes from data: rules/common.yaml (keys every log carries) and the benchmark's own
definition (<suite>/<workload>/benchmark.yaml: target, closed hyperparameters, dataset checksums, required runs,
released code hash, reference convergence, optional `log_rules:`). There is no per-benchmark code.
A real MLCommons training results folder is read with rules/mlcommons.yaml instead (format and scoring only).

An inference benchmark (kind: inference) has one folder per performance variant, each its own result:

    <submitter>/results/<system>/<benchmark>/<variant>/result_<i>.txt + loadgen_<i>/{performance,accuracy}/

Modules: layout.py (the folder as files), logrules.py (one log through key rules), suite.py (what every log of this
suite says, whatever its kind), training.py (this suite's training benchmarks), inference.py (its inference
benchmarks, LoadGen), mlcommons.py (real MLCommons training results), scoring.py, report.py; util.py (helpers).

Two kinds of problems: an *error* breaks the rules and fails the benchmark; a *failed run* (run_stop status not
success) is allowed once in training, as MLPerf allows, and counts as the slowest run in olympic scoring (inference
allows none).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from submission_checker import inference, layout, suite, training
from submission_checker import mlcommons as mlcommons_mode  # `mlcommons` is check()'s flag
from submission_checker.logrules import Run, load_rules
from submission_checker.training import value_allowed
from submission_checker.util import rel

__all__ = ["Report", "Result", "Run", "check", "value_allowed"]


@dataclass
class Result:
    """One benchmark (one variant of an inference benchmark) of one system of one submitter: the unit that gets a
    verdict and a score."""
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
    kind: str = "training"          # training | inference
    variant: str | None = None      # inference: the performance variant (its own folder, its own score)
    scenario: str | None = None     # inference: the variant's LoadGen scenario
    metric: str | None = None       # inference: the variant's performance metric, e.g. tokens_per_second
    score_value: float | None = None      # inference: the median over the runs of the metric (a PASS only)
    score_direction: str | None = None    # inference: minimize | maximize
    score_cv: float | None = None   # inference: coefficient of variation of the runs' metric (population stdev/mean)

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
    suite.load_definition.cache_clear()  # read each definition once per check, afresh for every check
    definitions, definition_error = suite.find_definitions(definitions_root)
    report = Report(folder=str(root), smoke=smoke, mode="suite")
    if not root.is_dir():
        report.errors.append(f"{folder}: not a directory")
        return report
    submitters = [root] if layout.is_submitter(root) else []
    for _, path in ([] if submitters else layout.entries(root, root, report.errors)):
        if path.is_dir() and layout.is_submitter(path):
            submitters.append(path)
        else:
            report.warnings.append(f"{rel(path, root)}: ignored (not a submitter folder with results/ and systems/)")
    if not submitters:
        report.errors.append(f"{folder}: no submissions found; expected <submitter>/results/<system>/<benchmark>/"
                             "result_<i>.txt next to <submitter>/systems/<system>.json (see --help)")
        return report
    mlcommons_rules = load_rules("mlcommons")
    if mlcommons is None:
        names = {p.name for s in submitters for p in layout.benchmark_dirs(s)}
        mlcommons = bool(names) and not names & set(definitions) and names <= set(mlcommons_rules["result_counts"])
    report.mode = "mlcommons" if mlcommons else "suite"
    rules = mlcommons_rules if mlcommons else load_rules("common")
    tasks = []
    for submitter_dir in submitters:
        tasks += _walk_submitter(report, root, submitter_dir, definitions, definition_error, rules, smoke)
    jobs = jobs or (min(os.cpu_count() or 1, 8) if len(tasks) >= 16 else 1)
    checked = []
    if jobs > 1:
        try:
            with ProcessPoolExecutor(jobs) as pool:
                checked = list(pool.map(_check_task, tasks, chunksize=max(1, len(tasks) // (4 * jobs))))
        except (OSError, RuntimeError) as error:  # no processes here (sandbox, broken pool): check serially
            report.warnings.append(f"parallel check unavailable ({error}); checked in one process")
    if not checked:
        checked = [_check_task(task) for task in tasks]
    report.results = [result for results in checked for result in results]
    return report


def _check_task(task) -> list[Result]:
    """Check one benchmark folder (in a worker process when jobs > 1). A training folder is one result; an
    inference folder returns one result per variant."""
    function, result, *args = task
    try:
        results = function(result, *args)
    except Exception as error:  # a checker bug or a definition it cannot apply: never a pass
        result.errors.append(f"{result.path}: internal error while checking: {type(error).__name__}: {error}")
        return [result]
    return results if results is not None else [result]


def _walk_submitter(report, root, submitter_dir, definitions, definition_error, rules, smoke) -> list:
    """Layout checks of one submitter folder; returns the benchmark folders to check, as tasks."""
    tasks = []
    submitter = submitter_dir.name if submitter_dir != root else root.name
    entries = dict(layout.entries(submitter_dir, root, report.errors))
    for name in sorted(set(entries) - {"systems", "results", "benchmarks"}):
        report.warnings.append(f"{rel(entries[name], root)}: ignored (a submitter folder holds systems/, "
                               "results/ and benchmarks/)")
    results_dir, systems_dir = entries.get("results"), entries.get("systems")
    results_dir = results_dir if results_dir and results_dir.is_dir() else None
    systems = dict(layout.entries(systems_dir, root, report.errors)) if systems_dir and systems_dir.is_dir() else {}
    system_dirs = [p for _, p in layout.entries(results_dir, root, report.errors)] if results_dir else []
    if not [p for p in system_dirs if p.is_dir()]:
        report.errors.append(f"{rel(submitter_dir, root)}: no system folders in results/")
    for system_dir in system_dirs:
        if not system_dir.is_dir():
            report.warnings.append(f"{rel(system_dir, root)}: ignored (results/ holds one folder per system)")
            continue
        system_file = f"{rel(submitter_dir, root)}/systems/{system_dir.name}.json"
        system, system_errors = layout.load_system(systems.get(f"{system_dir.name}.json"), system_file, root)
        bench_dirs = [p for _, p in layout.entries(system_dir, root, report.errors)]
        if not [p for p in bench_dirs if p.is_dir()]:
            report.errors.append(f"{rel(system_dir, root)}: no benchmark folders")
        for bench_dir in bench_dirs:
            if not bench_dir.is_dir():
                if report.mode == "suite" or bench_dir.name != "privateid.json":
                    report.warnings.append(f"{rel(bench_dir, root)}: ignored (not a benchmark folder)")
                continue
            result = Result(submitter=submitter, system=system_dir.name, benchmark=bench_dir.name,
                            path=rel(bench_dir, root), mode=report.mode)
            result.errors += system_errors
            result.division = (system or {}).get("division")
            if report.mode == "mlcommons":
                tasks.append((mlcommons_mode.check_benchmark, result, bench_dir, root, system, rules))
            else:
                kind = suite.kind_of(definitions, bench_dir.name, smoke)
                check_benchmark = inference.check_benchmark if kind == "inference" else training.check_benchmark
                tasks.append((check_benchmark, result, bench_dir, root, entries.get("benchmarks"), system,
                              definitions, definition_error, rules, smoke))
    return tasks
