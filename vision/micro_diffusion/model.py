"""A small denoising diffusion model (DDPM, Ho, Jain and Abbeel, NeurIPS 2020) for 28x28 grayscale images: a U-Net
that predicts the noise added to an image, the noise schedule that adds it, and a deterministic DDIM sampler
(Song, Meng and Ermon, ICLR 2021, eta = 0) that turns Gaussian noise into images.

The U-Net (no attention; GroupNorm, SiLU, one residual block per level, skips by concatenation), C = base_channels,
C1, C2, C3 = C x channel_mult:

    x_t 1x28x28 -> conv_in 3x3                      C  x 28x28
    down1  ResBlock(C -> C1)                        C1 x 28x28 -------------------------+
    pool1  3x3 conv, stride 2                       C1 x 14x14                          |
    down2  ResBlock(C1 -> C2)                       C2 x 14x14 -----------------+       |
    pool2  3x3 conv, stride 2                       C2 x  7x7                   |       |
    down3  ResBlock(C2 -> C3)                       C3 x  7x7  ---------+       |       |
    mid    ResBlock(C3 -> C3)                       C3 x  7x7           |       |       |
    up3    ResBlock(C3 + C3 -> C2)   <- concat -------------------------+       |       |
    nearest x2, unpool2 3x3 conv                    C2 x 14x14                  |       |
    up2    ResBlock(C2 + C2 -> C1)   <- concat ---------------------------------+       |
    nearest x2, unpool1 3x3 conv                    C1 x 28x28                          |
    up1    ResBlock(C1 + C1 -> C)    <- concat -----------------------------------------+
    GroupNorm, SiLU, conv_out 3x3                   1  x 28x28  = F(x_t, t)

Every ResBlock adds a learned projection of the time embedding (sinusoidal features of t, a 2-layer MLP) after
its first convolution. conv_out starts at zero.

The diffusion (`Diffusion`): a linear beta schedule over T steps (Ho et al.: beta from 1e-4 to 0.02, T = 1000).
Training draws t uniformly and noise eps ~ N(0, I), forms x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps (ab_t is
alpha_bar_t, the product of 1 - beta up to t) and minimises the paper's "simple" loss, the mean squared error
between eps and the predicted noise eps_hat. The predicted noise is

    eps_hat(x_t, t) = sqrt(ab_t) F(x_t, t) + sqrt(1 - ab_t) x_t,

that is, the network outputs the "velocity" v = sqrt(ab_t) eps - sqrt(1 - ab_t) x_0 (Salimans and Ho, ICLR 2022)
rather than eps itself. The loss is unchanged (it equals ab_t |v - F|^2); what changes is that at high noise,
where x_t is nearly all noise, eps_hat is nearly x_t whatever the young network says, instead of having to be
output to within a fraction of a percent (x_0 = (x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t) magnifies the error of
eps_hat by up to 1 / sqrt(ab_t) = 158). README section 4 has the measured difference.

Sampling runs S DDIM steps on the evenly spaced timesteps T-1, T-1-T/S, ..., T/S-1, then to t = 0, clipping the
predicted x_0 to the pixel range [-1, 1] at every step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class UNetConfig:
    base_channels: int = 16             # C: channels of conv_in and of the 28x28 level
    channel_mult: tuple = (1, 2, 2)     # C1, C2, C3 = C x channel_mult (28x28, 14x14, 7x7 levels)
    groups: int = 8                     # GroupNorm groups (every channel count must divide by it)
    time_dim: int = 64                  # width of the time embedding


@dataclass
class DiffusionConfig:
    timesteps: int = 1000               # T
    beta_start: float = 1.0e-4          # linear beta schedule (Ho et al.)
    beta_end: float = 0.02


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the (integer) timestep, as in the Transformer's position encoding."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, add the time embedding, GroupNorm-SiLU-conv; a 1x1 conv on the skip path when the
    channel count changes."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        c = config.base_channels
        c1, c2, c3 = (c * m for m in config.channel_mult)
        g, td = config.groups, config.time_dim
        self.time_mlp = nn.Sequential(nn.Linear(td, td), nn.SiLU(), nn.Linear(td, td))
        self.conv_in = nn.Conv2d(1, c, 3, padding=1)
        self.down1 = ResBlock(c, c1, td, g)                         # 28x28
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)      # -> 14x14
        self.down2 = ResBlock(c1, c2, td, g)
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)      # -> 7x7
        self.down3 = ResBlock(c2, c3, td, g)
        self.mid = ResBlock(c3, c3, td, g)
        self.up3 = ResBlock(c3 + c3, c2, td, g)
        self.unpool2 = nn.Conv2d(c2, c2, 3, padding=1)              # after nearest x2: -> 14x14
        self.up2 = ResBlock(c2 + c2, c1, td, g)
        self.unpool1 = nn.Conv2d(c1, c1, 3, padding=1)              # -> 28x28
        self.up1 = ResBlock(c1 + c1, c, td, g)
        self.norm_out = nn.GroupNorm(g, c)
        self.conv_out = nn.Conv2d(c, 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # F starts at 0: eps_hat = sqrt(1 - ab_t) x_t
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_features(t, self.config.time_dim))
        h1 = self.down1(self.conv_in(x), temb)                                          # C1 x 28x28
        h2 = self.down2(self.pool1(h1), temb)                                           # C2 x 14x14
        h3 = self.down3(self.pool2(h2), temb)                                           # C3 x 7x7
        h = self.mid(h3, temb)
        h = self.up3(torch.cat([h, h3], 1), temb)                                       # C2 x 7x7
        h = self.up2(torch.cat([self.unpool2(F.interpolate(h, scale_factor=2.0)), h2], 1), temb)  # C1 x 14x14
        h = self.up1(torch.cat([self.unpool1(F.interpolate(h, scale_factor=2.0)), h1], 1), temb)  # C x 28x28
        return self.conv_out(F.silu(self.norm_out(h)))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class Diffusion:
    """The forward (noising) process of DDPM and the deterministic DDIM sampler, on a linear beta schedule."""

    def __init__(self, config: DiffusionConfig):
        self.T = config.timesteps
        betas = torch.linspace(config.beta_start, config.beta_end, self.T, dtype=torch.float64)
        alpha_bar = torch.cumprod(1.0 - betas, dim=0)
        self.alpha_bar = alpha_bar.float()  # alpha_bar_t for t = 0 .. T-1: decreasing from ~1 towards 0

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        ab = self.alpha_bar.to(x0.device)[t][:, None, None, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def predict_noise(self, model: nn.Module, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps_hat = sqrt(ab_t) F(x_t, t) + sqrt(1 - ab_t) x_t: the network F outputs v (module docstring)."""
        ab = self.alpha_bar.to(x_t.device)[t][:, None, None, None]
        return ab.sqrt() * model(x_t, t) + (1 - ab).sqrt() * x_t

    def loss(self, model: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Ho et al.'s "simple" objective: the mean squared error between the true and the predicted noise."""
        return F.mse_loss(self.predict_noise(model, self.add_noise(x0, t, noise), t), noise)

    def sample_timesteps(self, steps: int) -> list[int]:
        """S evenly spaced timesteps from T-1 down to T/S-1 ("trailing" spacing: the first step starts from pure
        noise at t = T-1)."""
        return [self.T * (steps - i) // steps - 1 for i in range(steps)]

    @torch.no_grad()
    def ddim_sample(self, model: nn.Module, noise: torch.Tensor, steps: int) -> torch.Tensor:
        """DDIM with eta = 0: a deterministic map from the starting noise x_T to images in [-1, 1]."""
        ab = self.alpha_bar.to(noise.device)
        x = noise
        timesteps = self.sample_timesteps(steps)
        for i, t in enumerate(timesteps):
            ab_t = ab[t]
            ab_prev = ab[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.ones((), device=noise.device)
            eps = self.predict_noise(model, x, torch.full((len(x),), t, device=x.device, dtype=torch.long))
            x0 = ((x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()).clamp(-1, 1)
            eps = (x - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()  # the noise consistent with the clipped x_0
            x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        return x
