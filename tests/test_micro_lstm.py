"""timeseries/micro_lstm: the 12/4/4-month split and its borders, standardisation from the training months only,
windows whose targets follow their inputs, the forecaster's "change from the last value" form, the baselines of the
literature reproduced, and a leak check: nothing after the training months drives any part of training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from common import benchmark
from common.runtime import Distributed
from conftest import workload_modules

DEFINITION = benchmark.load("micro_lstm")
_baselines, _model, _train = workload_modules("micro_lstm", "baselines", "model", "train")
LENGTH, HORIZON = DEFINITION["model"]["input_length"], DEFINITION["model"]["horizon"]


@pytest.fixture(scope="module")
def values(data_dir):
    return _train.read_etth1(data_dir / DEFINITION["dataset"]["files"][0]["path"])


def test_split_borders_are_the_literatures(values):
    assert values.shape == (17420, 7) and values.dtype == np.float32
    data = _train.split_and_standardise(values, DEFINITION["dataset"]["split_months"], LENGTH)
    assert len(data["train"]) == 8640 and len(data["val"]) == 2880 + LENGTH and len(data["test"]) == 2880 + LENGTH
    # The test series starts LENGTH rows before the test months, so its first target hour is row 11,520.
    scaled_row = (values[11520 - LENGTH] - data["mean"]) / data["std"]
    assert torch.allclose(data["test"][0], torch.from_numpy(scaled_row))
    assert _train.window_count(data["train"], LENGTH, HORIZON) == 8449
    assert _train.window_count(data["test"], LENGTH, HORIZON) == 2785


def test_standardisation_uses_the_training_months_only(values):
    data = _train.split_and_standardise(values, DEFINITION["dataset"]["split_months"], LENGTH)
    assert data["train"].mean(0).abs().max() < 1e-4 and (data["train"].std(0, unbiased=False) - 1).abs().max() < 1e-4
    changed = values.copy()
    changed[8640:] *= 3.0  # every row after the training months
    other = _train.split_and_standardise(changed, DEFINITION["dataset"]["split_months"], LENGTH)
    assert np.array_equal(other["mean"], data["mean"]) and np.array_equal(other["std"], data["std"])
    assert torch.equal(other["train"], data["train"]) and not torch.equal(other["test"], data["test"])


def test_targets_are_the_hours_after_the_inputs():
    series = torch.arange(300, dtype=torch.float32)[:, None].repeat(1, 7)
    x, y = _train.windows(series, torch.tensor([0, 5]), LENGTH, HORIZON)
    assert x.shape == (2, LENGTH, 7) and y.shape == (2, HORIZON, 7)
    assert x[1, :, 0].tolist() == list(range(5, 5 + LENGTH))
    assert y[1, :, 0].tolist() == list(range(5 + LENGTH, 5 + LENGTH + HORIZON))


def test_a_zero_head_forecasts_the_last_value_and_the_definition_reaches_the_model():
    model = _model.LSTMForecaster(_model.LSTMConfig(**DEFINITION["model"]))
    assert model.lstm.hidden_size == DEFINITION["model"]["hidden"] and model.lstm.num_layers == DEFINITION["model"]["layers"]
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    x = torch.randn(3, LENGTH, 7)
    assert torch.equal(model(x), x[:, -1:, :].expand(3, HORIZON, 7))
    h = DEFINITION["model"]["hidden"]  # 4 gates: input and recurrent weights, two biases; then the linear head
    assert model.num_params() == 4 * (7 * h + h * h + 2 * h) + h * HORIZON * 7 + HORIZON * 7 == 156_832


def test_sharded_evaluation_equals_the_whole(values):
    data = _train.split_and_standardise(values, DEFINITION["dataset"]["split_months"], LENGTH)
    torch.manual_seed(0)
    model = _model.LSTMForecaster(_model.LSTMConfig(**{**DEFINITION["model"], "hidden": 8}))

    class Shard(Distributed):
        def __init__(self, rank, world_size, sums):
            super().__init__()
            self.rank, self.world_size, self.sums = rank, world_size, sums

        def all_reduce_sum(self, tensor):
            self.sums.append(tensor.clone())
            return tensor

    whole = _train.evaluate(model, data["test"], LENGTH, HORIZON, Distributed(), torch.device("cpu"), 300)
    sums = []
    for rank in range(3):
        _train.evaluate(model, data["test"], LENGTH, HORIZON, Shard(rank, 3, sums), torch.device("cpu"), 300)
    total = torch.stack(sums).sum(0)
    assert total[1].item() == 2785 * HORIZON * 7
    assert (total[0] / total[1]).item() == pytest.approx(whole, rel=1e-9)


def test_baselines_reproduce_the_literature_and_the_target_is_far_below_repeat_last(data_dir):
    mse = _baselines.baseline_mse(DEFINITION, data_dir)
    assert mse["repeat last"] == pytest.approx(1.295, abs=0.005)  # DLinear's table, ETTh1 96 -> 96, "Repeat"
    assert 0.36 < mse["linear (closed form)"] < 0.40  # DLinear's "Linear" (trained by SGD): 0.375 - 0.386
    assert DEFINITION["quality"]["target"] < mse["repeat last"] - 0.5


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_nothing_after_the_training_months_drives_training(data_dir, tmp_path, monkeypatch):
    """Changing every row after the training months (validation, test and the unused tail) leaves the logged
    training losses unchanged bit for bit; only the evaluations move."""
    real_reader = _train.read_etth1

    def changed(path):
        rows = real_reader(path).copy()
        rows[8640:] = rows[8640:][::-1] * 1.5
        return rows

    runs = {}
    for name, reader in (("real", real_reader), ("changed", changed)):
        monkeypatch.setattr(_train, "read_etth1", reader)
        log = tmp_path / f"{name}.txt"
        _train.main(["--seed", "3", "--smoke", "--data-dir", str(data_dir), "--log-file", str(log), "--device", "cpu"])
        runs[name] = _events(log)

    def logged(events, key):
        return [e["value"] for e in events if e["key"] == key]

    assert logged(runs["real"], "train_loss") and logged(runs["real"], "train_loss") == logged(runs["changed"], "train_loss")
    real, other = logged(runs["real"], "eval_accuracy"), logged(runs["changed"], "eval_accuracy")
    assert real and len(real) == len(other) and all(a != b for a, b in zip(real, other))
