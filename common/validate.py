"""`invoke validate smoke|full`: run every selected workload exactly as a submitter does (its run_and_time.sh), in the
checker's results layout, check the results with the submission checker, and give one table of what passed, how
long each took and where the time went, as text, CSV and JSON, plus the HTML dashboard (common/dashboard.py).

    <out>/results/<submitter>/...           the runs' MLPerf logs (and LoadGen's files): the checker's layout
    <out>/logs/<workload>.log               each run_and_time.sh's output
    <out>/checker/                          the checker's reports over <out>/results
    <out>/validate.csv, validate.json       the table
    <out>/dashboard/index.html              the dashboard

One run per workload (seed --seed), the smoke configuration (seconds each; setup confidence) or the full one (what
the README's figures measure). A workload whose data is not there is not run: its row says NO DATA and how to get
it (`--download` runs its download_dataset.sh first). Without --keep-going the first workload that does not pass
stops the rest (NOT RUN); with it every workload runs. Exit status 1 when any row is not PASS.

Columns: status (PASS: run_and_time.sh exited 0 and the checker finds its runs valid and on target), metric vs
target (the run's last quality figure; inference: every variant's), score (training: minutes from run_start to
run_stop; inference: each variant's performance metric), wall time of run_and_time.sh, the time of it outside the
scored region (everything but run_start..run_stop: interpreter start, imports, data and model loading, an inference
run's accuracy pass), peak resident memory of the run's processes (getrusage of the waited-for process tree), and
energy of the scored region, or "unmeasured" with the log's reason.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from common import benchmark, doctor, fetch
from common.bench import read_log

CONFIGS = ("smoke", "full")
PASS, FAIL, NO_DATA, NOT_RUN = "PASS", "FAIL", "NO DATA", "NOT RUN"
COLUMNS = ("workload", "suite", "kind", "status", "metric_vs_target", "score", "wall_s", "outside_scored_s",
           "peak_memory_mb", "energy", "checker", "reason")


class ValidateError(Exception):
    """A validate that cannot start; one sentence."""


@dataclass
class Row:
    workload: str
    suite: str
    kind: str
    status: str = NOT_RUN
    metric_vs_target: str = ""
    score: str = ""
    wall_s: float | None = None
    outside_scored_s: float | None = None
    peak_memory_mb: float | None = None
    energy: str = ""
    checker: str = ""
    reason: str = ""
    exit_code: int | None = None
    scored_s: float | None = None
    log: str = ""
    result_files: list = field(default_factory=list)


def default_out(config: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return benchmark.REPO_ROOT / "validate" / f"{config}-{stamp}"


def _first(events: list[dict], key: str) -> dict | None:
    return next((e for e in events if e["key"] == key), None)


def _last(events: list[dict], key: str) -> dict | None:
    return next((e for e in reversed(events) if e["key"] == key), None)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def read_run(log: Path, definition: dict) -> dict:
    """What validate reports of one MLPerf log: scored seconds, quality value, score, energy."""
    events, _ = read_log(log)  # a malformed line is the checker's to report
    start, stop = _first(events, "run_start"), _first(events, "run_stop")
    scored = (stop["time_ms"] - start["time_ms"]) / 1000 if start and stop else None
    variant = log.parent.name if definition["kind"] == "inference" else None
    from common import loadgen  # the variant's own target and gates

    quality = loadgen.variant_quality(definition, variant) if variant else definition["quality"]
    value_event = _last(events, quality["log_key"])
    energy = _first(events, "energy")
    figures = {"log": str(log), "variant": variant, "scored_s": scored,
               "status": (stop or {}).get("metadata", {}).get("status"),
               "quality_metric": quality["metric"], "quality_value": value_event["value"] if value_event else None,
               "target": quality["target"], "direction": quality["direction"],
               "energy_joules": (energy["value"] or {}).get("joules") if energy and isinstance(energy["value"], dict)
               and energy["value"].get("measured") else None,
               "energy_reason": (energy["value"] or {}).get("reason") if energy and isinstance(energy["value"], dict)
               else "no energy record in the log"}
    if definition["kind"] == "inference" and stop:
        meta = stop["metadata"]
        figures["score_metric"], figures["score_value"] = meta.get("metric"), meta.get("value")
    return figures


def _quality_text(run: dict) -> str:
    sign = ">=" if run["direction"] == "maximize" else "<="
    value = "-" if run["quality_value"] is None else _fmt(run["quality_value"])
    head = f"{run['variant']}: " if run["variant"] else ""
    return f"{head}{run['quality_metric']} {value} (target {sign} {_fmt(run['target'])})"


def _score_text(run: dict, kind: str) -> str:
    if kind == "training":
        if run["scored_s"] is None:
            return "-"
        return (f"{run['scored_s']:.3g} s to target" if run["scored_s"] < 120 else
                f"{run['scored_s'] / 60:.3g} min to target")
    if run.get("score_value") is None:
        return f"{run['variant']}: -"
    from submission_checker.scoring import unit_of

    return f"{run['variant']}: {_fmt(run['score_value'])} {unit_of(run['score_metric'])}"


def _tail_reason(log: Path) -> str:
    """The run's last line that says what went wrong (error:, Error, Traceback's last line), else its last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    for line in reversed(lines):
        if line.lower().startswith("error") or "Error:" in line or "error:" in line:
            return line[:300]
    return lines[-1][:300] if lines else ""


def _run_script(script: Path, seed: int, env: dict, log: Path) -> tuple[int, float, float]:
    """run_and_time.sh as a child process: (exit code, wall seconds, peak RSS in MB of it and its descendants)."""
    started = time.time()
    with open(log, "wb") as out:
        process = subprocess.Popen(["bash", str(script), str(seed)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except KeyboardInterrupt:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss of a waited-for child covers its reaped descendants too (Linux: kilobytes)
    return process.returncode, time.time() - started, usage.ru_maxrss / 1024


def _data_problem(name: str, definition: dict, data_dir: Path, smoke: bool) -> doctor.Check | None:
    cache = doctor.VerifiedCache(data_dir)
    checks = [doctor.dataset_check(name, definition, data_dir, cache, offline=True, probes={})]
    checks += doctor.weights_checks(name, definition, data_dir, cache, smoke)
    cache.save()
    return next((c for c in checks if c.status == doctor.MISSING), None)


def run_workload(name: str, config: str, out: Path, seed: int, data_dir: Path, download: bool, env: dict) -> Row:
    smoke = config == "smoke"
    definition = benchmark.load(name, smoke=smoke)
    row = Row(name, definition["suite"], definition["kind"])
    script_env = {**env, "DATA_DIR": str(data_dir), "RESULTS_DIR": str(out / "results"),
                  "SMOKE": "1" if smoke else "0"}
    for key in ("LOGFILE", "VARIANT", "SYNTHETIC_DATA"):  # validate runs every variant on the real data
        script_env.pop(key, None)
    log = out / "logs" / f"{name}.log"
    row.log = str(log)
    problem = _data_problem(name, definition, data_dir, smoke)
    if problem and download:
        with open(out / "logs" / f"{name}.download.log", "wb") as output:
            subprocess.run(["bash", str(Path(definition["directory"]) / "download_dataset.sh")], env=script_env,
                           stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
        problem = _data_problem(name, definition, data_dir, smoke)
    if problem:
        row.status, row.reason = NO_DATA, f"{problem.detail}; fix: {problem.fix}"
        return row
    code, row.wall_s, row.peak_memory_mb = _run_script(Path(definition["directory"]) / "run_and_time.sh", seed,
                                                       script_env, log)
    row.wall_s, row.peak_memory_mb, row.exit_code = round(row.wall_s, 2), round(row.peak_memory_mb, 1), code
    logs = sorted((out / "results").glob(f"*/results/*/{name}/**/result_*.txt"))
    row.result_files = [str(p) for p in logs]
    runs = [read_run(p, definition) for p in logs]
    scored = [r["scored_s"] for r in runs if r["scored_s"] is not None]
    row.scored_s = round(sum(scored), 3) if scored else None
    row.outside_scored_s = round(row.wall_s - sum(scored), 2) if scored else None
    row.metric_vs_target = "; ".join(_quality_text(r) for r in runs)
    row.score = "; ".join(_score_text(r, row.kind) for r in runs)
    joules = [r["energy_joules"] for r in runs]
    row.energy = (f"{sum(joules):.4g} J" if runs and None not in joules else
                  "unmeasured" + (f" ({runs[0]['energy_reason']})" if runs and runs[0]["energy_reason"] else ""))
    if code != 0:
        row.status, row.reason = FAIL, f"run_and_time.sh exit code {code}: {_tail_reason(log)}"
    elif not logs:
        row.status, row.reason = FAIL, f"run_and_time.sh wrote no MLPerf log under {out / 'results'}"
    else:
        row.status = PASS  # until the checker says otherwise
    return row


def apply_checker(rows: list[Row], out: Path, smoke: bool) -> dict | None:
    """Check <out>/results with the submission checker (reports in <out>/checker) and fold its verdicts into the
    rows: a run the checker finds invalid or off target fails the row."""
    from submission_checker import checker, report

    if not (out / "results").is_dir():
        return None
    document = report.write(checker.check(out / "results", smoke=smoke), out / "checker")
    by_benchmark: dict[str, list[dict]] = {}
    for result in document["results"]:
        by_benchmark.setdefault(result["benchmark"], []).append(result)
    for row in rows:
        results = by_benchmark.get(row.workload)
        if row.status != PASS:
            continue
        if not results:
            row.status, row.checker, row.reason = FAIL, "no result", "the checker found no result of this workload"
            continue
        verdicts = []
        for result in results:
            label = f"{result['variant']}: " if result["variant"] else ""
            bad_runs = [run for run in result["runs"] if run["verdict"] != "ok"]
            if bad_runs:
                run = bad_runs[0]
                why = run["failed"] or next(iter(result["errors"]), run["verdict"])
                row.status, row.reason = FAIL, f"{label}{run['file']}: {why}"
                verdicts.append(f"{label}FAIL")
            elif result["verdict"] == "PASS":
                verdicts.append(f"{label}PASS")
            elif result["valid_runs"] < result["required_runs"]:
                verdicts.append(f"{label}run valid; a score needs {result['required_runs']} runs")
            else:
                row.status, row.reason = FAIL, f"{label}{result['errors'][0] if result['errors'] else 'FAIL'}"
                verdicts.append(f"{label}FAIL")
        row.checker = "; ".join(verdicts)
    return document


def format_table(rows: list[Row]) -> str:
    header = ("workload", "kind", "status", "metric vs target", "score", "wall s", "outside s", "peak MB", "energy")
    cells = [header] + [(r.workload, r.kind, r.status, r.metric_vs_target or r.reason[:60], r.score or "-",
                         _fmt(r.wall_s) if r.wall_s is not None else "-",
                         _fmt(r.outside_scored_s) if r.outside_scored_s is not None else "-",
                         _fmt(r.peak_memory_mb) if r.peak_memory_mb is not None else "-",
                         r.energy.split(" (")[0] or "-") for r in rows]
    widths = [min(max(len(str(c[i])) for c in cells), 48) for i in range(len(header))]  # CSV/JSON: in full
    lines = ["  ".join(str(c[i])[:widths[i]].ljust(widths[i]) for i in range(len(header))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    problems = [f"  {r.workload}: {r.status}: {r.reason}" for r in rows if r.status not in (PASS, NOT_RUN)]
    return "\n".join(lines + ([""] + problems if problems else [])) + "\n"


def write_outputs(rows: list[Row], out: Path, meta: dict) -> None:
    with open(out / "validate.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: getattr(row, key) for key in COLUMNS})
    (out / "validate.json").write_text(json.dumps({**meta, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")


def validate(config: str, workloads: list[str], out: Path, seed: int = 1, keep_going: bool = False,
             data_dir: Path | None = None, download: bool = False, env: dict | None = None,
             progress: bool | None = None) -> tuple[list[Row], Path]:
    """Run, check, tabulate; returns the rows and the output folder."""
    from tqdm import tqdm

    if config not in CONFIGS:
        raise ValidateError(f"unknown configuration {config!r}: choose smoke or full")
    if not workloads:
        raise ValidateError("no workload selected")
    out = Path(out).resolve()
    if (out / "results").exists():
        raise ValidateError(f"{out} already holds a validate run; choose another --out (runs are never overwritten)")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    data_dir = Path(data_dir or fetch.default_data_dir()).resolve()
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(benchmark.REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHON", sys.executable)
    started = time.time()
    rows, stopped = [], False

    def meta(finished: bool) -> dict:
        return {"config": config, "seed": seed, "data_dir": str(data_dir), "keep_going": keep_going,
                "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
                "wall_s": round(time.time() - started, 1), "finished": finished, "workloads": workloads}

    bar = tqdm(workloads, desc=f"validate {config}", unit="workload", file=sys.stderr,
               disable=(not sys.stderr.isatty()) if progress is None else not progress)
    for name in bar:
        if stopped:
            definition = benchmark.load(name)
            rows.append(Row(name, definition["suite"], definition["kind"], reason="an earlier workload did not "
                            "pass (--keep-going runs every one)"))
            continue
        bar.set_postfix_str(name)
        row = run_workload(name, config, out, seed, data_dir, download, env)
        rows.append(row)
        if bar.disable:  # no bar (not a terminal): one line per workload instead
            print(f"[{len(rows)}/{len(workloads)}] {name}: {row.status}"
                  + (f" in {row.wall_s:.1f} s" if row.wall_s is not None else "") + (f" ({row.reason})" if
                                                                                      row.reason else ""),
                  file=sys.stderr, flush=True)
        if row.status != PASS and not keep_going:
            stopped = True
        write_outputs(rows, out, meta(finished=False))  # an interrupted validate keeps the table so far
    bar.close()
    apply_checker(rows, out, smoke=config == "smoke")
    write_outputs(rows, out, meta(finished=True))
    from common import dashboard

    dashboard.build(out / "results", out / "dashboard", validate_file=out / "validate.json",
                    checker_report=out / "checker" / "report.json")
    return rows, out
