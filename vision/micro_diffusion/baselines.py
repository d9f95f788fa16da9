"""Trivial baselines for the quality target, scored exactly like the benchmark: the Frechet distance of
`fid_samples` images to the 10,000 test images in the pinned evaluation network's feature space.

- train images: `fid_samples` real training images (the floor a perfect generator would reach, up to noise);
- blurred / shifted train images: real training images blurred (Gaussian, sigma 1 and 2 pixels) or moved
  2 pixels to the right (how much the metric penalises a loss of detail or a misplaced object);
- pixel-shuffled train images: each image's pixels in a random order (right intensities, no structure);
- Gaussian noise: each pixel drawn from a normal with the training images' per-pixel mean and std, clipped;
- mean image: the mean training image, repeated;
- untrained model: DDIM samples (the benchmark's sampler and steps) of the U-Net at its initialisation.

All draws use fixed seeds; every baseline is fitted on (or drawn from) the training images only.

    python vision/micro_diffusion/baselines.py [--data-dir data] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from evaluator import feature_moments, frechet_distance, gaussian, load_evaluator, to_uint8  # noqa: E402
from model import Diffusion, DiffusionConfig, UNet, UNetConfig  # noqa: E402
from train import load_fashion_mnist  # noqa: E402


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] -> uint8 pixels, as the dataset stores them."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """uint8 images blurred with a separable 9-tap Gaussian kernel (edges replicated)."""
    taps = torch.arange(-4, 5, dtype=torch.float32)
    kernel = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    x = images.float().div(255).unsqueeze(1)
    x = F.conv2d(F.pad(x, (4, 4, 0, 0), mode="replicate"), kernel.view(1, 1, 1, 9))
    x = F.conv2d(F.pad(x, (0, 0, 4, 4), mode="replicate"), kernel.view(1, 1, 9, 1))
    return to_pixels(x.squeeze(1))


def baseline_images(definition: dict, train_images: torch.Tensor, n: int, seed: int = 0) -> dict:
    """{baseline name: n uint8 images (n, 28, 28)}, all drawn from or fitted on the training images."""
    g = torch.Generator().manual_seed(seed)
    real = train_images[torch.randperm(len(train_images), generator=g)[:n]]
    pixels = train_images.float().div(255)
    mean, std = pixels.mean(dim=0), pixels.std(dim=0)
    cfg, hp = definition["model"], definition["hyperparameters"]
    torch.manual_seed(seed)
    untrained = UNet(UNetConfig(**cfg["unet"])).eval()
    noise = torch.randn(n, 1, 28, 28, generator=g)
    samples = Diffusion(DiffusionConfig(**cfg["diffusion"])).ddim_sample(untrained, noise, hp["fid_sampler_steps"])
    return {
        "train images (floor)": real,
        "train images, blurred sigma 1": gaussian_blur(real, 1.0),
        "train images, blurred sigma 2": gaussian_blur(real, 2.0),
        "train images, shifted 2 px": torch.roll(real, 2, dims=2),
        "train images, pixels shuffled": torch.stack([x.flatten()[torch.randperm(784, generator=g)].view(28, 28)
                                                       for x in real]),
        "Gaussian noise, per-pixel mean/std": to_pixels(mean + std * torch.randn(n, 28, 28, generator=g)),
        "mean train image, repeated": to_pixels(mean.expand(n, 28, 28)),
        "untrained model": to_uint8(samples),
    }


def baseline_distances(definition: dict, train_images: torch.Tensor, test_images: torch.Tensor,
                       seed: int = 0) -> dict:
    evaluator = load_evaluator(definition["model"]["evaluator"])
    reference = gaussian(feature_moments(evaluator, test_images))
    n = definition["hyperparameters"]["fid_samples"]
    return {name: frechet_distance(*gaussian(feature_moments(evaluator, images)), *reference)
            for name, images in baseline_images(definition, train_images, n, seed).items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    definition = benchmark.load(HERE)
    train_x, _, test_x, _ = load_fashion_mnist(definition, args.data_dir)
    n = definition["hyperparameters"]["fid_samples"]
    for name, distance in baseline_distances(definition, train_x, test_x, args.seed).items():
        print(f"{name:>36}: FD {distance:8.4f}  ({n} images vs the 10,000 test images)")
