"""Real MLCommons training results (v4.x/v5.x), read with rules/mlcommons.yaml: the log format and the scoring of
the MLCommons result summarizer, accepting what the official tools accept (mlperf_logging's parser and compliance
checker): MLLOG lines wrapped in other output, metadata without file and lineno, a key allowed once logged again
with the same value (a warning). A log that breaks the rules is dropped and counts as a failed run, as the
summarizer drops a log its compliance checker rejects; MLCommons quality and hyperparameter rules are out of scope.
"""
from __future__ import annotations

from submission_checker import layout, logrules, scoring
from submission_checker.util import is_number, rel


def check_benchmark(result, bench_dir, root, system, rules):
    """Format and scoring as the MLCommons result summarizer does it: a log that breaks the rules is dropped
    (counts as a failed run); more failed runs than allowed leaves the benchmark without a score."""
    counts = rules["result_counts"]
    if result.benchmark not in counts:
        result.errors.append(f"{result.path}: unknown MLCommons benchmark '{result.benchmark}' "
                             f"(known: {', '.join(sorted(counts))})")
        return
    result.required_runs = counts[result.benchmark]
    keys = rules["keys"]
    files = layout.result_files(result, bench_dir, root, extra_ok={"scaling.json", "power"})
    layout.check_indices(result, files)
    for index, path in files:
        run = logrules.read_run(path, rel(path, root), index, keys, rules, "eval_accuracy", mlcommons=True)
        if run.run_start is not None and run.run_stop is not None and run.run_stop < run.run_start:
            run.error("run_stop is earlier than run_start", run.first["run_stop"][0])
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
        value, problem = layout.read_json(scaling, root)
        factor = value.get("scaling_factor") if isinstance(value, dict) else None
        if problem or not is_number(factor) or factor <= 0:
            result.errors.append(problem or f"{rel(scaling, root)}: needs a positive number scaling_factor")
        else:
            result.scaling_factor = float(factor)
            result.notes.append(f"scaling.json: score scaled by {factor}")
    drop = int(rules.get("max_failed_runs_per_benchmark", {}).get(result.benchmark, rules["max_failed_runs"]))
    failed = sum(1 for run in result.runs if run.failed)
    if failed > drop:
        result.errors.append(f"{failed} failed runs; olympic scoring tolerates at most {drop}")
    scoring.score_result(result, drop)
