"""`invoke bench <inference benchmark>`: every variant run N times through run_and_time.sh into a new results
folder, then per variant the headline metric (median, range, coefficient of variation), tokens/s and the latency,
time-to-first-token and time-per-output-token percentiles, all read from LoadGen's own detail logs.
Tooling: no run imports it, so it is not part of any reference hash.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import benchmark, loadgen, results
from common.bench import BenchError, read_log

FIGURES = [  # (label, detail key, factor, unit)
    ("latency p50", "result_50.00_percentile_latency_ns", 1e-6, "ms"),
    ("latency p90", "result_90.00_percentile_latency_ns", 1e-6, "ms"),
    ("latency p99", "result_99.00_percentile_latency_ns", 1e-6, "ms"),
    ("TTFT p50", "result_first_token_50.00_percentile_latency_ns", 1e-6, "ms"),
    ("TTFT p90", "result_first_token_90.00_percentile_latency_ns", 1e-6, "ms"),
    ("TTFT p99", "result_first_token_99.00_percentile_latency_ns", 1e-6, "ms"),
    ("TPOT p50", "result_time_per_output_token_50.00_percentile_ns", 1e-6, "ms"),
    ("TPOT p90", "result_time_per_output_token_90.00_percentile_ns", 1e-6, "ms"),
    ("TPOT p99", "result_time_per_output_token_99.00_percentile_ns", 1e-6, "ms"),
    ("tokens/s", None, 1.0, "tok/s"),
    ("samples/s", None, 1.0, "samples/s"),
    ("queries", "result_query_count", 1.0, ""),
]


def chosen_variants(definition: dict, variants: list[str] | None) -> list[str]:
    """The variants to bench: all, or those named (each must be one of the definition's)."""
    known = list(definition["performance"])
    unknown = [v for v in variants or [] if v not in known]
    if unknown:
        raise BenchError(f"{definition['name']} has no variant {', '.join(unknown)} (its variants: {', '.join(known)})")
    return [v for v in known if v in variants] if variants else known


def run_variants(name: str, runs: int, root: Path, smoke: bool = False, env: dict | None = None,
                 variants: list[str] | None = None) -> Path:
    """run_and_time.sh with seeds 1..runs, each running every chosen variant; returns the benchmark folder."""
    definition = benchmark.load(name, smoke=smoke)
    chosen = chosen_variants(definition, variants)
    script = Path(definition["directory"]) / "run_and_time.sh"
    device = (env or {}).get("DEVICE") or os.environ.get("DEVICE") or ""
    system, _ = results.local_system(device)
    bench_dir = results.benchmark_dir(root, name, system)
    taken = [v for v in chosen if results.used_indices(bench_dir / v)]
    if taken:
        raise BenchError(f"{bench_dir} already holds results of {', '.join(taken)}; a bench writes a complete set "
                         "of runs: move them away or choose another folder with --out")
    for seed in range(1, runs + 1):
        run_env = {**os.environ, **(env or {}), "LOGFILE": "", "RESULTS_DIR": str(root),
                   "SMOKE": "1" if smoke else "0", "PYTHON": os.environ.get("PYTHON", sys.executable)}
        print(f"[{name}] run {seed}/{runs}", flush=True)
        for variant in (chosen if variants else [None]):  # run_and_time.sh runs every variant unless VARIANT
            subprocess.run(["bash", str(script), str(seed)], env={**run_env, **({"VARIANT": variant} if variant else {})},
                           check=False)
    return bench_dir


def _harness_percent(log_file: Path) -> float | None:
    """The harness's share of the performance run (run_stop: harness_overhead_ms / loadgen_run_ms), percent."""
    events, _ = read_log(log_file)
    stop = next((e["metadata"] for e in events if e["key"] == "run_stop"), {})
    if stop.get("loadgen_run_ms"):
        return 100.0 * stop.get("harness_overhead_ms", 0.0) / stop["loadgen_run_ms"]
    return None


def _throughput(detail: dict, scenario: str) -> tuple[float | None, float | None]:
    tokens = detail.get("result_tokens_per_second" if scenario == "Offline" else "result_completed_tokens_per_second")
    samples = detail.get({"Offline": "result_samples_per_second", "Server": "result_completed_samples_per_sec"}
                         .get(scenario, "result_qps_without_loadgen_overhead"))
    return tokens, samples


def summarise(bench_dir: Path, definition: dict, variants: list[str] | None = None) -> dict:
    """Per variant: one row per run (validity, metric, the FIGURES) and the spread of the headline metric."""
    summary = {}
    for variant in chosen_variants(definition, variants):
        settings = definition["performance"][variant]
        key, factor = loadgen.metric_key(settings["scenario"], settings["metric"])
        rows = []
        for index in results.used_indices(bench_dir / variant):
            detail_file = bench_dir / variant / f"loadgen_{index}" / "performance" / loadgen.DETAIL
            if not detail_file.is_file():
                rows.append({"run": index, "validity": "no LoadGen output"})
                continue
            detail = loadgen.read_detail(detail_file)
            tokens, samples = _throughput(detail, settings["scenario"])
            row = {"run": index, "validity": detail.get("result_validity"),
                   "metric": detail[key] * factor if key in detail else None,
                   "harness %": _harness_percent(bench_dir / variant / f"result_{index}.txt")}
            for label, figure_key, figure_factor, _ in FIGURES:
                value = {"tokens/s": tokens, "samples/s": samples}.get(label) if figure_key is None else \
                    detail.get(figure_key)
                row[label] = value * figure_factor if isinstance(value, (int, float)) else None
            rows.append(row)
        values = [r["metric"] for r in rows if r.get("metric") is not None]
        mean = statistics.fmean(values) if values else None
        summary[variant] = {
            "scenario": settings["scenario"], "metric": settings["metric"], "direction": settings["direction"],
            "runs": rows, "valid_runs": sum(r.get("validity") == "VALID" for r in rows),
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None, "max": max(values) if values else None,
            # sample standard deviation over the runs / their mean
            "cv": statistics.stdev(values) / mean if len(values) > 1 and mean else None}
    return summary


def _fmt(value, digits=4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def format_report(name: str, summary: dict, system: str) -> str:
    lines = [f"{name} on {system}"]
    for variant, s in summary.items():
        cv = "-" if s["cv"] is None else f"{100 * s['cv']:.2f} %"
        lines.append(f"\n{variant} ({s['scenario']}): {s['metric']} median {_fmt(s['median'])} "
                     f"(range {_fmt(s['min'])} to {_fmt(s['max'])}, CV {cv}, {s['direction']}); "
                     f"{s['valid_runs']}/{len(s['runs'])} runs VALID")
        labels = [label for label in [f[0] for f in FIGURES] + ["harness %"]
                  if any(r.get(label) is not None for r in s["runs"])]
        lines.append("  " + " | ".join(["run", "validity", s["metric"]] + labels))
        for r in s["runs"]:
            lines.append("  " + " | ".join([str(r["run"]), str(r.get("validity")), _fmt(r.get("metric"))] +
                                           [_fmt(r.get(label)) for label in labels]))
        for label in labels:
            values = [r[label] for r in s["runs"] if r.get(label) is not None]
            if len(values) > 1:
                lines.append(f"  {label}: median {_fmt(statistics.median(values))}, "
                             f"CV {100 * statistics.stdev(values) / statistics.fmean(values):.2f} %")
    return "\n".join(lines)


def bench(name: str, runs: int, root: Path, smoke: bool = False, env: dict | None = None,
          variants: list[str] | None = None) -> str:
    definition = benchmark.load(name, smoke=smoke)
    started = time.time()
    bench_dir = run_variants(name, runs, root, smoke, env, variants)
    summary = summarise(bench_dir, definition, variants)
    system = bench_dir.parent.name
    report = format_report(name, summary, system)
    out = Path(root) / "bench"
    out.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "system": system, "smoke": smoke, "runs": runs,
                "wall_seconds": round(time.time() - started, 1), "variants": summary}
    (out / f"{name}_{system}.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / f"{name}_{system}.txt").write_text(report + "\n")
    return report + f"\n\nlogs: {bench_dir}; figures: {out / f'{name}_{system}'}.{{json,txt}}"
