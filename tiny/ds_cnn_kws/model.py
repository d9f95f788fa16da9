"""DS-CNN, MLPerf Tiny's keyword-spotting reference model (benchmark/training/keyword_spotting/keras_model.py of
mlcommons/tiny, model_architecture 'ds_cnn'), in PyTorch, layer for layer.

Input: 49 frames x 10 MFCCs, one channel (N, 1, 49, 10). With Keras's 'same' padding the shapes are

    conv 64 x (10x4), stride 2  -> BN -> ReLU -> dropout 0.2            64 x 25 x 5
    4 x [ depthwise 3x3 -> BN -> ReLU -> pointwise 1x1, 64 -> BN -> ReLU ]  64 x 25 x 5
    dropout 0.4 -> average pool (24 x 5), as Keras's AveragePooling2D(pool_size=(49//2, 10//2)) with 'valid'
    padding: it averages frames 0-23 of the 25 and drops the last one  ->  64 x 1 x 1
    linear 64 -> 12 (the softmax is in the loss)

Every convolution keeps Keras's bias (use_bias defaults to True), so the model has 23,756 parameters plus 1,152
BatchNorm running statistics (buffers here): 24,908 values, the "Total params" of the Keras model's summary.
Initialisation is Keras's: Glorot-uniform kernels with Keras's fan-in/fan-out, zero biases; BatchNorm with
Keras's epsilon (1e-3) and momentum (0.99, i.e. torch momentum 0.01).

DistributedBatchNorm2d (as in vision/resnet18/model.py): under DDP its batch statistics span the whole global
batch, so N processes train like one process at the same global batch.
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
class DSCNNConfig:
    num_classes: int = 12
    filters: int = 64
    blocks: int = 4                 # depthwise-separable blocks
    input_frames: int = 49
    input_coefficients: int = 10
    first_dropout: float = 0.2      # after the first convolution
    final_dropout: float = 0.4      # before the average pool
    bn_momentum: float = 0.01       # torch convention: Keras's momentum 0.99
    bn_eps: float = 1e-3            # Keras's default


class DSCNN(nn.Module):
    def __init__(self, config: DSCNNConfig):
        super().__init__()
        self.config = c = config
        bn = lambda: DistributedBatchNorm2d(c.filters, eps=c.bn_eps, momentum=c.bn_momentum)  # noqa: E731
        self.conv = nn.Conv2d(1, c.filters, (10, 4), stride=2)  # 'same' padding applied in forward (asymmetric)
        self.conv_bn = bn()
        self.depthwise = nn.ModuleList(nn.Conv2d(c.filters, c.filters, 3, padding=1, groups=c.filters)
                                       for _ in range(c.blocks))
        self.depthwise_bn = nn.ModuleList(bn() for _ in range(c.blocks))
        self.pointwise = nn.ModuleList(nn.Conv2d(c.filters, c.filters, 1) for _ in range(c.blocks))
        self.pointwise_bn = nn.ModuleList(bn() for _ in range(c.blocks))
        self.fc = nn.Linear(c.filters, c.num_classes)
        # Keras's 'same' padding of the strided first convolution: total = (out - 1) * stride + kernel - in,
        # the smaller half before. For 49 x 10: 9 frames (4 before, 5 after) and 2 coefficients (1, 1).
        out_h, out_w = math.ceil(c.input_frames / 2), math.ceil(c.input_coefficients / 2)
        pad_h, pad_w = max((out_h - 1) * 2 + 10 - c.input_frames, 0), max((out_w - 1) * 2 + 4 - c.input_coefficients, 0)
        self.same_padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        self.pool = (c.input_frames // 2, c.input_coefficients // 2)  # Keras: pool_size=(int(49/2), int(10/2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras's defaults: glorot_uniform kernels, zero biases (BatchNorm: weight 1, bias 0, as torch)."""
        for module in [self.conv, *self.depthwise, *self.pointwise, self.fc]:
            weight = module.weight
            if isinstance(module, nn.Conv2d):
                receptive = weight.shape[2] * weight.shape[3]
                in_per_group = weight.shape[1]
                # Keras kernel shapes: Conv2D (kh, kw, in, out): fan_in = kh*kw*in, fan_out = kh*kw*out;
                # DepthwiseConv2D (kh, kw, in, 1): fan_in = kh*kw*in, fan_out = kh*kw*1.
                if module.groups > 1:
                    fan_in, fan_out = receptive * module.groups, receptive * in_per_group
                else:
                    fan_in, fan_out = receptive * in_per_group, receptive * weight.shape[0]
            else:
                fan_in, fan_out = weight.shape[1], weight.shape[0]
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            nn.init.uniform_(weight, -limit, limit)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, 49, 10) MFCCs -> (N, 12) logits."""
        c = self.config
        x = F.relu(self.conv_bn(self.conv(F.pad(x, self.same_padding))))
        x = F.dropout(x, c.first_dropout, self.training)
        for dw, dw_bn, pw, pw_bn in zip(self.depthwise, self.depthwise_bn, self.pointwise, self.pointwise_bn):
            x = F.relu(dw_bn(dw(x)))
            x = F.relu(pw_bn(pw(x)))
        x = F.dropout(x, c.final_dropout, self.training)
        x = F.avg_pool2d(x, self.pool)  # stride = pool size, no padding: 25 x 5 -> 1 x 1 (frames 0-23)
        return self.fc(x.flatten(1))

    def l2_regularized(self) -> list[nn.Parameter]:
        """The kernels Keras's kernel_regularizer=l2(1e-4) reaches: the first convolution's and the pointwise
        ones. (Keras's DepthwiseConv2D takes its kernel's regularizer from depthwise_regularizer, which the
        reference leaves unset; biases, BatchNorm and the dense layer are not regularized.)"""
        return [self.conv.weight, *(pw.weight for pw in self.pointwise)]


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class DistributedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d; in training under torch.distributed the mean and variance are those of the global batch.

    The per-channel sums go through an autograd-aware all_reduce, so the backward pass also sums the
    statistics' gradients over processes, as SyncBatchNorm does (which runs on GPUs only). Two passes (mean,
    then squared deviations) keep the variance as accurate as F.batch_norm's.
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
