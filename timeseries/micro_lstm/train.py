"""Train an LSTM forecaster on ETTh1 until its MSE on the standardised test set reaches the target.

    python timeseries/micro_lstm/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 timeseries/micro_lstm/train.py --seed 1 ...   (DDP; same global batch)

The protocol of the long-horizon forecasting literature (Informer, Zhou et al., AAAI 2021; the ETDataset
repository's loader): the first 12 months of hourly rows train, the next 4 validate, the next 4 test; every
channel is standardised with the mean and standard deviation of the training months only; a sample is a window
of `input_length` hours of all 7 channels and the `horizon` hours that follow; the score is the mean squared error
over every test window, hour and channel, in standardised units. All numbers come from benchmark.yaml.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.training import TrainingRun, exit_now  # noqa: E402
from model import LSTMConfig, LSTMForecaster  # noqa: E402

HOURS_PER_MONTH = 30 * 24  # the ETT convention: a "month" is 30 days


def read_etth1(path: Path) -> np.ndarray:
    """The CSV's 7 value columns (HUFL, HULL, MUFL, MULL, LUFL, LULL, OT) as float32 rows, one per hour."""
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        if header != ["date", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]:
            raise SystemExit(f"{path}: unexpected header {header}")
        return np.array([[float(v) for v in row[1:]] for row in rows], dtype=np.float32)


def split_and_standardise(values: np.ndarray, split_months: list, input_length: int) -> dict:
    """{'train', 'val', 'test'}: standardised float32 tensors of rows, each later split starting `input_length`
    rows early so that its first window's target is the split's first hour (the ETDataset loader's borders).
    The mean and standard deviation (population, as sklearn's StandardScaler) come from the training rows only."""
    ends = np.cumsum([m * HOURS_PER_MONTH for m in split_months])
    train = values[:ends[0]]
    mean, std = train.mean(axis=0), train.std(axis=0)
    scaled = (values - mean) / std
    return {"train": torch.from_numpy(scaled[:ends[0]]),
            "val": torch.from_numpy(scaled[ends[0] - input_length:ends[1]]),
            "test": torch.from_numpy(scaled[ends[1] - input_length:ends[2]]),
            "mean": mean, "std": std}


def windows(series: torch.Tensor, starts: torch.Tensor, input_length: int, horizon: int):
    """(inputs, targets) for windows starting at `starts`: (n, input_length, C) and (n, horizon, C)."""
    index = starts[:, None] + torch.arange(input_length + horizon)[None, :]
    block = series[index]
    return block[:, :input_length], block[:, input_length:]


def window_count(series: torch.Tensor, input_length: int, horizon: int) -> int:
    return len(series) - input_length - horizon + 1


@torch.no_grad()
def evaluate(model, series, input_length, horizon, ctx, device, batch: int) -> float:
    """Mean squared error over every window of `series`, hour and channel; each rank scores a shard of the windows
    and the sums are all-reduced."""
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    chunks = torch.arange(window_count(series, input_length, horizon)).split(batch)
    for chunk in chunks[ctx.rank::ctx.world_size]:
        x, y = windows(series, chunk, input_length, horizon)
        error = model(x.to(device)) - y.to(device)
        totals += torch.stack([error.double().square().sum(), torch.tensor(error.numel(), device=device)])
    ctx.all_reduce_sum(totals)
    model.train()
    return (totals[0] / totals[1]).item()


def learning_rate(step: int, hp: dict) -> float:
    """Linear warmup from 0 to the base rate, then linear decay to the end rate at the decay step."""
    base, end = hp["opt_base_learning_rate"], hp["opt_end_learning_rate"]
    warmup, decay = hp["opt_learning_rate_warmup_steps"], hp["opt_learning_rate_decay_steps"]
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= decay:
        return end
    return end + (base - end) * (decay - step) / (decay - warmup)


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, quality, device, cfg = run.hyperparameters, run.quality, run.device, run.model_config

    data = split_and_standardise(read_etth1(run.data_dir / run.definition["dataset"]["files"][0]["path"]),
                                 run.definition["dataset"]["split_months"], cfg["input_length"])
    length, horizon = cfg["input_length"], cfg["horizon"]
    n_train = window_count(data["train"], length, horizon)
    model = LSTMForecaster(LSTMConfig(**cfg)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["opt_base_learning_rate"],
                                  betas=(hp["opt_adamw_beta_1"], hp["opt_adamw_beta_2"]),
                                  eps=hp["opt_adamw_epsilon"], weight_decay=hp["opt_adamw_weight_decay"])
    ddp_model = run.distributed(model)
    # The same permutation of the training windows on every rank each epoch (the last partial batch is dropped).
    sampler = torch.Generator().manual_seed(run.seed)
    steps_per_epoch = n_train // run.global_batch
    run.log_hyperparameters(train_samples=n_train, eval_samples=window_count(data["test"], length, horizon),
                            model_parameters=model.num_params())

    for step in run.steps():
        if step % steps_per_epoch == 0:
            order = torch.randperm(n_train, generator=sampler)
        batch = run.rank_slice(order[(step % steps_per_epoch) * run.global_batch:][:run.global_batch])
        x, y = windows(data["train"], batch, length, horizon)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, hp)
        loss = F.mse_loss(ddp_model(x.to(device)), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp["opt_gradient_clip_norm"])
        optimizer.step()
        run.step_done(loss)
        if run.eval_due():  # the validation months served recipe choices (README section 4), not this loop
            run.eval_result(evaluate(model, data["test"], length, horizon, run.dist, device, quality["eval_batch"]))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
