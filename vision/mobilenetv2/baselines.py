"""Trivial baselines for the quality target, fitted on the training split and scored like the benchmark: top-1
accuracy on the 10,000 test images.

- majority: always predict the most frequent training class;
- nearest centroid: the class whose mean training image is closest (Euclidean, standardised pixels);
- linear: multinomial logistic regression on the 784 standardised pixels (full-batch L-BFGS, no regularisation).

    python vision/mobilenetv2/baselines.py [--data-dir data] [--skip-linear]
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
from train import load_fashion_mnist, make_normalize  # noqa: E402


def baseline_accuracies(train_x, train_y, test_x, test_y, linear: bool = True, linear_iters: int = 100) -> dict:
    normalize = make_normalize(train_x)
    xtr, xte = normalize(train_x, "cpu").flatten(1), normalize(test_x, "cpu").flatten(1)
    majority = torch.bincount(train_y).argmax()
    centroids = torch.stack([xtr[train_y == c].mean(dim=0) for c in range(10)])
    results = {
        "majority": (test_y == majority).float().mean().item(),
        "nearest_centroid": (torch.cdist(xte, centroids).argmin(dim=1) == test_y).float().mean().item(),
    }
    if linear:
        weight = torch.zeros(xtr.size(1), 10, requires_grad=True)
        bias = torch.zeros(10, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=linear_iters, history_size=20,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = F.cross_entropy(xtr @ weight + bias, train_y)
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            results["linear"] = ((xte @ weight + bias).argmax(dim=1) == test_y).float().mean().item()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--skip-linear", action="store_true")
    args = parser.parse_args()
    splits = load_fashion_mnist(benchmark.load(HERE), args.data_dir)
    for name, accuracy in baseline_accuracies(*splits, linear=not args.skip_linear).items():
        print(f"{name:>16}: {accuracy:.4f} top-1 on the 10,000 test images")
