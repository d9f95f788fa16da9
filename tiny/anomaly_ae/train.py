"""Train a fully connected autoencoder on one MNIST digit (the normal class) until the AUROC of its reconstruction
error over the 10,000 test images (anomaly = any other digit) reaches the target.

    python tiny/anomaly_ae/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 tiny/anomaly_ae/train.py --seed 1 ...   (DDP; same global batch)

Protocol (the anomaly-detection convention, as MLPerf Tiny's AD trains on normal machine sounds only): the model
sees only the training images of the normal class; the test labels are used for nothing but marking which test
images are anomalies, inside the AUROC. All numbers come from benchmark.yaml.
"""
from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import torchvision
from torchmetrics.functional.classification import binary_auroc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.model_size import int8_size_kb, parameter_count, size_kb  # noqa: E402
from common.training import TrainingRun, exit_now  # noqa: E402
from model import AutoEncoder, AutoEncoderConfig  # noqa: E402


def load_mnist(definition: dict, data_dir: Path):
    """The verified idx files, read by torchvision.datasets.MNIST: uint8 images (N, 28, 28), labels (N,).

    torchvision expects the decompressed files under <root>/MNIST/raw/; we decompress our verified .gz files into
    such a layout in a private scratch directory, so torchvision never downloads (download=False).
    """
    with tempfile.TemporaryDirectory(prefix="mnist-") as root:
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for entry in definition["dataset"]["files"]:
            with gzip.open(data_dir / entry["path"], "rb") as src, open(raw / Path(entry["path"]).stem, "wb") as dst:
                shutil.copyfileobj(src, dst)
        train = torchvision.datasets.MNIST(root, train=True, download=False)
        test = torchvision.datasets.MNIST(root, train=False, download=False)
        return train.data, train.targets, test.data, test.targets


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 784) in [0, 1]. No statistics are fitted: nothing to leak."""
    return images.flatten(1).float().div_(255)


def anomaly_split(train_x, train_y, test_x, test_y, normal_class: int):
    """(training images: the normal class only, test images: all of them, test anomaly flags: digit != normal)."""
    return pixels(train_x[train_y == normal_class]), pixels(test_x), (test_y != normal_class).long()


@torch.no_grad()
def evaluate(model, images, is_anomaly, ctx, device, batch: int) -> float:
    """AUROC of the per-image reconstruction error against the anomaly flags, over every test image. Each rank
    scores a shard and writes it into a zero vector; the all-reduced sum is the whole vector on every rank."""
    model.eval()
    scores = torch.zeros(len(images), dtype=torch.float64, device=device)
    for start in range(ctx.rank * batch, len(images), ctx.world_size * batch):
        scores[start:start + batch] = model.anomaly_score(images[start:start + batch].to(device)).double()
    ctx.all_reduce_sum(scores)
    model.train()
    return binary_auroc(scores.cpu(), is_anomaly).item()


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, quality, device = run.hyperparameters, run.quality, run.device

    train, test, is_anomaly = anomaly_split(*load_mnist(run.definition, run.data_dir), hp["normal_class"])
    model = AutoEncoder(AutoEncoderConfig(**run.model_config)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["opt_base_learning_rate"],
                                 betas=(hp["opt_adam_beta_1"], hp["opt_adam_beta_2"]), eps=hp["opt_adam_epsilon"])
    ddp_model = run.distributed(model)
    # The same permutation of the normal training images on every rank each epoch (the last partial batch is dropped).
    sampler = torch.Generator().manual_seed(run.seed)
    steps_per_epoch = len(train) // run.global_batch
    run.log_hyperparameters(train_samples=len(train), eval_samples=len(test), model_parameters=parameter_count(model),
                            model_size_kb=round(size_kb(model), 1), model_int8_size_kb=round(int8_size_kb(model), 1))

    for step in run.steps():
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(train), generator=sampler)
        batch = train[run.rank_slice(order[(step % steps_per_epoch) * run.global_batch:][:run.global_batch])].to(device)
        loss = (ddp_model(batch) - batch).square().mean()  # mean squared reconstruction error
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.step_done(loss)
        if run.eval_due():
            run.eval_result(evaluate(model, test, is_anomaly, run.dist, device, quality["eval_batch"]))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
