"""Run a workload's full benchmark config for several seeds and summarise time-to-target from the MLPerf logs.

Used by `invoke bench <workload>`. Reads logs as text (no torch), so it is also the reference for how a score
is computed: run_stop.time_ms - run_start.time_ms of a run whose run_stop status is success.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common import benchmark

MLLOG_PREFIX = ":::MLLOG "


def read_events(path: Path) -> list[dict]:
    events = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(MLLOG_PREFIX):
                events.append(json.loads(line[len(MLLOG_PREFIX):]))
    return events


@dataclass
class RunSummary:
    seed: int
    success: bool
    seconds: float | None
    steps: int | None
    samples: int | None
    final_metric: float | None
    overhead_ms: float | None
    provenance_ms: float | None
    evals: list

    @property
    def overhead_fraction(self) -> float | None:
        if self.seconds and self.overhead_ms is not None:
            return self.overhead_ms / 1000.0 / self.seconds
        return None


def summarise_log(path: Path, metric_key: str) -> RunSummary:
    events = read_events(path)
    first = {}
    for event in events:
        first.setdefault(event["key"], event)
    start, stop = first.get("run_start"), first.get("run_stop")
    evals = [(e["time_ms"], e["value"], e["metadata"].get("samples_count")) for e in events if e["key"] == metric_key]
    success = bool(stop and stop["metadata"].get("status") == "success")
    seconds = (stop["time_ms"] - start["time_ms"]) / 1000.0 if start and stop else None
    return RunSummary(
        seed=first["seed"]["value"] if "seed" in first else -1,
        success=success,
        seconds=seconds,
        steps=stop["metadata"].get("steps") if stop else None,
        samples=evals[-1][2] if evals else None,
        final_metric=evals[-1][1] if evals else None,
        overhead_ms=stop["metadata"].get("harness_overhead_ms") if stop else None,
        provenance_ms=stop["metadata"].get("provenance_ms") if stop else None,
        evals=evals,
    )


def run_seeds(name: str, seeds: list[int], out_dir: Path, smoke: bool = False, nproc: int = 1,
              env: dict | None = None) -> list[RunSummary]:
    definition = benchmark.load(name, smoke=smoke)
    script = Path(definition["directory"]) / "run_and_time.sh"
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = []
    for index, seed in enumerate(seeds):
        log_file = out_dir / f"result_{index}.txt"
        run_env = {**os.environ, **(env or {}), "LOGFILE": str(log_file), "NPROC": str(nproc),
                   "SMOKE": "1" if smoke else "0", "PYTHON": os.environ.get("PYTHON", sys.executable)}
        print(f"[{name}] seed {seed}: run {index + 1}/{len(seeds)} -> {log_file}", flush=True)
        subprocess.run(["bash", str(script), str(seed)], env=run_env, check=False)
        summaries.append(summarise_log(log_file, definition["quality"].get("log_key", "eval_accuracy")))
    return summaries


def format_report(name: str, definition: dict, summaries: list[RunSummary]) -> str:
    q = definition["quality"]
    lines = [f"{name}: target {q['metric']} {'<=' if q['direction'] == 'minimize' else '>='} {q['target']}",
             f"{'seed':>6} {'status':>8} {'seconds':>9} {'steps':>7} {'samples':>10} {'final':>8} {'overhead/step':>14}"]
    for s in summaries:
        per_step = f"{s.overhead_ms / s.steps:.3f} ms" if s.steps and s.overhead_ms is not None else "-"
        share = f" ({100 * s.overhead_fraction:.3f}%)" if s.overhead_fraction is not None else ""
        lines.append(f"{s.seed:>6} {'success' if s.success else 'FAILED':>8} "
                     f"{s.seconds if s.seconds is not None else float('nan'):>9.1f} {s.steps or 0:>7} "
                     f"{s.samples or 0:>10} {s.final_metric if s.final_metric is not None else float('nan'):>8.4f} "
                     f"{per_step + share:>14}")
    provenance_ms = [s.provenance_ms for s in summaries if s.provenance_ms is not None]
    if provenance_ms:
        lines.append(f"provenance collection: {max(provenance_ms):.0f} ms per run, before run_start (untimed)")
    times = [s.seconds for s in summaries if s.success]
    lines.append(f"reached target: {len(times)}/{len(summaries)}")
    if times:
        lines.append(f"time to target: median {statistics.median(times):.1f} s, min {min(times):.1f} s, "
                     f"max {max(times):.1f} s")
        steps = [s.steps for s in summaries if s.success]
        lines.append(f"steps to target: median {statistics.median(steps):.0f}, min {min(steps)}, max {max(steps)}")
    return "\n".join(lines)
