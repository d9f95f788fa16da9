"""What every run of this suite does before its workload starts, training or inference: verify the dataset,
create the MLPerf log and write its initialisation preamble (submission fields, cache clear, seed, provenance).

    log, provenance_s = open_run_log(definition, data_dir, log_file, seed, is_main)

Submission fields come from SUBMISSION_ORG / SUBMISSION_PLATFORM / SUBMISSION_DIVISION / SUBMISSION_STATUS.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

from common import fetch, provenance
from common.mlperf_log import MLPerfLogger, constants
from common.results import cpu_model


def default_platform() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x{torch.cuda.get_device_name(0)}"
    return f"{os.cpu_count()}xCPU {cpu_model()}"


def evict_from_page_cache(paths) -> None:
    """Drop these files from the OS page cache (posix_fadvise DONTNEED): the cache clear of MLCommons
    references, limited to the dataset. It needs no root, and unlike dropping every cache it leaves the Python
    and torch libraries cached, which would otherwise be re-read from disk at every start."""
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        with open(path, "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def exit_now(code: int) -> None:
    """End the process once the run has finished (log closed, process group left): flush the standard streams
    and skip the interpreter's teardown of torch's modules, which takes about a second and adds nothing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def open_run_log(definition: dict, data_dir: Path, log_file: Path | None, seed: int,
                 is_main: bool = True, synthetic: bool = False) -> tuple[MLPerfLogger, float]:
    """Verify the dataset (before the log exists, so a missing or corrupt file leaves no log behind), create the
    log and write the initialisation preamble up to provenance. Returns the log and the seconds provenance took
    (once per run, before run_start: untimed). Raises fetch.DatasetError or mlperf_log.LogFileError.
    synthetic=True: the definition's synthetic stand-in is verified and logged as the dataset (`synthetic_dataset`
    names it), which the checker never accepts."""
    dataset_sha256 = fetch.verify(definition, data_dir, synthetic=synthetic) if is_main else {}
    log = MLPerfLogger(log_file, enabled=is_main)
    log.start(constants.INIT_START)
    log.event(constants.SUBMISSION_BENCHMARK, definition["name"])
    log.event(constants.SUBMISSION_ORG, os.environ.get("SUBMISSION_ORG", "reference"))
    log.event(constants.SUBMISSION_DIVISION, os.environ.get("SUBMISSION_DIVISION", "closed"))
    log.event(constants.SUBMISSION_STATUS, os.environ.get("SUBMISSION_STATUS", "onprem"))
    log.event(constants.SUBMISSION_PLATFORM, os.environ.get("SUBMISSION_PLATFORM") or default_platform())
    # The dataset's files leave the page cache once verified (evict_from_page_cache), so the workload reads them
    # from storage, as after MLCommons' cache clear.
    log.event(constants.CACHE_CLEAR, True)
    log.event(constants.SEED, seed)
    if definition["smoke"]:
        log.event("smoke_configuration", True)
    if synthetic:
        log.event("synthetic_dataset", definition["dataset"]["synthetic"]["directory"])
    t0 = time.perf_counter()
    if is_main:
        evict_from_page_cache(data_dir / path for path in dataset_sha256)
        log.event("provenance", provenance.collect(Path(definition["directory"]), dataset_sha256))
    return log, time.perf_counter() - t0
