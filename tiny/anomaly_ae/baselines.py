"""Trivial baselines for the quality target, fitted on the normal class's training images only and scored exactly
like the benchmark: AUROC (torchmetrics binary_auroc) of a per-image mean squared error over the 10,000 test
images, anomaly = any digit other than the normal class.

- class mean: the error to the mean training image of the normal class (pixel distance to the class mean);
- PCA-k: the reconstruction error through the top k principal components of the normal training images
  (a linear autoencoder with a k-number bottleneck, solved exactly), for several k, and the best of them;
- untrained AE: the benchmark's autoencoder at its seeded initialisation, never trained.

The best PCA k is picked on the test set itself, which flatters the baseline (the benchmark may not do that).

    python tiny/anomaly_ae/baselines.py [--data-dir data] [--all-classes]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchmetrics.functional.classification import binary_auroc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from model import AutoEncoder, AutoEncoderConfig  # noqa: E402
from train import anomaly_split, load_mnist  # noqa: E402

PCA_COMPONENTS = (1, 2, 4, 8, 16, 32, 64)


def auroc(errors: torch.Tensor, is_anomaly: torch.Tensor) -> float:
    return binary_auroc(errors.double(), is_anomaly).item()


def baseline_aurocs(train: torch.Tensor, test: torch.Tensor, is_anomaly: torch.Tensor, model_config: dict | None = None,
                    components=PCA_COMPONENTS, seed: int = 1) -> dict:
    """{baseline name: test AUROC}; train holds the normal class's training images only, (N, 784) in [0, 1]."""
    train, test = train.double(), test.double()
    mean = train.mean(dim=0)
    results = {"class_mean": auroc((test - mean).square().mean(dim=1), is_anomaly)}
    _, _, basis = torch.linalg.svd(train - mean, full_matrices=False)  # rows: principal directions
    for k in components:
        top = basis[:k]
        reconstruction = (test - mean) @ top.T @ top + mean
        results[f"pca_{k}"] = auroc((test - reconstruction).square().mean(dim=1), is_anomaly)
    best = max((name for name in results if name.startswith("pca_")), key=results.get)
    results["pca_best"] = results[best]
    results["pca_best_k"] = int(best.removeprefix("pca_"))
    if model_config is not None:
        torch.manual_seed(seed)
        model = AutoEncoder(AutoEncoderConfig(**model_config)).eval()
        with torch.no_grad():
            results["untrained_ae"] = auroc(model.anomaly_score(test.float()), is_anomaly)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--all-classes", action="store_true",
                        help="a table of the baselines for every choice of normal digit (why digit 9: README)")
    args = parser.parse_args()
    definition = benchmark.load(HERE)
    splits = load_mnist(definition, args.data_dir)
    normal = definition["hyperparameters"]["normal_class"]
    if args.all_classes:
        print("digit  class_mean  " + "  ".join(f"pca_{k:<3}" for k in PCA_COMPONENTS) + "  best_k")
        for digit in range(10):
            r = baseline_aurocs(*anomaly_split(*splits, digit))
            print(f"{digit:>5}  {r['class_mean']:.4f}      " + "  ".join(f"{r[f'pca_{k}']:.4f}" for k in PCA_COMPONENTS)
                  + f"  {r['pca_best_k']}")
    else:
        results = baseline_aurocs(*anomaly_split(*splits, normal), model_config=definition["model"])
        for name, value in results.items():
            print(f"{name:>14}: {value:.4f}" if name != "pca_best_k" else f"{name:>14}: {value}")
        print(f"(normal digit {normal}; AUROC over the 10,000 test images; target {definition['quality']['target']})")
