"""The MLPerf log sequence around a workload's training loop, so every workload logs the same way:

    init_start, submission_*, cache_clear, seed, provenance, hyperparameters     (untimed: initialisation)
    init_stop, run_start                                                          (the clock starts)
    block_start / eval_start / eval_accuracy / eval_stop / block_stop ...         (one block per eval period)
    run_stop {status: success | aborted}                                          (the clock stops)

The score is run_stop.time_ms - run_start.time_ms, read from the log by the bench task and the checker.
Submission fields come from SUBMISSION_ORG / SUBMISSION_PLATFORM / SUBMISSION_DIVISION / SUBMISSION_STATUS.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from common import benchmark, fetch, provenance
from common.mlperf_log import MLPerfLogger, constants
from common.runtime import Distributed


def default_platform() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x{torch.cuda.get_device_name(0)}"
    return f"{os.cpu_count()}xCPU {provenance.cpu_model()}"


class TimedRun:
    def __init__(self, definition: dict, seed: int, data_dir: Path, log_file: Path | None, ctx: Distributed):
        self.definition = definition
        self.quality = definition["quality"]
        self.ctx = ctx
        self.log = MLPerfLogger(log_file, enabled=ctx.is_main)
        self.overhead_s = 0.0  # time spent in this harness (logging, progress) inside the timed region
        self.steps = 0
        self.samples = 0
        self.progress = None
        self.train_samples = 1  # set from the logged train_samples; used to express epochs
        self.log.start(constants.INIT_START)
        self.log.event(constants.SUBMISSION_BENCHMARK, definition["name"])
        self.log.event(constants.SUBMISSION_ORG, os.environ.get("SUBMISSION_ORG", "reference"))
        self.log.event(constants.SUBMISSION_DIVISION, os.environ.get("SUBMISSION_DIVISION", "closed"))
        self.log.event(constants.SUBMISSION_STATUS, os.environ.get("SUBMISSION_STATUS", "onprem"))
        self.log.event(constants.SUBMISSION_PLATFORM, os.environ.get("SUBMISSION_PLATFORM") or default_platform())
        # run_and_time.sh drops the page cache when it may (root); the key records that the step ran.
        self.log.event(constants.CACHE_CLEAR, True)
        self.log.event(constants.SEED, seed)
        if definition["smoke"]:
            self.log.event("smoke_configuration", True)
        t0 = time.perf_counter()
        dataset_sha256 = fetch.verify(definition, data_dir) if ctx.is_main else {}
        if ctx.is_main:
            self.log.event("provenance", provenance.collect(Path(definition["directory"]), dataset_sha256))
        self.provenance_s = time.perf_counter() - t0  # once per run, before run_start (untimed)

    def log_hyperparameters(self, values: dict) -> None:
        self.train_samples = values.get(constants.TRAIN_SAMPLES, self.train_samples)
        for key, value in values.items():
            self.log.event(key, value)

    def start(self, total_steps: int) -> None:
        """End initialisation and start the clock. Data loading and model build belong before this call."""
        self.log.end(constants.INIT_STOP)
        self.log.start(constants.RUN_START)
        if self.ctx.is_main:
            from tqdm import tqdm

            self.progress = tqdm(total=total_steps, desc=self.definition["name"], unit="step", disable=None)
        self._block_start()

    def _block_start(self) -> None:
        self.log.start(constants.BLOCK_START, metadata={"first_epoch_num": self.epoch_num(), "epoch_count": 1,
                                                         "samples_count": self.samples})

    def epoch_num(self) -> int:
        """Epochs are counted in training samples seen, as fractions of the training set are meaningless here."""
        return self.samples // max(1, self.train_samples)

    def step(self, samples: int, loss: float | None = None) -> None:
        t0 = time.perf_counter()
        self.steps += 1
        self.samples += samples
        if self.progress is not None:
            self.progress.update(1)
            if loss is not None and self.steps % 10 == 0:
                self.progress.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self.overhead_s += time.perf_counter() - t0

    def eval_start(self) -> None:
        t0 = time.perf_counter()
        self.log.end(constants.BLOCK_STOP, metadata={"first_epoch_num": self.epoch_num(), "samples_count": self.samples})
        self.log.start(constants.EVAL_START, metadata={"epoch_num": self.epoch_num(), "samples_count": self.samples})
        self.overhead_s += time.perf_counter() - t0

    def eval_result(self, value: float) -> bool:
        """Log one evaluation; returns True when it reaches the target (the caller then stops)."""
        t0 = time.perf_counter()
        metadata = {"epoch_num": self.epoch_num(), "samples_count": self.samples, "step": self.steps}
        self.log.event(self.quality.get("log_key", constants.EVAL_ACCURACY), float(value), metadata=metadata)
        self.log.end(constants.EVAL_STOP, metadata={"epoch_num": self.epoch_num(), "samples_count": self.samples})
        reached = benchmark.target_reached(value, self.quality)
        if self.progress is not None:
            self.progress.write(f"step {self.steps}: {self.quality['metric']} {value:.4f} "
                                f"(target {self.quality['target']})")
        if not reached:
            self._block_start()
        self.overhead_s += time.perf_counter() - t0
        return reached

    def stop(self, success: bool) -> None:
        if self.progress is not None:
            self.progress.close()
        status = constants.SUCCESS if success else constants.ABORTED
        self.log.end(constants.RUN_STOP, metadata={"status": status, "steps": self.steps,
                                                   "harness_overhead_ms": round(self.overhead_s * 1e3, 3),
                                                   "provenance_ms": round(self.provenance_s * 1e3, 1)})
        self.log.close()
