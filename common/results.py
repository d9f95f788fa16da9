"""The one results layout every run of the suite writes, so `invoke check <results>` works on anything it made:

    <results>/<submitter>/systems/<system>.json                        system description (written if absent)
    <results>/<submitter>/results/<system>/<benchmark>/result_<i>.txt  one MLPerf log per run

`invoke run`, `invoke bench`, `invoke run --docker` and a bare `run_and_time.sh` all use it. A new run takes the
lowest free index and the log is created exclusively (common/mlperf_log.py), so nothing is ever overwritten.
Full and smoke runs go to different roots (results/ and results-smoke/), as the checker scores them apart.

    <results>/<submitter>/results/<system>/<benchmark>/<variant>/result_<i>.txt   inference: one folder per variant,
    <results>/<submitter>/results/<system>/<benchmark>/<variant>/loadgen_<i>/     with LoadGen's files of each run

    python -m common.results next-log <benchmark> [--variant V] [--smoke]    print the next log path (run_and_time.sh)
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from common.benchmark import REPO_ROOT

RESULTS_ENV = "RESULTS_DIR"
RESULT_FILE = re.compile(r"result_([0-9]+)\.txt")


def default_root(smoke: bool = False) -> Path:
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    return REPO_ROOT / ("results-smoke" if smoke else "results")


def safe_name(text: str) -> str:
    """A folder name from free text (platform names come from the environment or the hardware)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "system"


def submitter() -> str:
    return safe_name(os.environ.get("SUBMISSION_ORG", "reference"))


def system_name(where: str = "local", accelerator: str = "cpu") -> str:
    """SUBMISSION_PLATFORM when set, else where the run happened and on what: local_cpu, docker_cuda, ..."""
    return safe_name(os.environ.get("SUBMISSION_PLATFORM") or f"{where}_{accelerator}")


def benchmark_dir(root: Path, benchmark: str, system: str, submitter_name: str | None = None) -> Path:
    return Path(root) / (submitter_name or submitter()) / "results" / system / benchmark


def used_indices(bench_dir: Path) -> list[int]:
    if not bench_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in bench_dir.iterdir() for m in [RESULT_FILE.fullmatch(p.name)] if m)


def next_result_file(bench_dir: Path) -> Path:
    """result_<i>.txt with the lowest index not taken yet (indices start at 0, as the checker expects)."""
    taken = set(used_indices(bench_dir))
    index = next(i for i in range(len(taken) + 1) if i not in taken)
    return bench_dir / f"result_{index}.txt"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def processors_per_node() -> int:
    try:
        ids = {line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("physical id")}
    except OSError:
        ids = set()
    return max(1, len(ids))


def gpu_description(gpus: str | None = "all") -> tuple[str, int]:
    """(model name, count) of the NVIDIA GPUs a run uses, from nvidia-smi; ("N/A", 0) without any.
    gpus: None (no GPU), "all", a count, or comma-separated device ids (docker's --gpus forms)."""
    if not gpus:
        return "N/A", 0
    try:
        listing = subprocess.run(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "N/A", 0
    rows = [row.split(",", 1) for row in listing if "," in row]
    if gpus.isdigit():
        rows = rows[:int(gpus)]
    elif gpus != "all":
        rows = [r for r in rows if r[0].strip() in gpus.split(",")]
    return (rows[0][1].strip() if rows else "N/A"), len(rows)


def system_description(submitter_name: str, system: str, accelerator: tuple[str, int], framework: str,
                       operating_system: str) -> dict:
    """A minimal description (submission_checker/schemas/system_desc.schema.json) of the machine that ran."""
    return {
        "submitter": submitter_name,
        "division": os.environ.get("SUBMISSION_DIVISION", "closed"),
        "status": os.environ.get("SUBMISSION_STATUS", "onprem"),
        "system_name": system,
        "number_of_nodes": int(os.environ.get("NNODES", "1")),
        "host_processor_model_name": cpu_model(),
        "host_processors_per_node": processors_per_node(),
        "host_processor_core_count": os.cpu_count(),
        "accelerator_model_name": accelerator[0],
        "accelerators_per_node": accelerator[1],
        "framework": framework,
        "operating_system": operating_system,
    }


def ensure_system_description(root: Path, submitter_name: str, system: str, description: dict) -> Path:
    """Write <root>/<submitter>/systems/<system>.json unless it exists (an existing one is the submitter's)."""
    path = Path(root) / submitter_name / "systems" / f"{system}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(description, indent=2) + "\n")
    return path


def local_system(device: str | None = None) -> tuple[str, tuple[str, int]]:
    """(system name, (accelerator, count)) of a bare-metal run on `device` (DEVICE; default: the best there is)."""
    device = device or ""
    accelerator = gpu_description("all") if device in ("", "cuda") else ("N/A", 0)
    return system_name("local", "cuda" if accelerator[1] else (device or "cpu")), accelerator


def prepare_local_run(benchmark: str, smoke: bool = False, root: Path | None = None,
                      device: str | None = None, variant: str | None = None) -> Path:
    """The log path of the next bare-metal run, after writing the system description if there is none."""
    system, accelerator = local_system(device if device is not None else os.environ.get("DEVICE"))
    root = Path(root or default_root(smoke))
    name = submitter()
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "?"
    description = system_description(name, system, accelerator, f"PyTorch {torch_version}",
                                     f"{platform.system()} {platform.release()} (bare metal)")
    ensure_system_description(root, name, system, description)
    bench_dir = benchmark_dir(root, benchmark, system, name)
    if variant:  # an inference benchmark scores each variant (scenario) on its own
        bench_dir = bench_dir / safe_name(variant)
    bench_dir.mkdir(parents=True, exist_ok=True)
    return next_result_file(bench_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Where the next run's MLPerf log goes (the suite's results layout).")
    parser.add_argument("action", choices=["next-log"])
    parser.add_argument("benchmark")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--variant", help="inference: the variant (a key of the definition's performance:)")
    args = parser.parse_args(argv)
    try:
        print(prepare_local_run(args.benchmark, args.smoke, variant=args.variant))
    except OSError as error:
        print(f"error: cannot prepare the results folder: {error.strerror or error} ({error.filename})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
