"""Trivial baselines for the quality target, fitted on the training split and scored like the benchmark: top-1
accuracy on the test split (MFCCs exactly as train.py computes them).

- majority: always predict the most frequent training class (_unknown_ on Speech Commands);
- nearest centroid: the class whose mean training MFCC image is closest (Euclidean, standardised features);
- linear: multinomial logistic regression on the 490 standardised MFCCs (full-batch L-BFGS, no regularisation).

    python tiny/ds_cnn_kws/baselines.py [--data-dir data] [--synthetic-data] [--skip-linear]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from speech_commands import LABELS, load_splits  # noqa: E402


def baseline_accuracies(train_x, train_y, test_x, test_y, linear: bool = True, linear_iters: int = 200) -> dict:
    """train_x/test_x: (N, 49, 10) MFCCs; standardisation statistics come from the training split only."""
    xtr, xte = torch.as_tensor(train_x).flatten(1), torch.as_tensor(test_x).flatten(1)
    ytr, yte = torch.as_tensor(train_y), torch.as_tensor(test_y)
    mean, std = xtr.mean(dim=0), xtr.std(dim=0) + 1e-6
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    classes = len(LABELS)
    majority = torch.bincount(ytr, minlength=classes).argmax()
    centroids = torch.stack([xtr[ytr == c].mean(dim=0) for c in range(classes)])
    results = {
        "majority": (yte == majority).float().mean().item(),
        "nearest_centroid": (torch.cdist(xte, centroids).argmin(dim=1) == yte).float().mean().item(),
    }
    if linear:
        torch.manual_seed(0)
        weight = torch.zeros(xtr.size(1), classes, requires_grad=True)
        bias = torch.zeros(classes, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=linear_iters, history_size=20,
                                      line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = F.cross_entropy(xtr @ weight + bias, ytr)
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            results["linear"] = ((xte @ weight + bias).argmax(dim=1) == yte).float().mean().item()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    parser.add_argument("--synthetic-data", action="store_true", default=os.environ.get("SYNTHETIC_DATA") == "1",
                        help="the synthetic stand-in corpus (default: SYNTHETIC_DATA=1)")
    parser.add_argument("--skip-linear", action="store_true")
    args = parser.parse_args()
    splits = load_splits(benchmark.load(HERE), args.data_dir, args.synthetic_data, names=("train", "test"))
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    what = "SYNTHETIC stand-in" if args.synthetic_data else "Speech Commands"
    print(f"{what}: {len(train_y)} training clips, {len(test_y)} test clips; test classes "
          f"{np.bincount(test_y, minlength=len(LABELS)).tolist()}")
    for name, accuracy in baseline_accuracies(train_x, train_y, test_x, test_y, linear=not args.skip_linear).items():
        print(f"{name:>16}: {accuracy:.4f} top-1 on the {len(test_y)} test clips")
