"""Trivial baselines for the quality target, measured on the same validation split and metric:
unigram and bigram character models fitted on the training split (add-one smoothing).

    python language/nano_moe/baselines.py [--data-dir data]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from train import load_splits  # noqa: E402


def ngram_losses(train: torch.Tensor, val: torch.Tensor, vocab_size: int) -> dict:
    unigram = torch.bincount(train, minlength=vocab_size).double() + 1
    unigram_nll = -(unigram / unigram.sum()).log()[val[1:]].mean().item()
    pairs = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    pairs.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1, dtype=torch.float64), accumulate=True)
    bigram = (pairs + 1) / (pairs + 1).sum(dim=1, keepdim=True)
    bigram_nll = -bigram.log()[val[:-1], val[1:]].mean().item()
    return {"uniform": math.log(vocab_size), "unigram": unigram_nll, "bigram": bigram_nll}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args()
    train, val, vocab_size = load_splits(benchmark.load(HERE), args.data_dir)
    for name, loss in ngram_losses(train, val, vocab_size).items():
        print(f"{name:>8}: {loss:.4f} nats/char on the validation split")
