"""MobileNetV1 with width multiplier 0.25 on 96x96x3 images, two classes (person / no person): MLPerf Tiny's Visual
Wake Words reference model (mlcommons/tiny benchmark/training/visual_wake_words/vww_model.py, from Silicon Labs'
platform_ml_models), rewritten layer for layer in PyTorch.

    image 96x96x3
    conv 3x3 stride 2, 8 filters, BN, ReLU                                48x48x8
    13 depthwise-separable blocks: depthwise 3x3 (stride s), BN, ReLU, pointwise 1x1, BN, ReLU
        s=1 -> 16   s=2 -> 32   s=1 -> 32   s=2 -> 64   s=1 -> 64        48x48 .. 12x12
        s=2 -> 128  5 x (s=1 -> 128)                                      6x6x128
        s=2 -> 256  s=1 -> 256                                            3x3x256
    average pool 3x3 -> 256 -> linear -> 2 logits

As in the Keras reference every convolution keeps its bias (use_bias defaults to True there) and is followed by
batch norm; initialisation follows Keras: he_normal (truncated normal) for convolutions, glorot_uniform for the
linear layer, zero biases. One module changes how values are computed, never which values:
DistributedBatchNorm2d computes the batch statistics itself, over the global batch under DDP, so N processes
train like one (torch's SyncBatchNorm does the same but runs on GPUs only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.nn.functional import all_reduce


@dataclass
class MobileNetConfig:
    num_classes: int = 2
    image_size: int = 96          # the size train.py decodes images to (the network itself ends in a global pool)
    first_filters: int = 8        # 32 x alpha 0.25
    bn_momentum: float = 0.01     # torch's convention (weight of the new batch); Keras' momentum 0.99 is 0.01 here
    bn_eps: float = 0.001         # Keras' BatchNormalization default
    dtype: str = "float32"        # parameter precision (the smoke configuration uses float64, see benchmark.yaml)


# (stride, channel multiplier) of the 13 depthwise-separable blocks, as in vww_model.py
BLOCKS = [(1, 2), (2, 2), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (1, 1)]


class DistributedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are computed here, in two passes (mean, then squared deviations),
    and under torch.distributed over the global batch (per-channel sums all-reduced with autograd, as SyncBatchNorm
    does; vision/resnet18 has the same module). One process takes the same path without the all-reduce, so 1 and N
    processes compute the same formula. It is also more accurate than torch's CPU kernel on channels-last tensors:
    on a fixture batch that kernel left a 17% error (against float64) in the first convolution's weight gradient,
    this formula 0.8%."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        reduce = all_reduce if distributed else (lambda t: t)
        count = x.numel() // x.size(1) * (dist.get_world_size() if distributed else 1)  # equal slices per process
        mean = reduce(x.sum(dim=(0, 2, 3))) / count
        centered = x - mean[None, :, None, None]
        var = reduce(centered.square().sum(dim=(0, 2, 3))) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1), self.momentum)  # unbiased, as F.batch_norm
        scale = self.weight * torch.rsqrt(var + self.eps)
        return centered * scale[None, :, None, None] + self.bias[None, :, None, None]


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int, config: MobileNetConfig):
        # Keras' padding='same': at stride 1, kernel // 2 pixels on each side; at stride 2 on an even input (every
        # stride-2 layer here), 0 pixels before and 1 after, which ZeroPad2d does before an unpadded convolution
        layers = [nn.ZeroPad2d((0, 1, 0, 1))] if stride == 2 else []
        layers.append(nn.Conv2d(cin, cout, kernel, stride, padding=0 if stride == 2 else kernel // 2,
                                groups=groups, bias=True))
        layers.append(DistributedBatchNorm2d(cout, eps=config.bn_eps, momentum=config.bn_momentum))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class MobileNetV1(nn.Module):
    def __init__(self, config: MobileNetConfig):
        super().__init__()
        self.config = config
        channels = config.first_filters
        layers = [ConvBNReLU(3, channels, 3, 2, 1, config)]
        for stride, multiplier in BLOCKS:
            layers.append(ConvBNReLU(channels, channels, 3, stride, channels, config))  # depthwise
            layers.append(ConvBNReLU(channels, channels * multiplier, 1, 1, 1, config))  # pointwise
            channels *= multiplier
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, config.num_classes)
        self.reset_parameters()
        self.to(getattr(torch, config.dtype))

    def reset_parameters(self) -> None:
        """Keras' initialisers: he_normal for convolution kernels, glorot_uniform for the dense kernel, zeros for
        biases. Keras computes a kernel's fan-in from its stored shape (kh, kw, in, out): a depthwise kernel
        (3, 3, C, 1) gets fan-in 9*C, not PyTorch's 9, and that is kept here."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                fan_in = kh * kw * module.in_channels  # depthwise: in_channels = C, as Keras counts it
                std = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # Keras: std of the untruncated normal
                nn.init.trunc_normal_(module.weight, 0.0, std, -2 * std, 2 * std)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = F.avg_pool2d(x, x.shape[-2:]).flatten(1)  # AveragePooling2D over the whole 3x3 map
        return self.classifier(x)

    def conv_weights(self) -> list[nn.Parameter]:
        """The kernels the Keras reference regularises with l2(1e-4): every convolution's weight (not the dense
        layer, not biases, not batch norm)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Conv2d)]
