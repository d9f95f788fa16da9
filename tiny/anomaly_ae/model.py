"""A fully connected autoencoder for anomaly detection on 28x28 images, after MLPerf Tiny's anomaly-detection model.

MLPerf Tiny's AD reference (ToyADMOS machine sounds) is a dense autoencoder 640-128-128-128-128-8-128-128-128-128-640
with batch norm and ReLU after every layer but the last, trained on normal sounds only; the anomaly score is the
reconstruction error. This is its MNIST analogue, shallower (128 and 64 units each side) on the 784 pixels:

    x (784 pixels in [0, 1])
      -> Linear 784->128, BN, ReLU -> Linear 128->64, BN, ReLU -> Linear 64->8, BN, ReLU      encoder
      -> Linear 8->64, BN, ReLU -> Linear 64->128, BN, ReLU -> Linear 128->784, sigmoid        decoder
      -> x_hat;   anomaly score = mean over pixels of (x_hat - x)^2

(every Linear followed by BN has no bias: BN's own shift takes its place.)

Trained on one digit only, it learns to reconstruct that digit through an 8-number bottleneck and reconstructs
other digits worse. With the reference config (hidden 128, 64; bottleneck 8): 219,680 parameters.

DistributedBatchNorm1d changes how batch statistics are computed under DDP, never which values: they span the
whole global batch (torch's SyncBatchNorm does the same but runs on GPUs only), so N processes train like one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.nn.functional import all_reduce


@dataclass
class AutoEncoderConfig:
    input_dim: int = 784                                   # 28 x 28 pixels, flattened
    hidden: list[int] = field(default_factory=lambda: [128, 64])  # encoder widths; the decoder mirrors them
    bottleneck: int = 8
    bn_momentum: float = 0.1                               # running-statistics update rate (torch's default)


class DistributedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d over (N, C) inputs; in training under torch.distributed the mean and variance are those of the
    global batch. The sums go through an autograd-aware all_reduce, so the backward pass also sums the statistics'
    gradients over processes, as SyncBatchNorm does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        count = x.size(0) * dist.get_world_size()  # every process holds an equal slice
        mean = all_reduce(x.sum(dim=0)) / count
        centered = x - mean
        var = all_reduce(centered.square().sum(dim=0)) / count
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1), self.momentum)  # unbiased, as F.batch_norm
        return centered * (self.weight * torch.rsqrt(var + self.eps)) + self.bias


def dense_block(n_in: int, n_out: int, bn_momentum: float) -> nn.Sequential:
    """Linear, batch norm, ReLU: every layer of the autoencoder but the last. The Linear has no bias: batch norm
    subtracts the batch mean, so a bias there would get a zero gradient, which Adam would turn into full-size
    steps driven by rounding noise (and 1 and N processes would drift apart through BN's running mean)."""
    return nn.Sequential(nn.Linear(n_in, n_out, bias=False), DistributedBatchNorm1d(n_out, momentum=bn_momentum),
                         nn.ReLU())


class AutoEncoder(nn.Module):
    def __init__(self, config: AutoEncoderConfig):
        super().__init__()
        widths = [config.input_dim, *config.hidden, config.bottleneck]
        self.encoder = nn.Sequential(*[dense_block(a, b, config.bn_momentum) for a, b in zip(widths, widths[1:])])
        back = widths[::-1]  # bottleneck, ..., hidden[0], input_dim
        self.decoder = nn.Sequential(*[dense_block(a, b, config.bn_momentum) for a, b in zip(back[:-2], back[1:-1])],
                                     nn.Linear(back[-2], back[-1]), nn.Sigmoid())  # pixels are in [0, 1]
        # PyTorch's default initialisation throughout: Linear uniform(+-1/sqrt(fan_in)), BN weight 1, bias 0.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 784) pixels -> (N, 784) reconstruction."""
        return self.decoder(self.encoder(x))

    def anomaly_score(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image reconstruction error: the mean squared error over the pixels, shape (N,)."""
        return (self(x) - x).square().mean(dim=1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
