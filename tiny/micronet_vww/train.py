"""Train MobileNetV1 x0.25 on Visual Wake Words (96x96 person / no person) until top-1 accuracy on the held-out
validation split reaches the target.

    python tiny/micronet_vww/train.py --seed 1 [--smoke] [--synthetic-data] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 tiny/micronet_vww/train.py --seed 1 ...   (DDP; same global batch)

All numbers (model, hyperparameters, target, cadence, split) come from benchmark.yaml. The images are read from
the extracted archive ($DATA_DIR/vww/vw_coco2014_96/, see download_dataset.sh) or, with --synthetic-data
(SYNTHETIC_DATA=1), from the synthetic pipeline fixture in the same layout ($DATA_DIR/vww_synthetic_fixture/).
"""
from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common import model_size  # noqa: E402
from common.training import TrainingRun, exit_now  # noqa: E402
from model import MobileNetConfig, MobileNetV1  # noqa: E402

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
CLASSES = ["non_person", "person"]  # Keras' flow_from_directory: sorted folder names, so person is class 1


def image_root(definition: dict, data_dir: Path, synthetic: bool) -> Path:
    """The folder holding non_person/ and person/: the archive's top folder, extracted beside the archive, or the
    same folder inside the synthetic fixture."""
    archive = Path(definition["dataset"]["files"][0]["path"])  # vww/vw_coco2014_96.tar.gz
    base = Path(data_dir) / (definition["dataset"]["synthetic"]["directory"] if synthetic else archive.parent)
    return base / archive.name.removesuffix(".tar.gz")


def split_files(root: Path, validation_split: float) -> dict:
    """MLPerf Tiny's split (Keras ImageDataGenerator(validation_split) + flow_from_directory): in each class
    folder the image file names are sorted, the first int(validation_split * n) validate and the rest train.
    Returns {"train": (paths, labels), "val": (paths, labels)}."""
    if not root.is_dir():
        raise SystemExit(f"error: {root} does not exist: run download_dataset.sh first (with SYNTHETIC_DATA=1 "
                         f"for the synthetic fixture)")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    if found != CLASSES:
        raise SystemExit(f"error: {root} holds the folders {found}, expected {CLASSES}")
    splits = {"train": ([], []), "val": ([], [])}
    for label, name in enumerate(CLASSES):
        files = sorted(f for f in os.listdir(root / name) if f.lower().endswith(IMAGE_EXTENSIONS))
        n_val = int(validation_split * len(files))
        for split, chosen in (("val", files[:n_val]), ("train", files[n_val:])):
            splits[split][0].extend(root / name / f for f in chosen)
            splits[split][1].extend([label] * len(chosen))
    return splits


def decode_images(paths: list[Path], size: int) -> torch.Tensor:
    """JPEG/PNG files -> uint8 tensor (N, 3, size, size), RGB. The archive's images are 96x96 already; any other
    size is resized with nearest-neighbour sampling, as Keras' load_img(target_size=...) does by default."""
    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.NEAREST)
            out[i] = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    return out


def load_splits(definition: dict, data_dir: Path, synthetic: bool) -> dict:
    """{"train": (images uint8 (N, 3, H, W), labels int64 (N,)), "val": (...)}, decoded once, before run_start."""
    root = image_root(definition, data_dir, synthetic)
    size = definition["model"]["image_size"]
    return {split: (decode_images(paths, size), torch.tensor(labels, dtype=torch.long))
            for split, (paths, labels) in split_files(root, definition["dataset"]["validation_split"]).items()}


def channel_stats(train_images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (float64) of the training images scaled to [0, 1], training split
    only."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(train_images), chunk):
        x = train_images[start:start + chunk].double().div_(255)
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    count = train_images.numel() // 3
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return mean, std


def augment(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Keras ImageDataGenerator's random affine transform, per image: rotation, shift, zoom, horizontal flip;
    bilinear sampling, edge pixels repeated outside the image (fill_mode='nearest'). images: float (B, 3, H, W);
    params: (B, 6) = angle (radians), shift x, shift y (fractions of the size), zoom x, zoom y, flip (0/1)."""
    angle, tx, ty, zx, zy, flip = params.unbind(dim=1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    sign = 1 - 2 * flip  # the flip mirrors the output's x axis
    theta = torch.stack([torch.stack([cos * zx * sign, -sin * zy, 2 * tx], dim=1),
                         torch.stack([sin * zx * sign, cos * zy, 2 * ty], dim=1)], dim=1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def draw_augmentation(count: int, hp: dict, generator: torch.Generator) -> torch.Tensor:
    """The random parameters of `count` augmentations (see augment), uniform as in Keras."""
    u = torch.rand(count, 5, generator=generator) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(hp["aug_rotation_degrees"])
    shift = u[:, 1:3] * hp["aug_shift_fraction"]
    zoom = 1 + u[:, 3:5] * hp["aug_zoom_range"]
    flip = (torch.rand(count, generator=generator) < 0.5).float() * float(hp["aug_horizontal_flip"])
    return torch.cat([angle[:, None], shift, zoom, flip[:, None]], dim=1)


def make_inputs(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, device, dtype, params=None):
    """uint8 images -> [0, 1] -> (augmented, when params are given) -> standardised, channels-last floats."""
    x = images.to(device).to(dtype).div_(255)
    if params is not None:
        x = augment(x, params.to(device, dtype))
    x = (x - mean.to(device, dtype)[None, :, None, None]) / std.to(device, dtype)[None, :, None, None]
    return x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def evaluate(model, images, labels, mean, std, ctx, device, batch: int) -> float:
    """Top-1 accuracy over every validation image; each rank scores a shard, the counts are all-reduced."""
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    for start in range(ctx.rank * batch, len(images), ctx.world_size * batch):
        logits = model(make_inputs(images[start:start + batch], mean, std, device, model.classifier.weight.dtype))
        totals[0] += (logits.argmax(dim=1) == labels[start:start + batch].to(device)).sum()
        totals[1] += len(logits)
    ctx.all_reduce_sum(totals)
    model.train()
    return (totals[0] / totals[1]).item()


def make_optimizer(model: MobileNetV1, hp: dict) -> torch.optim.Adam:
    """Adam. Keras' l2(lambda) on a kernel adds lambda * sum(w^2) to the loss, whose gradient 2 * lambda * w is
    exactly what Adam's (coupled) weight_decay adds: so weight_decay = 2 * lambda on the convolution kernels."""
    decay = model.conv_weights()
    rest = [p for p in model.parameters() if id(p) not in {id(q) for q in decay}]
    groups = [{"params": decay, "weight_decay": 2 * hp["opt_l2_regularization"]},
              {"params": rest, "weight_decay": 0.0}]
    return torch.optim.Adam(groups, lr=hp["opt_base_learning_rate"], betas=(hp["opt_adam_beta_1"],
                            hp["opt_adam_beta_2"]), eps=hp["opt_adam_epsilon"])


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, quality, device = run.hyperparameters, run.quality, run.device

    data = load_splits(run.definition, run.data_dir, run.synthetic_data)
    (train_x, train_y), (val_x, val_y) = data["train"], data["val"]
    mean, std = channel_stats(train_x)
    model = MobileNetV1(MobileNetConfig(**run.model_config))
    fp32 = copy.deepcopy(model).float()  # sizes of the float32 model, whatever precision this run trains in
    sizes = {"model_parameters": model_size.parameter_count(fp32), "model_size_kb": round(model_size.size_kb(fp32), 1),
             "model_int8_size_kb": round(model_size.int8_size_kb(fp32), 1)}
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(model, hp)
    ddp_model = run.distributed(model)
    # Every rank draws the same permutation and the same augmentations for the whole global batch, then takes
    # its slice, so N processes see exactly what one process sees. The last partial batch of an epoch is dropped.
    sampler = torch.Generator().manual_seed(run.seed)
    steps_per_epoch = len(train_x) // run.global_batch
    run.log_hyperparameters(train_samples=len(train_x), eval_samples=len(val_x), **sizes)

    for step in run.steps():
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(train_x), generator=sampler)
        batch = order[(step % steps_per_epoch) * run.global_batch:][:run.global_batch]
        params = run.rank_slice(draw_augmentation(run.global_batch, hp, sampler))
        batch = run.rank_slice(batch)
        logits = ddp_model(make_inputs(train_x[batch], mean, std, device, model.classifier.weight.dtype, params))
        loss = F.cross_entropy(logits, train_y[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.step_done(loss)
        if run.eval_due():
            run.eval_result(evaluate(model, val_x, val_y, mean, std, run.dist, device, quality["eval_batch"]))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
