"""Trivial baselines for the quality target, measured on the same 1000 test nodes and metric (accuracy):

- majority: the most frequent class among the 640 labelled train + validation nodes (train alone is 20 per class);
- features only: the same two-layer network and protocol with the graph replaced by the identity (an MLP);
- graph only: label propagation of the 140 training labels over A_hat (features ignored), 50 iterations.

    python graph/micro_gcn/baselines.py [--data-dir data] [--seeds 5]
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from model import GCN, GCNConfig, normalized_adjacency  # noqa: E402
from train import load_planetoid  # noqa: E402


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    return (scores.argmax(1) == labels).float().mean().item()


def majority(data: dict) -> float:
    labelled = torch.cat([data["train"], data["val"]])
    return (data["labels"][data["test"]] == data["labels"][labelled].bincount().argmax()).float().mean().item()


def label_propagation(data: dict, adj: torch.Tensor, iterations: int = 50) -> float:
    labels, train = data["labels"], data["train"]
    seeds = torch.zeros(len(labels), int(labels.max()) + 1)
    seeds[train, labels[train]] = 1.0
    scores = seeds.clone()
    for _ in range(iterations):
        scores = torch.sparse.mm(adj, scores)
        scores[train] = seeds[train]
    return accuracy(scores[data["test"]], labels[data["test"]])


def train_and_test(data: dict, adj: torch.Tensor, definition: dict, seed: int) -> float:
    """The benchmark's protocol (validation early stopping, best weights, one test score) on one process."""
    hp, x, labels = definition["hyperparameters"], data["features"], data["labels"]
    torch.manual_seed(seed)
    model = GCN(GCNConfig(x.size(1), int(labels.max()) + 1, definition["model"]["hidden"], hp["dropout"]))
    optimizer = model.configure_optimizer(hp)
    best = (float("inf"), 0, None)
    for step in range(definition["quality"]["max_steps"]):
        model.train()
        loss = F.cross_entropy(model(x, adj)[data["train"]], labels[data["train"]])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = F.cross_entropy(model(x, adj)[data["val"]], labels[data["val"]]).item()
        if val_loss < best[0]:
            best = (val_loss, step, copy.deepcopy(model.state_dict()))
        elif step - best[1] >= hp["early_stopping_patience"]:
            break
    model.load_state_dict(best[2])
    model.eval()
    with torch.no_grad():
        return accuracy(model(x, adj)[data["test"]], labels[data["test"]])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    definition = benchmark.load(HERE)
    data = load_planetoid(args.data_dir / Path(definition["dataset"]["files"][0]["path"]).parent)
    n = len(data["labels"])
    adj = normalized_adjacency(data["edges"], n)
    identity = torch.sparse_coo_tensor(torch.arange(n).repeat(2, 1), torch.ones(n), (n, n),
                                        check_invariants=False).coalesce()
    print(f"{'majority class':>24}: {majority(data):.4f} test accuracy")
    print(f"{'graph only (label prop)':>24}: {label_propagation(data, adj):.4f} test accuracy")
    for name, graph in (("features only (MLP)", identity), ("GCN (reference)", adj)):
        scores = [train_and_test(data, graph, definition, seed) for seed in range(1, args.seeds + 1)]
        print(f"{name:>24}: {sum(scores) / len(scores):.4f} mean test accuracy over seeds 1..{args.seeds} "
              f"(min {min(scores):.4f}, max {max(scores):.4f})")
