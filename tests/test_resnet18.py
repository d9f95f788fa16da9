"""resnet18 specifics: the adapted architecture and its size, the CPU weight-gradient path and the cross-process
BatchNorm compute the same values as torch's own modules, the fixed torchvision split, the trivial baselines."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import benchmark
from conftest import workload_modules

RESNET18 = Path(benchmark.load("resnet18")["directory"])
_baselines, _model, _train = workload_modules("resnet18", "baselines", "model", "train")
baseline_accuracies = _baselines.baseline_accuracies
DistributedBatchNorm2d, GemmConv2d, ResNetConfig = _model.DistributedBatchNorm2d, _model.GemmConv2d, _model.ResNetConfig
num_params, resnet18, use_gemm_weight_gradients = _model.num_params, _model.resnet18, _model.use_gemm_weight_gradients
learning_rate, load_fashion_mnist, make_normalize = _train.learning_rate, _train.load_fashion_mnist, _train.make_normalize


def test_reference_model_shape_and_size():
    model = resnet18(ResNetConfig(**benchmark.load("resnet18")["model"]))
    assert num_params(model) == 11_175_370  # torchvision's 11,689,512 - 6,272 (grayscale conv1) - 507,870 (10-way fc)
    assert model.conv1.in_channels == 1 and model.conv1.stride == (2, 2) and isinstance(model.maxpool, nn.MaxPool2d)
    x = torch.randn(3, 1, 28, 28)
    stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    sizes = [stem.shape[-1]]
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        stem = stage(stem)
        sizes.append(stem.shape[-1])
    assert sizes == [7, 7, 4, 2, 1]
    assert model(x).shape == (3, 10)


@pytest.mark.parametrize("kernel,stride,padding,size", [(7, 2, 3, 9), (3, 1, 1, 5), (3, 2, 1, 5), (1, 2, 0, 5),
                                                        (3, 1, 1, 1)])
def test_gemm_weight_gradient_equals_conv2d(kernel, stride, padding, size):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, kernel, stride, padding, bias=False).double()
    x = torch.randn(2, 3, size, size, dtype=torch.double, requires_grad=True)
    y = conv(x)
    grad = torch.randn_like(y)
    expected = torch.autograd.grad(y, (x, conv.weight), grad)
    use_gemm_weight_gradients(conv)
    assert isinstance(conv, GemmConv2d)
    y2 = conv(x)
    assert torch.equal(y, y2)
    for a, b in zip(torch.autograd.grad(y2, (x, conv.weight), grad), expected):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(conv, (x,))


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
    bn = DistributedBatchNorm2d(3).double()
    x = (torch.randn(8, 3, 4, 4, dtype=torch.double) * 3 + 1)[rank * 4:(rank + 1) * 4].requires_grad_()
    weights = torch.randn(8, 3, 4, 4, dtype=torch.double)[rank * 4:(rank + 1) * 4]
    loss = (bn(x) * weights).sum()
    loss.backward()
    for p in bn.parameters():
        dist.all_reduce(p.grad)
    torch.save({"y": bn(x.detach()).detach(), "x_grad": x.grad, "w_grad": bn.weight.grad, "b_grad": bn.bias.grad,
                "running_mean": bn.running_mean, "running_var": bn.running_var}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_distributed_batchnorm_equals_full_batch_batchnorm(tmp_path):
    """Two gloo processes with half the batch each give the full batch's outputs, gradients and running stats."""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3).double()
    x = (torch.randn(8, 3, 4, 4, dtype=torch.double) * 3 + 1).requires_grad_()
    weights = torch.randn(8, 3, 4, 4, dtype=torch.double)
    (bn(x) * weights).sum().backward()
    expected_y = bn(x.detach()).detach()

    out = str(tmp_path / "bn")
    torch.multiprocessing.start_processes(_bn_worker, args=(_free_port(), out), nprocs=2, join=True,
                                          start_method="fork")  # fork: the children need not re-import torch
    parts = [torch.load(f"{out}.{rank}") for rank in range(2)]
    assert torch.allclose(torch.cat([p["y"] for p in parts]), expected_y)
    assert torch.allclose(torch.cat([p["x_grad"] for p in parts]), x.grad)
    for p in parts:
        assert torch.allclose(p["w_grad"], bn.weight.grad) and torch.allclose(p["b_grad"], bn.bias.grad)
        assert torch.allclose(p["running_mean"], bn.running_mean) and torch.allclose(p["running_var"], bn.running_var)


def test_without_a_process_group_it_is_plain_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 3, 3)
    plain, ours = nn.BatchNorm2d(4), DistributedBatchNorm2d(4)
    assert torch.equal(plain(x), ours(x)) and torch.equal(plain.running_var, ours.running_var)


def test_split_is_torchvisions_fixed_split_and_torchvision_never_downloads(data_dir, monkeypatch):
    import torchvision

    def no_download(self):
        raise AssertionError("torchvision tried to download")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", no_download)
    train_x, train_y, test_x, test_y = load_fashion_mnist(benchmark.load("resnet18"), data_dir)
    assert train_x.shape == (60_000, 28, 28) and test_x.shape == (10_000, 28, 28)
    assert train_x.dtype == torch.uint8
    assert torch.bincount(train_y).tolist() == [6000] * 10 and torch.bincount(test_y).tolist() == [1000] * 10
    # Normalisation statistics come from the training images alone (Fashion-MNIST's well-known 0.2860 / 0.3530).
    x = make_normalize(train_x)(train_x, "cpu")
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-4
    assert x.shape == (60_000, 1, 28, 28)


def test_trivial_baselines_are_far_from_the_target(data_dir):
    d = benchmark.load("resnet18")
    accuracies = baseline_accuracies(*load_fashion_mnist(d, data_dir), linear=False)
    assert accuracies["majority"] == pytest.approx(0.10)
    assert accuracies["nearest_centroid"] == pytest.approx(0.6768, abs=1e-4)
    assert d["quality"]["target"] > accuracies["nearest_centroid"] + 0.2


def test_learning_rate_schedule():
    hp = benchmark.load("resnet18")["hyperparameters"]
    warmup, decay = hp["opt_learning_rate_warmup_steps"], hp["opt_learning_rate_decay_steps"]
    assert learning_rate(0, hp) < learning_rate(warmup - 1, hp)
    assert learning_rate(warmup, hp) == pytest.approx(hp["opt_base_learning_rate"])
    assert learning_rate(decay, hp) == pytest.approx(hp["opt_end_learning_rate"])
    assert learning_rate(10 * decay, hp) == pytest.approx(hp["opt_end_learning_rate"])
