"""Trivial baselines for the quality target, scored like the benchmark (AUC of "rating >= 4" on u1.test) and fitted
on u1.base only. Each baseline's one smoothing constant is chosen on a held-out 20% of u1.base (never on u1.test),
then the baseline is refitted on all of u1.base.

- item popularity: number of u1.base ratings of the movie;
- item mean / user mean: share of 4-5 ratings of the movie / of the user, shrunk towards the global share
  with k pseudo-ratings (unseen ids get the global share);
- user + item mean: the sum of the two;
- user + item biases: label ~ global + b_user + b_item, ridge-regularised least squares (alternating, 20 sweeps).

    python recommender/micro_dlrm/baselines.py [--data-dir data]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from common.movielens import read_ratings, roc_auc  # noqa: E402

GRID = (1, 2, 5, 10, 25, 50)


def shrunk_mean(ids: np.ndarray, labels: np.ndarray, k: float, size: int) -> np.ndarray:
    total, count = np.bincount(ids, labels, minlength=size), np.bincount(ids, minlength=size)
    return (total + k * labels.mean()) / (count + k)


def biases(train: np.ndarray, labels: np.ndarray, lam: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    user, item, mu = train[:, 0], train[:, 1], labels.mean()
    b_user, b_item = np.zeros(size), np.zeros(size)
    for _ in range(20):
        b_item = np.bincount(item, labels - mu - b_user[user], minlength=size) / (np.bincount(item, minlength=size) + lam)
        b_user = np.bincount(user, labels - mu - b_item[item], minlength=size) / (np.bincount(user, minlength=size) + lam)
    return b_user, b_item


def scorers(train: np.ndarray, size: int) -> dict:
    """name -> function(constant, rows) -> scores, each fitted on `train` only."""
    y = (train[:, 2] >= 4).astype(np.float64)
    u, i = train[:, 0], train[:, 1]
    return {
        "item popularity": lambda k, rows: np.bincount(i, minlength=size)[rows[:, 1]].astype(float),
        "item mean": lambda k, rows: shrunk_mean(i, y, k, size)[rows[:, 1]],
        "user mean": lambda k, rows: shrunk_mean(u, y, k, size)[rows[:, 0]],
        "user + item mean": lambda k, rows: shrunk_mean(u, y, k, size)[rows[:, 0]] + shrunk_mean(i, y, k, size)[rows[:, 1]],
        "user + item biases": lambda k, rows: (lambda b: b[0][rows[:, 0]] + b[1][rows[:, 1]])(biases(train, y, k, size)),
    }


def auc(scores: np.ndarray, rows: np.ndarray) -> float:
    return roc_auc(torch.from_numpy(scores), torch.from_numpy((rows[:, 2] >= 4).astype(np.float64)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args()
    definition = benchmark.load(HERE)
    files = {Path(f["path"]).name: args.data_dir / f["path"] for f in definition["dataset"]["files"]}
    base = read_ratings(files[definition["dataset"]["train_file"]])
    test = read_ratings(files[definition["dataset"]["test_file"]])
    size = int(max(base[:, :2].max(), test[:, :2].max())) + 1
    held_out = np.random.default_rng(0).random(len(base)) < 0.2
    dev = scorers(base[~held_out], size)
    final = scorers(base, size)
    print(f"{'constant':>20}: 0.5000 AUC on u1.test")
    for name in final:
        if name == "item popularity":  # no constant to choose
            print(f"{name:>20}: {auc(final[name](None, test), test):.4f} AUC on u1.test")
            continue
        k = max(GRID, key=lambda c: auc(dev[name](c, base[held_out]), base[held_out]))
        print(f"{name:>20}: {auc(final[name](k, test), test):.4f} AUC on u1.test (constant {k}, chosen on held-out u1.base)")
    print(f"target: {definition['quality']['target']}")
