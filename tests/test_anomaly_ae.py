"""tiny/anomaly_ae: MNIST as published, a training set holding only the normal digit, the AUROC against a hand
count, the autoencoder's shape and size (fp32 and int8), the cross-process BatchNorm, the trivial baselines, and
a leak check showing that no test label (no anomaly flag) ever reaches the training trajectory."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from common import benchmark, model_size
from conftest import workload_modules

DEFINITION = benchmark.load("anomaly_ae")
NORMAL = DEFINITION["hyperparameters"]["normal_class"]
_baselines, _model, _train = workload_modules("anomaly_ae", "baselines", "model", "train")
AutoEncoder, AutoEncoderConfig, DistributedBatchNorm1d = _model.AutoEncoder, _model.AutoEncoderConfig, _model.DistributedBatchNorm1d


@pytest.fixture(scope="module")
def mnist(data_dir):  # data_dir: conftest's session copy of every workload's dataset, fetched from the mirror
    return _train.load_mnist(DEFINITION, data_dir)


class _OneProcess:
    rank, world_size = 0, 1

    @staticmethod
    def all_reduce_sum(tensor):
        return tensor


def test_mnist_split_as_published_and_torchvision_never_downloads(data_dir, monkeypatch):
    import torchvision

    def no_download(self):
        raise AssertionError("torchvision tried to download")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_download)
    train_x, train_y, test_x, test_y = _train.load_mnist(DEFINITION, data_dir)
    assert train_x.shape == (60_000, 28, 28) and test_x.shape == (10_000, 28, 28) and train_x.dtype == torch.uint8
    assert torch.bincount(train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_training_set_is_only_the_normal_class(mnist):
    train_x, train_y, test_x, test_y = mnist
    train, test, is_anomaly = _train.anomaly_split(train_x, train_y, test_x, test_y, NORMAL)
    assert NORMAL == 9 and train.shape == (5949, 784) and test.shape == (10_000, 784)
    assert train.min() >= 0 and train.max() <= 1
    # Row for row the normal digit's training images, in file order; no other digit and no test image.
    assert torch.equal(train, train_x[train_y == NORMAL].flatten(1).float() / 255)
    others = train_x[train_y != NORMAL].flatten(1).float() / 255
    assert _row_overlap(train, others) == 0 and _row_overlap(train, test) == 0
    # The test set is scored whole: the normal digit is normal, every other digit an anomaly.
    assert is_anomaly.sum().item() == 10_000 - 1009 and not is_anomaly[test_y == NORMAL].any()
    assert is_anomaly[test_y != NORMAL].all()


def _row_overlap(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many rows of a also occur (exactly) in b."""
    rows = {row.tobytes() for row in (b * 255).round().to(torch.uint8).numpy()}
    return sum(row.tobytes() in rows for row in (a * 255).round().to(torch.uint8).numpy())


class _FixedScores(nn.Module):
    """Stands in for the autoencoder in evaluate(): the anomaly score of an 'image' is its first value."""

    def anomaly_score(self, x):
        return x[:, 0]


def _pairwise_auroc(scores, is_anomaly) -> float:
    """The definition: the probability that an anomaly scores above a normal image, ties counting one half."""
    pos = [s for s, a in zip(scores, is_anomaly) if a]
    neg = [s for s, a in zip(scores, is_anomaly) if not a]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_auroc_agrees_with_a_hand_count():
    # 2 normal (0.1, 0.4), 2 anomalies (0.35, 0.8): of the 4 pairs, 3 are ordered right -> 0.75.
    scores = torch.tensor([[0.1], [0.4], [0.35], [0.8]])
    flags = torch.tensor([0, 0, 1, 1])
    assert _train.evaluate(_FixedScores(), scores, flags, _OneProcess, "cpu", batch=3) == pytest.approx(0.75)
    # A tie between a normal image and an anomaly counts one half: pairs (1 vs 1) 0.5, (1 vs 2) 1 -> 0.75.
    assert _train.evaluate(_FixedScores(), torch.tensor([[1.0], [1.0], [2.0]]), torch.tensor([0, 1, 1]),
                           _OneProcess, "cpu", batch=2) == pytest.approx(0.75)
    # Random scores with many ties, several evaluation batches: the pairwise definition exactly.
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 7, (60, 1), generator=g).float()
    flags = (torch.rand(60, generator=g) < 0.4).long()
    expected = _pairwise_auroc(scores[:, 0].tolist(), flags.tolist())
    assert _train.evaluate(_FixedScores(), scores, flags, _OneProcess, "cpu", batch=7) == pytest.approx(expected, abs=1e-6)


def test_model_shape_parameter_count_and_size():
    model = AutoEncoder(AutoEncoderConfig(**DEFINITION["model"]))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(784, 128), (128, 64), (64, 8), (8, 64), (64, 128),
                                                                   (128, 784)]
    assert [l.bias is not None for l in linears] == [False] * 5 + [True]  # BN follows all but the output layer
    weights = sum(l.in_features * l.out_features for l in linears)
    batch_norm = 2 * (128 + 64 + 8 + 64 + 128)
    assert model.num_params() == model_size.parameter_count(model) == weights + 784 + batch_norm == 219_680
    x = torch.rand(5, 784)
    model.eval()
    assert model(x).shape == (5, 784) and 0 <= model(x).min() and model(x).max() <= 1
    assert model.anomaly_score(x).shape == (5,)
    fp32_kb, int8_kb = model_size.size_kb(model), model_size.int8_size_kb(model)
    assert 220_072 * 4 / 1024 < fp32_kb < 900  # the float weights plus the serialization's overhead
    assert int8_kb < fp32_kb / 3               # one byte per Linear weight; biases and BN stay float32
    assert 200 < int8_kb < 260


def test_int8_dequantized_model_stays_close():
    torch.manual_seed(0)
    model = AutoEncoder(AutoEncoderConfig(**DEFINITION["model"])).eval()
    quantized = model_size.int8_dequantized(model).eval()
    x = torch.rand(64, 784)
    with torch.no_grad():
        assert not torch.equal(model(x), quantized(x))
        assert torch.allclose(model(x), quantized(x), atol=0.02)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bn_worker(rank: int, port: int, out: str):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    bn = DistributedBatchNorm1d(3).double()
    x = (torch.randn(8, 3, dtype=torch.double) * 3 + 1)[rank * 4:(rank + 1) * 4].requires_grad_()
    weights = torch.randn(8, 3, dtype=torch.double)[rank * 4:(rank + 1) * 4]
    (bn(x) * weights).sum().backward()
    for p in bn.parameters():
        dist.all_reduce(p.grad)
    torch.save({"y": bn(x.detach()).detach(), "x_grad": x.grad, "w_grad": bn.weight.grad, "b_grad": bn.bias.grad,
                "running_mean": bn.running_mean, "running_var": bn.running_var}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_distributed_batchnorm_equals_full_batch_batchnorm(tmp_path):
    """Two gloo processes with half the batch each give the full batch's outputs, gradients and running stats."""
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3).double()
    x = (torch.randn(8, 3, dtype=torch.double) * 3 + 1).requires_grad_()
    weights = torch.randn(8, 3, dtype=torch.double)
    (bn(x) * weights).sum().backward()
    expected_y = bn(x.detach()).detach()

    out = str(tmp_path / "bn")
    torch.multiprocessing.start_processes(_bn_worker, args=(_free_port(), out), nprocs=2, join=True,
                                          start_method="fork")
    parts = [torch.load(f"{out}.{rank}") for rank in range(2)]
    assert torch.allclose(torch.cat([p["y"] for p in parts]), expected_y)
    assert torch.allclose(torch.cat([p["x_grad"] for p in parts]), x.grad)
    for p in parts:
        assert torch.allclose(p["w_grad"], bn.weight.grad) and torch.allclose(p["b_grad"], bn.bias.grad)
        assert torch.allclose(p["running_mean"], bn.running_mean) and torch.allclose(p["running_var"], bn.running_var)


def test_trivial_baselines_are_below_the_target(mnist):
    results = _baselines.baseline_aurocs(*_train.anomaly_split(*mnist, NORMAL), model_config=DEFINITION["model"])
    assert results["class_mean"] == pytest.approx(0.8789, abs=1e-4)
    assert results["pca_8"] == pytest.approx(0.9514, abs=1e-4)  # the best linear autoencoder with our bottleneck
    assert results["pca_best_k"] == 32 and results["pca_best"] == pytest.approx(0.9631, abs=1e-4)
    assert results["untrained_ae"] < 0.6
    target = DEFINITION["quality"]["target"]
    assert target >= 0.95 and target >= results["pca_best"] + 0.01


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_no_test_label_reaches_the_training_trajectory(data_dir, tmp_path, monkeypatch):
    """Changing every test label, or shuffling the test anomaly flags, leaves the training trajectory (every
    train_loss) unchanged; only the scored AUROC moves."""
    real_load, real_split = _train.load_mnist, _train.anomaly_split

    def relabelled(definition, directory):
        train_x, train_y, test_x, test_y = real_load(definition, directory)
        return train_x, train_y, test_x, (test_y + 1 + torch.arange(len(test_y)) % 9) % 10  # every label changed

    def shuffled_flags(*args):
        train, test, is_anomaly = real_split(*args)
        return train, test, is_anomaly[torch.randperm(len(is_anomaly), generator=torch.Generator().manual_seed(0))]

    runs = {}
    for name, load, split in (("real", real_load, real_split), ("relabelled", relabelled, real_split),
                              ("shuffled_flags", real_load, shuffled_flags)):
        monkeypatch.setattr(_train, "load_mnist", load)
        monkeypatch.setattr(_train, "anomaly_split", split)
        log = tmp_path / f"{name}.txt"
        _train.main(["--seed", "3", "--smoke", "--data-dir", str(data_dir), "--log-file", str(log), "--device", "cpu"])
        runs[name] = _events(log)

    def losses(events):
        return [(e["metadata"]["step"], e["value"]) for e in events if e["key"] == "train_loss"]

    def aurocs(events):
        return [e["value"] for e in events if e["key"] == "eval_accuracy"]

    real = losses(runs["real"])
    assert len(real) >= 2
    for name in ("relabelled", "shuffled_flags"):
        # The real run stops at its target; the others never reach it and train on: same steps, same losses.
        assert losses(runs[name])[:len(real)] == real
        assert len(aurocs(runs[name])) > len(aurocs(runs["real"]))
        assert max(aurocs(runs[name])) < 0.6  # chance level: the flags did change, and only the metric saw it
    assert aurocs(runs["real"])[-1] >= benchmark.load("anomaly_ae", smoke=True)["quality"]["target"]
