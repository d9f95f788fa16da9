"""Baselines for the quality target, scored exactly like the benchmark: MSE over every 96-hour test window, hour and
channel of ETTh1, standardised with the training months' statistics.

- training mean: predict 0 (the training months' mean of every channel);
- repeat last: every future hour equals the last observed hour (the "Repeat" row of the literature);
- repeat last day: the future repeats the last 24 observed hours (a daily seasonal naive forecast);
- linear (closed form): one linear map from the 96 input hours to the 96 future hours, shared by the 7 channels,
  with a bias (DLinear's "Linear", Zeng et al., AAAI 2023), fitted by least squares on every training window;
- linear on changes: the same on values minus the window's last observation (NLinear).

Nothing is fitted on the validation or test months.

    python timeseries/micro_lstm/baselines.py [--data-dir data]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from train import read_etth1, split_and_standardise, window_count, windows  # noqa: E402


def all_windows(series: torch.Tensor, length: int, horizon: int):
    return windows(series, torch.arange(window_count(series, length, horizon)), length, horizon)


def fit_linear(x: torch.Tensor, y: torch.Tensor, subtract_last: bool) -> torch.Tensor:
    """Least-squares weights (length + 1, horizon) of a map shared by all channels: inputs (n, length, C),
    targets (n, horizon, C)."""
    rows, targets = _channel_rows(x, y, subtract_last)
    return torch.linalg.lstsq(rows, targets).solution


def _channel_rows(x, y=None, subtract_last=False):
    last = x[:, -1:, :] if subtract_last else torch.zeros_like(x[:, -1:, :])
    rows = (x - last).double().permute(0, 2, 1).reshape(-1, x.shape[1])       # one row per (window, channel)
    rows = torch.cat([rows, torch.ones(len(rows), 1, dtype=rows.dtype)], dim=1)
    targets = None if y is None else (y - last).double().permute(0, 2, 1).reshape(-1, y.shape[1])
    return rows, targets


def predict_linear(weights: torch.Tensor, x: torch.Tensor, subtract_last: bool) -> torch.Tensor:
    rows, _ = _channel_rows(x, subtract_last=subtract_last)
    last = x[:, -1:, :].double() if subtract_last else 0.0
    return (rows @ weights).view(x.shape[0], x.shape[2], -1).permute(0, 2, 1) + last


def baseline_mse(definition: dict, data_dir: Path) -> dict:
    cfg = definition["model"]
    length, horizon = cfg["input_length"], cfg["horizon"]
    data = split_and_standardise(read_etth1(data_dir / definition["dataset"]["files"][0]["path"]),
                                 definition["dataset"]["split_months"], length)
    train_x, train_y = all_windows(data["train"], length, horizon)
    test_x, test_y = all_windows(data["test"], length, horizon)
    days = -(-horizon // 24)
    predictions = {
        "training mean": torch.zeros_like(test_y),
        "repeat last": test_x[:, -1:, :].expand_as(test_y),
        "repeat last day": test_x[:, -24:, :].repeat(1, days, 1)[:, :horizon],
    }
    for name, subtract in (("linear (closed form)", False), ("linear on changes (closed form)", True)):
        predictions[name] = predict_linear(fit_linear(train_x, train_y, subtract), test_x, subtract)
    return {name: (p.double() - test_y.double()).square().mean().item() for name, p in predictions.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args()
    definition = benchmark.load(HERE)
    for name, mse in baseline_mse(definition, args.data_dir).items():
        print(f"{name:>32}: test MSE {mse:.4f}")
