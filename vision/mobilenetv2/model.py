"""MobileNetV2 (Sandler et al., 2018) as torchvision.models.mobilenet_v2 builds it, adapted to 28x28 grayscale.

torchvision's network is a 3x3 stride-2 stem convolution (32 channels), 17 inverted-residual blocks in seven
stages (t = expansion, c = output channels, n = blocks, s = stride of the first block), a 1x1 convolution to 1280
channels, global average pooling, dropout and a linear classifier:

    stage   t    c   n   s (ImageNet)   s (here)   feature map here (28x28 input)
    stem    -   32   1   2              2          14x14
    1       1   16   1   1              1          14x14
    2       6   24   2   2              1          14x14
    3       6   32   3   2              2           7x7
    4       6   64   4   2              2           4x4
    5       6   96   3   1              1           4x4
    6       6  160   3   2              1           4x4
    7       6  320   1   1              1           4x4
    conv 1x1 -> 1280 channels, 4x4 -> average pool -> dropout -> linear 10

The adaptation, all of it through torchvision's own arguments except the first layer:

- features[0][0], the stem convolution, takes 1 input channel (grayscale) instead of 3 (same 3x3 kernel,
  stride 2, padding 1);
- stages 2 (24 channels) and 6 (160 channels) start with stride 1 instead of 2 (torchvision's
  `inverted_residual_setting`: its t, c, n unchanged, only these two strides replaced);
- 10 classes (`num_classes`), and `width_mult` scales every channel count as torchvision does (rounded to a
  multiple of 8; the last 1280 channels are never scaled down).

ImageNet's 224x224 input is reduced 32-fold to 7x7; unchanged, a 28x28 image would be 2x2 from stage 4 and
1x1 from stage 6 on. With the two strides at 1 it is reduced 7-fold: 28 -> 14 -> 7 -> 4, and stages 4-7 and
the 1x1 head see 4x4 maps. (At 2x2, moreover, the CPU weight gradient of a depthwise convolution is oneDNN's
slow case: 40-60 ms for a 480-channel block at batch 128, against 1.6 ms at 4x4.) benchmark.yaml `model` holds
every one of these settings; with its width_mult 0.5 the channels are 16 (stem) | 8, 16, 16, 32, 48, 80, 160
(stages) | 1280 (head), and the network has 700,202 parameters.

DistributedBatchNorm2d (torchvision's `norm_layer`) changes how batch statistics are computed under DDP, never
their value: they span the whole global batch, so N processes train like one (torch's SyncBatchNorm does the
same but runs on GPUs only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
import torch.distributed as dist
import torch.nn as nn
import torchvision
from torch.distributed.nn.functional import all_reduce

# torchvision's MobileNetV2 table (t, c, n); the strides come from the config.
TORCHVISION_STAGES = [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1)]


@dataclass
class MobileNetV2Config:
    in_channels: int = 1
    num_classes: int = 10
    width_mult: float = 1.0                 # torchvision's width multiplier
    stem_stride: int = 2                    # torchvision's
    stage_strides: list = field(default_factory=lambda: [1, 1, 2, 2, 1, 1, 1])  # torchvision: 1 2 2 2 1 2 1
    dropout: float = 0.2                    # before the classifier (torchvision's default)
    bn_momentum: float = 0.1                # running-statistics update rate of every BatchNorm (torch's default)
    dtype: str = "float32"                  # parameters and activations (the smoke test runs in float64)


def mobilenet_v2(config: MobileNetV2Config) -> nn.Module:
    """torchvision's MobileNetV2 with a grayscale stem and the config's strides; torchvision's initialisation."""
    assert len(config.stage_strides) == len(TORCHVISION_STAGES)
    setting = [[t, c, n, s] for (t, c, n), s in zip(TORCHVISION_STAGES, config.stage_strides)]
    model = torchvision.models.mobilenet_v2(weights=None, num_classes=config.num_classes,
                                            width_mult=config.width_mult, inverted_residual_setting=setting,
                                            dropout=config.dropout,
                                            norm_layer=partial(DistributedBatchNorm2d, momentum=config.bn_momentum))
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(config.in_channels, stem.out_channels, kernel_size=3,
                                     stride=config.stem_stride, padding=1, bias=False)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")  # as torchvision initialises convolutions
    return model.to(getattr(torch, config.dtype))


class DistributedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d; in training under torch.distributed the mean and variance are those of the global batch.

    The per-channel sums go through an autograd-aware all_reduce, so the backward pass also sums the
    statistics' gradients over processes, as SyncBatchNorm does. Two passes (mean, then squared deviations)
    keep the variance as accurate as F.batch_norm's.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        count = x.numel() // x.size(1) * dist.get_world_size()  # every process holds an equal slice
        mean = all_reduce(x.sum(dim=(0, 2, 3))) / count
        centered = x - mean[None, :, None, None]
        var = all_reduce(centered.square().sum(dim=(0, 2, 3))) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1), self.momentum)  # unbiased, as F.batch_norm
        scale = self.weight * torch.rsqrt(var + self.eps)
        return centered * scale[None, :, None, None] + self.bias[None, :, None, None]
