"""Trivial baselines for the quality target, fitted on the training split and scored like the benchmark: top-1
accuracy on the validation split (the first 10% of each class's sorted file names).

- majority: always predict the most frequent training class;
- nearest centroid: the class whose mean training image is closest (Euclidean, standardised pixels at 24x24);
- linear: logistic regression on the standardised 24x24x3 pixels (full-batch L-BFGS, no regularisation).

    python tiny/micronet_vww/baselines.py [--data-dir data] [--synthetic-data] [--skip-linear]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from train import channel_stats, load_splits  # noqa: E402

POOL = 4  # 96x96 -> 24x24 by averaging 4x4 blocks: 1,728 features


def features(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = (images.double().div(255) - mean[None, :, None, None]) / std[None, :, None, None]
    return F.avg_pool2d(x, POOL).flatten(1)


def baseline_accuracies(train_x, train_y, val_x, val_y, linear: bool = True, linear_iters: int = 100) -> dict:
    mean, std = channel_stats(train_x)
    xtr, xva = features(train_x, mean, std), features(val_x, mean, std)
    classes = int(train_y.max()) + 1
    majority = torch.bincount(train_y).argmax()
    centroids = torch.stack([xtr[train_y == c].mean(dim=0) for c in range(classes)])
    results = {
        "majority": (val_y == majority).double().mean().item(),
        "nearest_centroid": (torch.cdist(xva, centroids).argmin(dim=1) == val_y).double().mean().item(),
    }
    if linear:
        weight = torch.zeros(xtr.size(1), classes, dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=linear_iters, history_size=20,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = F.cross_entropy(xtr @ weight + bias, train_y)
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            results["linear"] = ((xva @ weight + bias).argmax(dim=1) == val_y).double().mean().item()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    parser.add_argument("--synthetic-data", action="store_true", default=os.environ.get("SYNTHETIC_DATA") == "1",
                        help="the synthetic pipeline fixture (its figures mean nothing)")
    parser.add_argument("--skip-linear", action="store_true")
    args = parser.parse_args()
    data = load_splits(benchmark.load(HERE), args.data_dir, args.synthetic_data)
    (train_x, train_y), (val_x, val_y) = data["train"], data["val"]
    what = "synthetic fixture" if args.synthetic_data else "Visual Wake Words"
    for name, accuracy in baseline_accuracies(train_x, train_y, val_x, val_y, linear=not args.skip_linear).items():
        print(f"{name:>16}: {accuracy:.4f} top-1 on the {len(val_x):,} validation images ({what})")
