"""vision/mobilenetv2: the documented adaptation of torchvision's MobileNetV2 (grayscale stem, strides, feature-map
sizes, parameter count), the definition's model settings reaching the model, the Fashion-MNIST split and its
training-only normalisation, and a leak check: no test label drives any part of training."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torchvision

from common import benchmark
from common.model_size import parameter_count, size_kb
from conftest import workload_modules

DEFINITION = benchmark.load("mobilenetv2")
_baselines, _model, _train = workload_modules("mobilenetv2", "baselines", "model", "train")
MobileNetV2Config, mobilenet_v2, DistributedBatchNorm2d = _model.MobileNetV2Config, _model.mobilenet_v2, \
    _model.DistributedBatchNorm2d

# model.py's docstring and the README: the feature map after the stem, after each of the 7 stages, after the head.
DOCUMENTED_SIZES = [14, 14, 14, 7, 4, 4, 4, 4, 4]
DOCUMENTED_PARAMETERS = 700_202
STAGE_ENDS = [1, 2, 4, 7, 11, 14, 17, 18]  # features[i] that ends each stage (then the 1x1 head, features[18])


def feature_sizes(model: nn.Module, x: torch.Tensor) -> list[int]:
    sizes, blocks = [], list(model.features)
    x = blocks[0](x)
    sizes.append(x.shape[-1])
    for start, end in zip(STAGE_ENDS[:-1], STAGE_ENDS[1:]):
        for block in blocks[start:end]:
            x = block(x)
        sizes.append(x.shape[-1])
    sizes.append(blocks[18](x).shape[-1])
    return sizes


def test_adapted_model_maps_a_grayscale_28x28_image_to_10_logits_with_the_documented_feature_maps():
    model = mobilenet_v2(MobileNetV2Config(**DEFINITION["model"])).eval()
    stem = model.features[0][0]
    assert stem.in_channels == 1 and stem.stride == (DEFINITION["model"]["stem_stride"],) * 2
    x = torch.randn(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert feature_sizes(model, x) == DOCUMENTED_SIZES
    # The only changes to torchvision's network besides the grayscale stem: stages 2 and 6 start at stride 1.
    reference = torchvision.models.mobilenet_v2(weights=None, num_classes=10, width_mult=DEFINITION["model"]["width_mult"])
    ours = [(name, m.stride) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    theirs = [(name, m.stride) for name, m in reference.named_modules() if isinstance(m, nn.Conv2d)]
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    changed = [(name, a, b) for (name, a), (_, b) in zip(ours, theirs) if a != b]
    assert changed == [("features.2.conv.1.0", (1, 1), (2, 2)), ("features.14.conv.1.0", (1, 1), (2, 2))]
    assert all(model.features[i].conv[1][0].groups == model.features[i].conv[1][0].in_channels for i in (2, 14))


def test_parameter_count_and_size():
    model = mobilenet_v2(MobileNetV2Config(**DEFINITION["model"]))
    reference = torchvision.models.mobilenet_v2(weights=None, num_classes=10, width_mult=DEFINITION["model"]["width_mult"])
    stem_channels = model.features[0][0].out_channels
    assert parameter_count(model) == DOCUMENTED_PARAMETERS == parameter_count(reference) - 2 * stem_channels * 9
    assert 2735 < size_kb(model) < 2950  # 700,202 float32 values (2,735 KiB) plus BatchNorm buffers, serialized: 2,899.9


def test_the_definitions_model_settings_reach_the_model():
    settings = {**DEFINITION["model"], "width_mult": 1.0, "stem_stride": 1, "stage_strides": [1, 1, 2, 2, 1, 2, 1],
                "dropout": 0.3, "bn_momentum": 0.5, "num_classes": 7}
    model = mobilenet_v2(MobileNetV2Config(**settings)).eval()
    assert model.features[0][0].out_channels == 32 and model.features[0][0].stride == (1, 1)  # width 1.0: 32
    assert model.classifier[0].p == 0.3 and model.classifier[1].out_features == 7
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(isinstance(m, DistributedBatchNorm2d) and m.momentum == 0.5 for m in norms)
    assert feature_sizes(model, torch.randn(2, 1, 28, 28)) == [28, 28, 28, 14, 7, 7, 4, 4, 4]
    with pytest.raises(AssertionError):
        mobilenet_v2(MobileNetV2Config(**{**settings, "stage_strides": [1, 2, 2]}))


def test_without_a_process_group_it_is_plain_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 3, 3)
    plain, ours = nn.BatchNorm2d(4), DistributedBatchNorm2d(4)
    assert torch.equal(plain(x), ours(x)) and torch.equal(plain.running_var, ours.running_var)


def test_split_as_published_and_normalised_from_the_training_images_only(data_dir, monkeypatch):
    def no_download(self):
        raise AssertionError("torchvision tried to download")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", no_download)
    train_x, train_y, test_x, test_y = _train.load_fashion_mnist(DEFINITION, data_dir)
    assert train_x.shape == (60_000, 28, 28) and test_x.shape == (10_000, 28, 28) and train_x.dtype == torch.uint8
    assert torch.bincount(train_y).tolist() == [6000] * 10 and torch.bincount(test_y).tolist() == [1000] * 10
    normalize = _train.make_normalize(train_x)
    x = normalize(train_x, "cpu")
    assert x.shape == (60_000, 1, 28, 28) and abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-4
    # The statistics are the training images' alone: changing every test image changes nothing.
    assert torch.equal(_train.make_normalize(train_x)(test_x[:5], "cpu"), normalize(test_x[:5], "cpu"))
    assert abs(normalize(test_x, "cpu").mean().item()) > 1e-3  # the test set has its own, different mean


def test_trivial_baselines_are_far_from_the_target(data_dir):
    accuracies = _baselines.baseline_accuracies(*_train.load_fashion_mnist(DEFINITION, data_dir), linear=False)
    assert accuracies["majority"] == pytest.approx(0.10)
    assert accuracies["nearest_centroid"] == pytest.approx(0.6768, abs=1e-4)
    assert DEFINITION["quality"]["target"] > 0.8435 + 0.02  # the linear baseline (README), measured with L-BFGS


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_no_training_decision_depends_on_test_labels(data_dir, tmp_path, monkeypatch):
    """Scrambling every test label leaves the training losses unchanged (training never reads a test label);
    only the scored accuracy moves."""
    real_loader = _train.load_fashion_mnist

    def scrambled(definition, directory):
        train_x, train_y, test_x, test_y = real_loader(definition, directory)
        return train_x, train_y, test_x, (test_y + 1 + torch.arange(len(test_y)) % 9) % 10  # every label changed

    runs = {}
    for name, loader in (("real", real_loader), ("scrambled", scrambled)):
        monkeypatch.setattr(_train, "load_fashion_mnist", loader)
        log = tmp_path / f"{name}.txt"
        _train.main(["--seed", "3", "--smoke", "--data-dir", str(data_dir), "--log-file", str(log), "--device", "cpu"])
        runs[name] = _events(log)

    def values(events, key):
        return [(e["metadata"]["samples_count"], e["value"]) for e in events if e["key"] == key]

    assert values(runs["real"], "train_loss") == values(runs["scrambled"], "train_loss")
    real, fake = values(runs["real"], "eval_accuracy"), values(runs["scrambled"], "eval_accuracy")
    assert len(real) == len(fake) and all(a != b for (_, a), (_, b) in zip(real, fake))
