"""The training harness: everything a workload's train.py would otherwise repeat, so that train.py keeps only the
loop a student reads (data, model, forward/backward/step, evaluate).

    run = TrainingRun.from_command_line(__doc__, HERE)   # arguments, definition, distributed init, seed, log
    ... data, model, optimizer ...
    run.log_hyperparameters(train_samples=..., eval_samples=..., model_parameters=...)
    for step in run.steps():               # starts the clock; ends at the target or at max_steps
        ... forward, backward, optimizer step ...
        run.step_done(loss)                # counts samples, keeps the period's training loss
        if run.eval_due():                 # the definition's cadence; logs eval_start and train_loss
            run.eval_result(evaluate(...)) # logs the metric; the loop ends when it reaches the target
    return run.finish(model)               # run_stop, process-group shutdown, exit code; --save-model saves it

    if __name__ == "__main__":
        exit_now(main())                   # skips the interpreter's second-long teardown of torch

The log it writes (the MLPerf sequence, described in common/README.md):

    init_start, submission_*, cache_clear, seed, provenance, hyperparameters     (untimed: initialisation)
    init_stop, run_start                                                          (the clock starts)
    block_start / block_stop / eval_start / train_loss / eval_accuracy / eval_stop  (one block per eval period)
    run_stop {status: success | aborted}                                          (the clock stops)

The score is run_stop.time_ms - run_start.time_ms. Submission fields come from SUBMISSION_ORG /
SUBMISSION_PLATFORM / SUBMISSION_DIVISION / SUBMISSION_STATUS.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from common import benchmark, fetch
from common.energy import EnergyMeter
from common.mlperf_log import LogFileError, constants
from common.runlog import exit_now, open_run_log  # noqa: F401  (exit_now: train.py imports it from here)
from common.runtime import Distributed, init_distributed, parse_args, seed_everything


class TrainingRun:
    """One timed training run of a benchmark: its definition, process group, device, seed and MLPerf log."""

    @classmethod
    def from_command_line(cls, description: str, workload_dir: Path, argv=None) -> "TrainingRun":
        """Parse train.py's command line, load the definition, join the process group, seed, start the log.
        Expected failures (missing dataset, unwritable or existing log file) end the process with one sentence."""
        args = parse_args(description, argv)
        try:
            return cls(benchmark.load(workload_dir, smoke=args.smoke), args)
        except (benchmark.DefinitionError, fetch.DatasetError, LogFileError) as error:
            raise SystemExit(f"error: {error}") from None

    def __init__(self, definition: dict, args):
        self.definition = definition
        self.hyperparameters = definition["hyperparameters"]
        self.quality = definition["quality"]
        self.model_config = definition["model"]
        self.seed, self.data_dir, self.flop_probe = args.seed, Path(args.data_dir), args.count_flops
        # SYNTHETIC_DATA=1: train.py reads the definition's synthetic stand-in (dataset.synthetic.directory)
        self.synthetic_data = bool(args.synthetic_data)
        self.log_file, self.save_model_path = args.log_file, args.save_model
        self.last_metric = None      # the last evaluation's value (recorded in a saved checkpoint)
        self.dist, self.device = init_distributed(args.device)
        seed_everything(self.seed)
        self.global_batch = self.hyperparameters["global_batch_size"]
        if self.global_batch % self.dist.world_size:
            raise SystemExit(f"error: global_batch_size {self.global_batch} is not divisible by "
                             f"{self.dist.world_size} processes")
        self.local_batch = self.global_batch // self.dist.world_size

        self.steps_done = 0          # optimizer steps taken
        self.samples = 0             # training samples seen, over all ranks
        self.train_samples = 1       # size of the training set (logged); expresses samples as epochs
        self.reached = False         # the last evaluation reached the target
        self.overhead_s = 0.0        # time spent in this harness inside the timed region
        self._period_loss_sum, self._period_steps = 0.0, 0  # this rank's step losses since the last evaluation
        self._progress = None
        self._flop_counter = None

        self.log, self.provenance_s = open_run_log(definition, self.data_dir,
                                                   None if self.flop_probe else args.log_file, self.seed,
                                                   self.dist.is_main, synthetic=self.synthetic_data)
        # Energy counters of this node (RAPL packages, NVML GPUs), read by rank 0 at run_start and run_stop.
        self.energy = EnergyMeter() if self.dist.is_main and not self.flop_probe else None

    # --- setup helpers ------------------------------------------------------------------------------------------
    def log_hyperparameters(self, **extra) -> None:
        """Log every closed-division hyperparameter of the definition, then the run's own figures (train_samples,
        eval_samples, model_parameters, ...)."""
        self.train_samples = extra.get(constants.TRAIN_SAMPLES, self.train_samples)
        for key, value in {**self.hyperparameters, **extra}.items():
            self.log.event(key, value)

    def distributed(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model wrapped for data-parallel training when several processes run, else the model itself."""
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def rank_slice(self, global_batch):
        """This rank's share of a global batch: every rank draws the same global batch and takes its slice, so
        N processes see exactly the samples one process would at the same global batch size."""
        return global_batch[self.dist.rank * self.local_batch:(self.dist.rank + 1) * self.local_batch]

    # --- the timed region ---------------------------------------------------------------------------------------
    def steps(self):
        """Start the clock, then yield step indices 0, 1, ... until an evaluation reaches the target or
        quality.max_steps steps are done. Data loading and model building belong before this loop."""
        self.log.end(constants.INIT_STOP)
        self.log.start(constants.RUN_START)
        if self.energy is not None:
            self.energy.start()
        if self.dist.is_main and not self.flop_probe:
            from tqdm import tqdm

            self._progress = tqdm(total=self.quality["max_steps"], desc=self.definition["name"], unit="step",
                                  disable=None)
        self._block_start()
        if self.flop_probe:
            from torch.utils.flop_counter import FlopCounterMode

            self._flop_counter = FlopCounterMode(display=False)
            self._flop_counter.__enter__()
        for step in range(self.quality["max_steps"]):
            yield step
            if self.reached:
                return

    def step_done(self, loss: torch.Tensor | float) -> None:
        """After each optimizer step: count the global batch and keep the step's loss for the period mean.
        `loss` is this rank's mean loss over its slice (the harness averages it over ranks and steps)."""
        value = loss.item() if isinstance(loss, torch.Tensor) else float(loss)
        if self._flop_counter is not None:
            self._end_flop_probe()
        t0 = time.perf_counter()
        self._period_loss_sum += value  # Python floats are IEEE doubles: the float64 sums of the old template
        self._period_steps += 1
        self.steps_done += 1
        self.samples += self.global_batch
        if self._progress is not None:
            self._progress.update(1)
            if self.steps_done % 10 == 0:
                self._progress.set_postfix(loss=f"{value:.3f}", refresh=False)
        self.overhead_s += time.perf_counter() - t0

    def eval_due(self) -> bool:
        """Whether the definition's cadence calls for an evaluation now (every quality.eval_every_steps steps
        and at max_steps); if so, the evaluation begins (eval_start and train_loss are logged)."""
        every = self.quality.get("eval_every_steps")
        if not every or (self.steps_done % every and self.steps_done != self.quality["max_steps"]):
            return False
        self.begin_eval()
        return True

    def begin_eval(self) -> None:
        """Close the training block, open an evaluation and log the period's training loss (the all-reduced mean
        over ranks and steps). Workloads with a cadence use eval_due(); one that evaluates once, after its loop
        (quality.max_evaluations: 1), calls this directly."""
        t0 = time.perf_counter()
        self.log.end(constants.BLOCK_STOP, metadata={"first_epoch_num": self.epoch_num(), "samples_count": self.samples})
        self.log.start(constants.EVAL_START, metadata={"epoch_num": self.epoch_num(), "samples_count": self.samples})
        self.overhead_s += time.perf_counter() - t0
        period = torch.tensor([self._period_loss_sum, self._period_steps], dtype=torch.float64, device=self.device)
        loss_sum, loss_count = self.dist.all_reduce_sum(period).tolist()
        t0 = time.perf_counter()
        self.log.event("train_loss", loss_sum / loss_count, metadata={"samples_count": self.samples,
                                                                      "step": self.steps_done})
        self._period_loss_sum, self._period_steps = 0.0, 0
        self.overhead_s += time.perf_counter() - t0

    def eval_result(self, value: float) -> bool:
        """Log one evaluation of the quality metric; returns (and remembers) whether it reached the target."""
        t0 = time.perf_counter()
        metadata = {"epoch_num": self.epoch_num(), "samples_count": self.samples, "step": self.steps_done}
        self.log.event(self.quality["log_key"], float(value), metadata=metadata)
        self.log.end(constants.EVAL_STOP, metadata={"epoch_num": self.epoch_num(), "samples_count": self.samples})
        self.reached = benchmark.target_reached(value, self.quality)
        self.last_metric = float(value)
        if self._progress is not None:
            self._progress.write(f"step {self.steps_done}: {self.quality['metric']} {value:.4f} "
                                 f"(target {self.quality['target']})")
        if not self.reached:
            self._block_start()
        self.overhead_s += time.perf_counter() - t0
        return self.reached

    def finish(self, model: torch.nn.Module | None = None) -> int:
        """Stop the clock (run_stop: success if the last evaluation reached the target, else aborted), close the
        log, save the model when --save-model asked for it (after the clock stopped), leave the process group;
        returns the process exit code (0 only on success)."""
        if self._progress is not None:
            self._progress.close()
        status = constants.SUCCESS if self.reached else constants.ABORTED
        if self.energy is not None:  # joules and mean watts of the timed region, or "unmeasured" and why
            self.log.event("energy", self.energy.stop())
        self.log.end(constants.RUN_STOP, metadata={"status": status, "steps": self.steps_done,
                                                   "harness_overhead_ms": round(self.overhead_s * 1e3, 3),
                                                   "provenance_ms": round(self.provenance_s * 1e3, 1)})
        self.log.close()
        if self.save_model_path and self.dist.is_main:
            if model is None:
                raise SystemExit("error: --save-model: this train.py does not pass its model to run.finish()")
            self.save_checkpoint(model, status)
        self.dist.shutdown()
        return 0 if self.reached else 1

    def save_checkpoint(self, model: torch.nn.Module, status: str) -> None:
        """The trained model and its lineage, for the inference benchmarks that serve it: weights, the model
        config of the definition, what the run reached, and the sha256 of the training log that produced it."""
        log_sha256 = hashlib.sha256(Path(self.log_file).read_bytes()).hexdigest() if self.log_file else None
        checkpoint = {"benchmark": self.definition["name"], "smoke": self.definition["smoke"], "seed": self.seed,
                      "model_config": dict(self.model_config), "state_dict": model.state_dict(),
                      "status": status, "steps": self.steps_done,
                      "quality": {"metric": self.quality["metric"], "value": self.last_metric,
                                  "target": self.quality["target"], "direction": self.quality["direction"]},
                      "training_log": str(self.log_file) if self.log_file else None,
                      "training_log_sha256": log_sha256}
        path = Path(self.save_model_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        torch.save(checkpoint, partial)
        partial.replace(path)  # a killed save leaves no half checkpoint under the real name

    # --- internals ----------------------------------------------------------------------------------------------
    def epoch_num(self) -> int:
        """Epochs are counted in training samples seen, as fractions of the training set are meaningless here."""
        return self.samples // max(1, self.train_samples)

    def _block_start(self) -> None:
        self.log.start(constants.BLOCK_START, metadata={"first_epoch_num": self.epoch_num(), "epoch_count": 1,
                                                         "samples_count": self.samples})

    def _end_flop_probe(self) -> None:
        """--count-flops: the first step ran under torch's FLOP counter; write its count and end the process
        (`invoke bench` runs this probe once, outside any scored run)."""
        self._flop_counter.__exit__(None, None, None)
        record = {"benchmark": self.definition["name"], "smoke": self.definition["smoke"],
                  "flops_per_step": int(self._flop_counter.get_total_flops()), "global_batch_size": self.global_batch,
                  "device": str(self.device)}
        Path(self.flop_probe).write_text(json.dumps(record) + "\n")
        self.dist.shutdown()
        raise SystemExit(0)
