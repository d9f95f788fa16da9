"""The quality metric: a Frechet distance (FID's formula, Heusel et al., NeurIPS 2017) between generated images and
the test images, in the feature space of a fixed evaluation network that every submission uses.

The evaluation network is a random-feature CNN: its weights are not trained but drawn from a seed, in a way that
gives the same bytes on every machine (numpy's PCG64 generator, uniform float64 draws, float64 arithmetic, one
rounding to float32), and the sha256 of those bytes is pinned in benchmark.yaml: `load_evaluator` refuses to score
with any other weights. Nothing has to be downloaded, nothing is trained, and no framework version can change it
unnoticed. README section 5 shows that this feature space separates real images from the trivial baselines.

    image 1x28x28 in [0, 1] -> x * 2 - 1
      conv 3x3 1 -> 32,  ReLU, 2x2 average pool   -> 32 x 14x14
      conv 3x3 32 -> 64, ReLU, 2x2 average pool   -> 64 x 7x7
      conv 3x3 64 -> 64, ReLU                     -> 64 x 7x7 = 3136 values
      linear 3136 -> 64 (a random projection, which keeps where in the image each local feature is)
                                                  -> 64 features

Weights are uniform in +-sqrt(6 / fan_in) (He-uniform, so activations keep their scale through the ReLUs), biases 0.

The Frechet distance between Gaussians fitted to two feature sets (means m1, m2, covariances S1, S2) is

    FD = |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)),

computed in float64; tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2)
(a symmetric positive semi-definite matrix with the same eigenvalues as S1 S2).
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class EvaluatorError(RuntimeError):
    """The evaluation network is not the one the benchmark pins."""


class Evaluator(nn.Module):
    def __init__(self, widths=(32, 64, 64), features: int = 64):
        super().__init__()
        c1, c2, c3 = widths
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.proj = nn.Linear(c3 * 7 * 7, features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) pixels in [0, 1] -> (N, features)."""
        x = images * 2 - 1
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        return self.proj(x.flatten(1))


def seeded_weights(model: nn.Module, seed: int) -> nn.Module:
    """Draw every parameter, in the module's parameter order, from numpy's PCG64 generator: weights uniform in
    +-sqrt(6 / fan_in), biases zero. All arithmetic is float64 (exact IEEE operations, the same on every
    machine), then one rounding to float32."""
    rng = np.random.Generator(np.random.PCG64(seed))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                values = np.zeros(p.shape, dtype=np.float64)
            else:
                fan_in = int(np.prod(p.shape[1:]))
                values = (2.0 * rng.random(p.shape, dtype=np.float64) - 1.0) * np.sqrt(6.0 / fan_in)
            p.copy_(torch.from_numpy(values.astype("<f4")))
    return model


def weights_sha256(model: nn.Module) -> str:
    """sha256 of the parameters' float32 little-endian bytes, concatenated in parameter order."""
    digest = hashlib.sha256()
    for _, p in model.named_parameters():
        digest.update(p.detach().cpu().numpy().astype("<f4").tobytes())
    return digest.hexdigest()


def load_evaluator(config: dict) -> Evaluator:
    """The benchmark's evaluation network (config: benchmark.yaml model.evaluator), checked against its sha256."""
    model = seeded_weights(Evaluator(tuple(config["widths"]), config["features"]), config["seed"]).eval()
    model.requires_grad_(False)
    actual = weights_sha256(model)
    if actual != config["sha256"]:
        raise EvaluatorError(f"the evaluation network's weights have sha256 {actual}, not the pinned "
                             f"{config['sha256']}: refusing to score with a different evaluator")
    return model


@torch.no_grad()
def feature_moments(evaluator: nn.Module, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Sufficient statistics of the features of uint8 images (N, 28, 28) or float images (N, 1, 28, 28) in [0, 1]:
    a float64 tensor (1 + F + F*F,) = [count, sum of features, sum of outer products]. Sums add over shards
    (and over processes), so a distributed evaluation all-reduces them."""
    total = None
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        if chunk.dtype == torch.uint8:
            chunk = chunk.float().div(255).unsqueeze(1)
        f = evaluator(chunk).double()
        part = torch.cat([f.new_tensor([len(f)]), f.sum(0), (f.T @ f).flatten()])
        total = part if total is None else total + part
    return total


def gaussian(moments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance from feature_moments' sums."""
    n = moments[0]
    d = int(round((-1 + (1 + 4 * (len(moments) - 1)) ** 0.5) / 2))  # len = 1 + d + d*d
    mean = moments[1:1 + d] / n
    second = moments[1 + d:].view(d, d)
    cov = (second - n * torch.outer(mean, mean)) / (n - 1)
    return mean, (cov + cov.T) / 2


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
    """Frechet distance between N(mean1, cov1) and N(mean2, cov2), in float64."""
    mean1, cov1, mean2, cov2 = (t.double() for t in (mean1, cov1, mean2, cov2))
    vals, vecs = torch.linalg.eigh(cov1)
    sqrt1 = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    middle = sqrt1 @ cov2 @ sqrt1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float((mean1 - mean2).square().sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generated images in [-1, 1] (N, 1, 28, 28) -> uint8 pixels (N, 28, 28), as the test images are stored."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1)
