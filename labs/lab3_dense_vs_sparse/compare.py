"""Lab 3, dense vs sparse: run nanogpt and nano_moe (equal active parameters) one after the other with the same seed,
each through its own run_and_time.sh, and compare them: validation loss against training samples and against
seconds from run_start, tokens/s over training time, peak resident memory, parameters. Writes comparison.md,
comparison.csv, comparison.json and comparison.png (two panels) into --out.

    python labs/lab3_dense_vs_sparse/compare.py --seed 1 --out DIR [--smoke] [--data-dir data]
    python labs/lab3_dense_vs_sparse/compare.py --logs DENSE_LOG SPARSE_LOG --out DIR   (existing logs; memory unmeasured)
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from common.bench import read_log  # noqa: E402  (the submission checker's own log reader)

WORKLOADS = {"dense": "nanogpt", "sparse": "nano_moe"}
COLUMNS = ["model", "benchmark", "status", "parameters_total", "parameters_active", "evaluations",
           "samples_to_target", "seconds_to_target", "final_val_loss", "training_seconds", "tokens_per_s",
           "peak_rss_mib"]


class CompareError(Exception):
    """A comparison that cannot be made; the message is one sentence for the user."""


def run_timed(benchmark: str, seed: int, log_file: Path, data_dir: Path, smoke: bool) -> tuple[int, float]:
    """One run through the workload's run_and_time.sh; returns its exit code and the peak resident memory (MiB) of
    the run, read from the kernel's accounting of the finished child (wait4: the largest resident set among the
    script and the training process it waited for)."""
    script = REPO_ROOT / "language" / benchmark / "run_and_time.sh"
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir), "LOGFILE": str(log_file),
           "SMOKE": "1" if smoke else "0", "NPROC": "1"}
    with open(log_file.with_suffix(".stdout"), "w") as out:
        child = subprocess.Popen(["bash", str(script), str(seed)], env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss / 1024  # Linux reports ru_maxrss in KiB


def summarise(name: str, log_file: Path, peak_rss_mib: float | None) -> dict:
    """One model's figures and curve from its MLPerf log."""
    events, problems = read_log(log_file)
    if problems or not events:
        raise CompareError(f"{log_file} is not a readable MLPerf log: {(problems or ['no events'])[0]}")
    first = {}
    for event in events:
        first.setdefault(event["key"], event)
    for key in ("submission_benchmark", "run_start", "run_stop", "max_sequence_length"):
        if key not in first:
            raise CompareError(f"{log_file} has no {key} event: is it a complete nanogpt or nano_moe log?")
    run_start = first["run_start"]["time_ms"]
    curve = [{"samples": e["metadata"]["samples_count"], "seconds": (e["time_ms"] - run_start) / 1e3,
              "val_loss": e["value"]} for e in events if e["key"] == "eval_accuracy"]
    # Training time: the blocks between evaluations (block_start -> block_stop), so evaluations do not count.
    starts = [e["time_ms"] for e in events if e["key"] == "block_start"]
    stops = [e["time_ms"] for e in events if e["key"] == "block_stop"]
    training_s = sum(b - a for a, b in zip(starts, stops)) / 1e3
    samples = stops and [e for e in events if e["key"] == "block_stop"][-1]["metadata"]["samples_count"]
    tokens = samples * first["max_sequence_length"]["value"] if samples else 0
    success = first["run_stop"]["metadata"].get("status") == "success"
    total = first["model_parameters"]["value"] if "model_parameters" in first else None
    return {"model": name, "benchmark": first["submission_benchmark"]["value"],
            "status": first["run_stop"]["metadata"].get("status"),
            "parameters_total": total,
            "parameters_active": first.get("model_active_parameters", first.get("model_parameters", {})).get("value"),
            "evaluations": len(curve),
            "samples_to_target": curve[-1]["samples"] if success and curve else None,
            "seconds_to_target": round((first["run_stop"]["time_ms"] - run_start) / 1e3, 2) if success else None,
            "final_val_loss": round(curve[-1]["val_loss"], 4) if curve else None,
            "training_seconds": round(training_s, 2),
            "tokens_per_s": round(tokens / training_s, 1) if training_s > 0 else None,
            "peak_rss_mib": round(peak_rss_mib, 1) if peak_rss_mib is not None else "unmeasured",
            "log": str(log_file), "curve": curve}


def write_outputs(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(rows, indent=2) + "\n")
    with open(out / "comparison.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join("—" if row[c] is None else str(row[c]) for c in COLUMNS) + " |" for row in rows]
    (out / "comparison.md").write_text("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    figure, (by_samples, by_seconds) = plt.subplots(1, 2, figsize=(11, 4))
    for row in rows:
        label = f"{row['model']} ({row['benchmark']}, {row['parameters_active']:,} active)" \
            if row["parameters_active"] else row["model"]
        by_samples.plot([p["samples"] for p in row["curve"]], [p["val_loss"] for p in row["curve"]], "o-", label=label)
        by_seconds.plot([p["seconds"] for p in row["curve"]], [p["val_loss"] for p in row["curve"]], "o-", label=label)
    for axis, xlabel in ((by_samples, "training samples (sequences)"), (by_seconds, "seconds from run_start")):
        axis.set_xlabel(xlabel)
        axis.set_ylabel("validation loss (nats/char)")
        axis.grid(alpha=0.3)
    by_samples.legend()
    figure.suptitle("dense vs sparse: validation loss")
    figure.tight_layout()
    figure.savefig(out / "comparison.png", dpi=120)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the logs, the table and the plot")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="the seconds-long smoke configurations (tests)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", REPO_ROOT / "data")))
    parser.add_argument("--logs", nargs=2, type=Path, metavar=("DENSE_LOG", "SPARSE_LOG"),
                        help="compare these existing logs instead of running (peak memory is then unmeasured)")
    args = parser.parse_args(argv)
    try:
        rows = []
        if args.logs:
            for (name, _), log in zip(WORKLOADS.items(), args.logs):
                if not log.is_file():
                    raise CompareError(f"log {log} does not exist")
                rows.append(summarise(name, log, None))
        else:
            if not args.data_dir.is_dir():
                raise CompareError(f"datasets folder {args.data_dir} does not exist: run "
                                   "language/nanogpt/download_dataset.sh first")
            args.out.mkdir(parents=True, exist_ok=True)
            for name, benchmark in WORKLOADS.items():
                log = args.out / f"{benchmark}_seed{args.seed}{'_smoke' if args.smoke else ''}.txt"
                if log.exists():
                    raise CompareError(f"{log} already exists: choose another --out")
                print(f"running {benchmark} (seed {args.seed}{', smoke' if args.smoke else ''}) ...", flush=True)
                started = time.time()
                code, peak = run_timed(benchmark, args.seed, log, args.data_dir, args.smoke)
                if not log.is_file():
                    raise CompareError(f"{benchmark} exited with code {code} before writing a log: see "
                                       f"{log.with_suffix('.stdout')}")
                print(f"  exit code {code} after {time.time() - started:.0f} s, peak RSS {peak:.0f} MiB", flush=True)
                rows.append(summarise(name, log, peak))
        write_outputs(rows, args.out)
    except CompareError as error:
        raise SystemExit(f"error: {error}") from None
    print((args.out / "comparison.md").read_text(), end="")
    print(f"table and plot: {args.out}/comparison.{{md,csv,json,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
