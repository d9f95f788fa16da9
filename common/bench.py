"""`invoke bench <workload>`: the full benchmark over the required seeds, with what a student can improve.

For each seed it runs run_and_time.sh into the suite's results layout (common/results.py), reads the log with
the submission checker's reader (submission_checker/logparse.py) and scores the set with its olympic scoring.
It also measures the machine, not only the clock:

- the time outside the scored region of every run: process start to init_start (interpreter, imports),
  init_start to run_start (device, data, model, provenance) and run_stop to process exit;
- the model FLOPs of one training step (torch's FlopCounterMode over the first step, in a separate probe run
  that is never scored) and the achieved FLOP/s over the training time, against a measured matmul peak of this
  machine in fp32 and bf16.

Figures are printed as a table and written as CSV and JSON under <results>/bench/.
"""
from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import benchmark, results
from submission_checker import logparse, scoring


class BenchError(Exception):
    """A bench that cannot start; the message is one sentence for the user."""


@dataclass
class RunFigures:
    seed: int
    log_file: str
    exit_code: int
    success: bool = False
    scored_s: float | None = None       # run_start -> run_stop: the score
    steps: int | None = None
    samples: int | None = None
    final_metric: float | None = None
    eval_s: float | None = None         # eval_start -> eval_stop, summed (inside the scored region)
    overhead_ms: float | None = None    # harness time inside the scored region
    provenance_ms: float | None = None
    before_init_s: float | None = None  # process start -> init_start (interpreter start, imports)
    init_s: float | None = None         # init_start -> run_start (device, data, model, provenance)
    after_stop_s: float | None = None   # run_stop -> process exit
    wall_s: float | None = None
    problems: list = field(default_factory=list)

    @property
    def outside_s(self) -> float | None:
        parts = (self.before_init_s, self.init_s, self.after_stop_s)
        return None if None in parts else sum(parts)


def read_log(path: Path) -> tuple[list[dict], list[str]]:
    """The log's events and its problems (file:line), read by the checker's own reader."""
    events, problems = [], []
    for lineno, event, problem in logparse.read_events(path):
        if problem:
            problems.append(f"{path}:{lineno}: {problem}")
        else:
            events.append(event)
    return events, problems


def summarise_log(figures: RunFigures, log_key: str, started: float, ended: float) -> RunFigures:
    """Fill a run's figures from its log; started/ended are the process's wall-clock start and end (seconds)."""
    path = Path(figures.log_file)
    if not path.is_file():
        figures.problems.append(f"{path}: no log was written")
        return figures
    events, figures.problems = read_log(path)
    first = {}
    for event in events:
        first.setdefault(event["key"], event)
    ms = {key: first[key]["time_ms"] for key in ("init_start", "run_start", "run_stop") if key in first}
    evals = [e for e in events if e["key"] == log_key]
    stop = first.get("run_stop")
    figures.success = bool(stop and stop["metadata"].get("status") == "success")
    if "run_start" in ms and "run_stop" in ms:
        figures.scored_s = (ms["run_stop"] - ms["run_start"]) / 1000
    if "init_start" in ms:
        figures.before_init_s = ms["init_start"] / 1000 - started
        if "run_start" in ms:
            figures.init_s = (ms["run_start"] - ms["init_start"]) / 1000
    if "run_stop" in ms:
        figures.after_stop_s = ended - ms["run_stop"] / 1000
    figures.wall_s = ended - started
    starts = [e["time_ms"] for e in events if e["key"] == "eval_start"]
    stops = [e["time_ms"] for e in events if e["key"] == "eval_stop"]
    figures.eval_s = sum(b - a for a, b in zip(starts, stops)) / 1000
    if stop:
        figures.steps = stop["metadata"].get("steps")
        figures.overhead_ms = stop["metadata"].get("harness_overhead_ms")
        figures.provenance_ms = stop["metadata"].get("provenance_ms")
    if evals:
        figures.samples = evals[-1]["metadata"].get("samples_count")
        figures.final_metric = evals[-1]["value"]
    return figures


def run_seeds(name: str, seeds: list[int], root: Path, smoke: bool = False, nproc: int = 1,
              env: dict | None = None) -> tuple[list[RunFigures], Path]:
    """One run_and_time.sh per seed, logs as result_0..N-1 of a new benchmark folder in the results layout.
    Refuses a folder that already holds results: a bench writes a complete set and never overwrites one."""
    definition = benchmark.load(name, smoke=smoke)
    script = Path(definition["directory"]) / "run_and_time.sh"
    device = (env or {}).get("DEVICE") or os.environ.get("DEVICE") or ""
    system, _ = results.local_system(device)
    bench_dir = results.benchmark_dir(root, name, system)
    if results.used_indices(bench_dir):
        raise BenchError(f"{bench_dir} already holds {len(results.used_indices(bench_dir))} result(s); a bench "
                         "writes a complete set of runs: move them away or choose another folder with --out")
    results.prepare_local_run(name, smoke=smoke, root=root, device=device)  # the system description
    figures = []
    for index, seed in enumerate(seeds):
        log_file = bench_dir / f"result_{index}.txt"
        run_env = {**os.environ, **(env or {}), "LOGFILE": str(log_file), "NPROC": str(nproc),
                   "SMOKE": "1" if smoke else "0", "PYTHON": os.environ.get("PYTHON", sys.executable)}
        print(f"[{name}] seed {seed}: run {index + 1}/{len(seeds)} -> {log_file}", flush=True)
        started = time.time()
        code = subprocess.run(["bash", str(script), str(seed)], env=run_env, check=False).returncode
        ended = time.time()
        figures.append(summarise_log(RunFigures(seed, str(log_file), code), definition["quality"]["log_key"],
                                     started, ended))
    return figures, bench_dir


def count_flops(name: str, smoke: bool = False, env: dict | None = None) -> dict | None:
    """Model FLOPs of one training step, from a probe run of train.py --count-flops (one process, never
    scored: it stops after its first step and writes no MLPerf log)."""
    definition = benchmark.load(name, smoke=smoke)
    run_env = {**os.environ, **(env or {})}
    run_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(benchmark.REPO_ROOT), run_env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="flops-") as tmp:
        out = Path(tmp) / "flops.json"
        command = [run_env.get("PYTHON", sys.executable), str(Path(definition["directory"]) / "train.py"),
                   "--seed", "1", "--count-flops", str(out),
                   "--data-dir", run_env.get("DATA_DIR", str(benchmark.REPO_ROOT / "data"))]
        if smoke:
            command.append("--smoke")
        if run_env.get("DEVICE"):
            command += ["--device", run_env["DEVICE"]]
        proc = subprocess.run(command, env=run_env, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.is_file():
            print(f"[{name}] FLOP probe failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}", flush=True)
            return None
        return json.loads(out.read_text())


def matmul_peak(device_name: str | None = None, seconds: float = 1.0) -> dict:
    """Achieved FLOP/s of large square matmuls on this machine's device, in fp32 and bf16: the ceiling a
    workload's dense layers can approach. Measured, never taken from a data sheet."""
    import torch

    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    n = 8192 if device.type == "cuda" else 1024
    peaks = {"device": str(device), "matrix_size": n}
    if device.type == "cuda":
        peaks["device_name"] = torch.cuda.get_device_name(device)
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        for _ in range(3):  # warm-up: kernels chosen, caches and clocks settled
            a @ b
        sync()
        iterations, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            iterations += 1
            if device.type == "cuda" and iterations % 10:
                continue
            sync()
        sync()
        elapsed = time.perf_counter() - start
        peaks[f"{label}_flops_per_s"] = 2 * n ** 3 * iterations / elapsed
    return peaks


def efficiency(figures: list[RunFigures], flops: dict | None, peaks: dict | None) -> dict:
    """Achieved model FLOP/s over the training time (scored time minus evaluations), median over successful
    runs, and its share of the measured fp32 and bf16 peaks."""
    if not flops:
        return {}
    rates = [flops["flops_per_step"] * f.steps / (f.scored_s - f.eval_s) for f in figures
             if f.success and f.steps and f.scored_s and f.eval_s is not None and f.scored_s > f.eval_s]
    result = {"flops_per_step": flops["flops_per_step"]}
    if rates:
        result["achieved_flops_per_s"] = statistics.median(rates)
        # The share of each measured peak; bf16 only where it is the faster one (CPUs without bf16 matmul
        # units run it far slower than fp32, and a share above 100 % says nothing).
        for label in ("fp32", "bf16"):
            peak = (peaks or {}).get(f"{label}_flops_per_s")
            if peak and (label == "fp32" or peak > peaks.get("fp32_flops_per_s", 0)):
                result[f"share_of_{label}_peak"] = result["achieved_flops_per_s"] / peak
    return result


def olympic_minutes(figures: list[RunFigures], drop: int = 1) -> float | None:
    scores = [f.scored_s * 1000 for f in figures if f.success and f.scored_s is not None]
    mean_ms = scoring.olympic_mean(scores, len(figures) - len(scores), drop)
    return None if mean_ms is None else mean_ms / 60000


def _median_range(values: list[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def format_report(name: str, definition: dict, figures: list[RunFigures], flops: dict | None = None,
                  peaks: dict | None = None) -> str:
    q = definition["quality"]
    lines = [f"{name}: target {q['metric']} {'<=' if q['direction'] == 'minimize' else '>='} {q['target']}",
             f"{'seed':>6} {'status':>8} {'scored s':>9} {'steps':>7} {'samples':>10} {'final':>8} "
             f"{'overhead/step':>16} {'start':>7} {'init':>7} {'exit':>7}"]
    for f in figures:
        per_step = "-"
        if f.steps and f.overhead_ms is not None:
            share = f" ({100 * f.overhead_ms / 1000 / f.scored_s:.3f}%)" if f.scored_s else ""
            per_step = f"{f.overhead_ms / f.steps:.3f} ms{share}"
        cells = [f"{v:>7.2f}" if v is not None else f"{'-':>7}" for v in (f.before_init_s, f.init_s, f.after_stop_s)]
        lines.append(f"{f.seed:>6} {'success' if f.success else 'FAILED':>8} "
                     f"{f.scored_s if f.scored_s is not None else float('nan'):>9.2f} {f.steps or 0:>7} "
                     f"{f.samples or 0:>10} {f.final_metric if f.final_metric is not None else float('nan'):>8.4f} "
                     f"{per_step:>16} {' '.join(cells)}")
        lines += [f"       {problem}" for problem in f.problems[:3]]
    succeeded = [f for f in figures if f.success and f.scored_s is not None]
    lines.append(f"reached target: {len(succeeded)}/{len(figures)}")
    if succeeded:
        lines.append(f"time to target: {_median_range([f.scored_s for f in succeeded])}")
        steps = [f.steps for f in succeeded if f.steps]
        if steps:
            lines.append(f"steps to target: median {statistics.median(steps):.0f}, min {min(steps)}, max {max(steps)}")
    minutes = olympic_minutes(figures)
    if minutes is not None:
        lines.append(f"olympic score (the checker's scoring): {minutes:.3f} min")
    outside = [f for f in figures if f.outside_s is not None]
    if outside:
        lines.append("outside the scored region: "
                     f"start to init_start {_median_range([f.before_init_s for f in outside])}; "
                     f"init {_median_range([f.init_s for f in outside])}; "
                     f"run_stop to exit {_median_range([f.after_stop_s for f in outside])}; "
                     f"total {_median_range([f.outside_s for f in outside])}")
    provenance_ms = [f.provenance_ms for f in figures if f.provenance_ms is not None]
    if provenance_ms:
        lines.append(f"provenance collection: {max(provenance_ms):.0f} ms per run, inside init (untimed)")
    if peaks:
        lines.append(f"matmul peak on {peaks.get('device_name', peaks['device'])} ({peaks['matrix_size']}^2): "
                     f"fp32 {_si(peaks['fp32_flops_per_s'], 'FLOP/s')}, bf16 {_si(peaks['bf16_flops_per_s'], 'FLOP/s')}")
    eff = efficiency(figures, flops, peaks)
    if eff:
        line = f"model FLOPs per training step: {_si(eff['flops_per_step'], 'FLOP')}"
        if "achieved_flops_per_s" in eff:
            line += f"; achieved {_si(eff['achieved_flops_per_s'], 'FLOP/s')} over training time"
            shares = [f"{100 * eff[f'share_of_{label}_peak']:.1f}% of the {label} peak" for label in ("fp32", "bf16")
                      if f"share_of_{label}_peak" in eff]
            line += f" ({', '.join(shares)})" if shares else ""
        lines.append(line)
    return "\n".join(lines)


def write_figures(root: Path, name: str, system: str, definition: dict, figures: list[RunFigures],
                  flops: dict | None, peaks: dict | None, report: str) -> list[Path]:
    """<root>/bench/<benchmark>_<system>.{csv,json,txt}: one CSV row per run; the JSON adds the machine."""
    out = Path(root) / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{name}_{system}"
    rows = [{**{k: v for k, v in asdict(f).items() if k != "problems"}, "outside_s": f.outside_s} for f in figures]
    with open(f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["seed"])
        writer.writeheader()
        writer.writerows(rows)
    document = {"benchmark": name, "system": system, "smoke": definition["smoke"],
                "target": {k: definition["quality"][k] for k in ("metric", "target", "direction")},
                "runs": rows, "olympic_minutes": olympic_minutes(figures), "flops": flops, "matmul_peak": peaks,
                "efficiency": efficiency(figures, flops, peaks)}
    Path(f"{stem}.json").write_text(json.dumps(document, indent=2) + "\n")
    Path(f"{stem}.txt").write_text(report + "\n")
    return [Path(f"{stem}.{ext}") for ext in ("csv", "json", "txt")]
