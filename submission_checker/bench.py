"""Time the checker on a generated results tree: python -m submission_checker.bench [--logs 1500] [--keep DIR]

The tree holds full-size nanogpt logs (the real definition's hyperparameters and eval cadence, evals up to half
the step budget, a full provenance record: ~60-120 lines, ~16-25 KB each), 5 runs per system, 5 systems per
submitter. Generating it is
not timed; checking it (every line parsed and validated, every rule) and writing all reports (including the
HTML plots) is. Prints the figures the README quotes.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from common import benchmark  # noqa: E402
from submission_checker import checker, report, synth  # noqa: E402

RUNS, SYSTEMS = 5, 5


def generate(root: Path, n_logs: int) -> Path:
    """A definitions root (nanogpt with reference fields) and n_logs logs under root/results."""
    definition = yaml.safe_load((REPO_ROOT / "language" / "nanogpt" / benchmark.DEFINITION_FILE).read_text())
    definition.setdefault("reference_code", {"workload_sha256": synth.sha("w"), "common_sha256": synth.sha("c")})
    definition["reference_convergence"] = {"samples_to_target": synth.reference_convergence(definition)}
    defs = root / "defs" / "language" / "nanogpt"
    defs.mkdir(parents=True)
    (defs / benchmark.DEFINITION_FILE).write_text(yaml.safe_dump(definition, sort_keys=False))
    loaded = benchmark.load(defs)
    for i in range(-(-n_logs // (RUNS * SYSTEMS)) * SYSTEMS):
        synth.write_result(root / "results", loaded, submitter=f"team{i // SYSTEMS:03d}", system=f"system{i % SYSTEMS}",
                           seeds=range(i * RUNS + 1, i * RUNS + RUNS + 1))
    return root / "defs"


def cpu_seconds() -> float:
    """User + system time of this process and of its finished children (the checker's worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=1500, help="number of result logs (default 1500)")
    parser.add_argument("--jobs", type=int, default=0, help="checker processes (default: one per core)")
    parser.add_argument("--keep", type=Path, default=None, help="generate into this folder and keep it")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="checker_bench_"))
    try:
        t0 = time.perf_counter()
        defs = generate(root, args.logs)
        files = list((root / "results").rglob("result_*.txt"))
        size = sum(f.stat().st_size for f in files)
        lines = sum(f.read_bytes().count(b"\n") for f in files)
        t1, c1 = time.perf_counter(), cpu_seconds()
        result = checker.check(root / "results", definitions_root=defs, jobs=args.jobs)
        t2, c2 = time.perf_counter(), cpu_seconds()
        report.write(result, root / "report")
        t3, c3 = time.perf_counter(), cpu_seconds()
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    valid = sum(r.valid for r in result.results)
    print(f"generated {len(files)} logs, {lines} lines, {size / 1e6:.1f} MB in {t1 - t0:.1f} s (not timed)")
    print(f"check:   {t2 - t1:.2f} s wall, {c2 - c1:.2f} s CPU  ({len(files) / (t2 - t1):.0f} logs/s, "
          f"{lines / (t2 - t1) / 1000:.0f}k lines/s, {size / 1e6 / (t2 - t1):.1f} MB/s); "
          f"{valid} of {len(result.results)} results valid")
    print(f"reports: {t3 - t2:.2f} s wall, {c3 - c2:.2f} s CPU  (JSON, CSV, Markdown, HTML with plots)")
    print(f"total:   {t3 - t1:.2f} s wall, {c3 - c1:.2f} s CPU for {len(files)} logs on {os.cpu_count()} cores; "
          f"peak memory {peak_mb:.0f} MB per process")
    return 0 if valid == len(result.results) else 1


if __name__ == "__main__":
    sys.exit(main())
