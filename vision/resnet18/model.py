"""ResNet-18 (He et al., 2016) as torchvision.models.resnet18 builds it, adapted to 28x28 grayscale images.

The one architectural change is the first convolution: 1 input channel instead of 3. Everything else is
torchvision's: the 7x7 stride-2 stem, the 3x3 stride-2 max pool, four stages of two BasicBlocks (64, 128, 256,
512 channels), global average pooling and a 10-way linear classifier. On a 28x28 image the feature maps are

    conv1 14x14 -> maxpool 7x7 (layer1) -> 4x4 (layer2) -> 2x2 (layer3) -> 1x1 (layer4) -> avgpool -> fc

which keeps training cheap enough for a 2-core CPU: 66 MFLOP per image forward, 197 MFLOP per training image
(a multiply-add counts two). Two modules below change how values are computed, never which values:

- DistributedBatchNorm2d: under DDP its batch statistics span the whole global batch (torch's SyncBatchNorm
  does the same but runs on GPUs only), so N processes train like one process at the same global batch.
- GemmConv2d: computes a convolution's weight gradient as one matrix product over the whole batch. oneDNN's
  CPU kernel loops over the images and re-reads the weight gradient for each; for layer4's 512x512x3x3 weights
  (9.4 MB, larger than this machine's L3 cache) that runs at under 1 GFLOP/s. train.py uses it on CPU only.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.distributed.nn.functional import all_reduce


@dataclass
class ResNetConfig:
    in_channels: int = 1
    num_classes: int = 10
    zero_init_residual: bool = False  # torchvision's option: last BN of each residual branch starts at zero
    bn_momentum: float = 0.1          # running-statistics update rate of every BatchNorm (torch's default)


def resnet18(config: ResNetConfig) -> nn.Module:
    """torchvision's ResNet-18 with a grayscale stem; torchvision's initialisation throughout."""
    model = torchvision.models.resnet18(weights=None, num_classes=config.num_classes,
                                        zero_init_residual=config.zero_init_residual,
                                        norm_layer=partial(DistributedBatchNorm2d, momentum=config.bn_momentum))
    model.conv1 = nn.Conv2d(config.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision does
    return model


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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


class _GemmConv2dFunction(torch.autograd.Function):
    """conv2d (no bias, no groups, no dilation) whose weight gradient is one GEMM over the unfolded input."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, None, stride, padding)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(x.shape, weight, grad_out, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            cols = F.unfold(x, weight.shape[2:], padding=ctx.padding, stride=ctx.stride)  # B, Cin*kh*kw, L
            cols = cols.transpose(1, 2).reshape(-1, cols.size(1))                          # B*L, Cin*kh*kw
            grads = grad_out.flatten(2).transpose(0, 1).reshape(grad_out.size(1), -1)      # Cout, B*L
            grad_weight = (grads @ cols).view_as(weight)
        return grad_x, grad_weight, None, None


class GemmConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GemmConv2dFunction.apply(x, self.weight, self.stride, self.padding)


def use_gemm_weight_gradients(model: nn.Module) -> nn.Module:
    """Turn every Conv2d of a ResNet (bias-free, ungrouped, undilated) into a GemmConv2d; parameters are kept."""
    for module in model.modules():
        if type(module) is nn.Conv2d:
            assert module.bias is None and module.groups == 1 and module.dilation == (1, 1)
            module.__class__ = GemmConv2d  # same parameters and attributes; only forward/backward differ
    return model
