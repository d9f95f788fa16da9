"""Train MobileNetV2 on Fashion-MNIST until top-1 accuracy on the 10k test set reaches the target.

    python vision/mobilenetv2/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 vision/mobilenetv2/train.py --seed 1 ...   (DDP; same global batch)

All numbers (model, hyperparameters, target, cadence) come from benchmark.yaml.
"""
from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.model_size import parameter_count, size_kb  # noqa: E402
from common.training import TrainingRun, exit_now  # noqa: E402
from model import MobileNetV2Config, mobilenet_v2  # noqa: E402


def load_fashion_mnist(definition: dict, data_dir: Path):
    """The verified idx files, read by torchvision.datasets.FashionMNIST: uint8 images (N, 28, 28), labels (N,).

    torchvision expects the decompressed files under <root>/FashionMNIST/raw/; we decompress our verified .gz
    files into such a layout in a private scratch directory, so torchvision never downloads (download=False).
    """
    with tempfile.TemporaryDirectory(prefix="fashion-mnist-") as root:
        raw = Path(root) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for entry in definition["dataset"]["files"]:
            with gzip.open(data_dir / entry["path"], "rb") as src, open(raw / Path(entry["path"]).stem, "wb") as dst:
                shutil.copyfileobj(src, dst)
        train = torchvision.datasets.FashionMNIST(root, train=True, download=False)
        test = torchvision.datasets.FashionMNIST(root, train=False, download=False)
        return train.data, train.targets, test.data, test.targets


def make_normalize(train_images: torch.Tensor, dtype=torch.float32):
    """Scale to [0, 1], then standardise with the mean and std of the training images (train split only).
    Images come out as (N, 1, 28, 28) in channels-last memory order (faster depthwise convolutions on CPU)."""
    pixels = train_images.float().div_(255)
    mean, std = pixels.mean().item(), pixels.std().item()

    def normalize(images: torch.Tensor, device) -> torch.Tensor:
        x = images.to(device, dtype).div_(255).sub_(mean).div_(std).unsqueeze(1)
        return x.contiguous(memory_format=torch.channels_last)

    return normalize


@torch.no_grad()
def evaluate(model, images, labels, normalize, ctx, device, batch: int) -> float:
    """Top-1 accuracy over every test image; each rank scores a shard, the counts are all-reduced."""
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    for start in range(ctx.rank * batch, len(images), ctx.world_size * batch):
        logits = model(normalize(images[start:start + batch], device))
        totals[0] += (logits.argmax(dim=1) == labels[start:start + batch].to(device)).sum()
        totals[1] += len(logits)
    ctx.all_reduce_sum(totals)
    model.train()
    return (totals[0] / totals[1]).item()


def learning_rate(step: int, hp: dict) -> float:
    """Linear warmup from 0 to the base rate, then linear decay to the end rate at the decay step."""
    base, end = hp["opt_base_learning_rate"], hp["opt_end_learning_rate"]
    warmup, decay = hp["opt_learning_rate_warmup_steps"], hp["opt_learning_rate_decay_steps"]
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= decay:
        return end
    return end + (base - end) * (decay - step) / (decay - warmup)


def make_optimizer(model, hp: dict) -> torch.optim.AdamW:
    """AdamW; weight decay on conv and linear weights only (not on BatchNorm parameters or the linear bias)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": hp["opt_adamw_weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=hp["opt_base_learning_rate"], betas=(hp["opt_adamw_beta_1"],
                             hp["opt_adamw_beta_2"]), eps=hp["opt_adamw_epsilon"], fused=True)


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, quality, device = run.hyperparameters, run.quality, run.device

    train_x, train_y, test_x, test_y = load_fashion_mnist(run.definition, run.data_dir)
    if quality.get("eval_max_images"):  # smoke configuration only: a slice of the test set
        test_x, test_y = test_x[:quality["eval_max_images"]], test_y[:quality["eval_max_images"]]
    model = mobilenet_v2(MobileNetV2Config(**run.model_config)).to(device, memory_format=torch.channels_last)
    normalize = make_normalize(train_x, dtype=next(model.parameters()).dtype)
    optimizer = make_optimizer(model, hp)
    ddp_model = run.distributed(model)
    # The same permutation of the training set on every rank each epoch (the last partial batch is dropped).
    sampler = torch.Generator().manual_seed(run.seed)
    steps_per_epoch = len(train_x) // run.global_batch
    run.log_hyperparameters(train_samples=len(train_x), eval_samples=len(test_x), model_parameters=parameter_count(model),
                            model_size_kb=size_kb(model))

    for step in run.steps():
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(train_x), generator=sampler)
        batch = run.rank_slice(order[(step % steps_per_epoch) * run.global_batch:][:run.global_batch])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, hp)
        loss = F.cross_entropy(ddp_model(normalize(train_x[batch], device)), train_y[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.step_done(loss)
        if run.eval_due():
            run.eval_result(evaluate(model, test_x, test_y, normalize, run.dist, device, quality["eval_batch"]))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
