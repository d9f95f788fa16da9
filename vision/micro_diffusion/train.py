"""Train a small DDPM (U-Net, epsilon prediction) on Fashion-MNIST until the Frechet distance between its samples
and the 10k test images, in the feature space of the benchmark's fixed evaluation network, reaches the target.

    python vision/micro_diffusion/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 vision/micro_diffusion/train.py --seed 1 ...   (DDP; same global batch)

Each evaluation (inside the timed region) samples `fid_samples` images with `fid_sampler_steps` DDIM steps from
the EMA weights, starting from noise drawn from a generator seeded with the run's seed (the same noise at every
evaluation), and scores them against the test images' feature statistics (computed once, before the clock
starts). It also logs the held-out denoising loss: the noise-prediction MSE on fixed test images, timesteps and
noise, the same for every run. All numbers come from benchmark.yaml.
"""
from __future__ import annotations

import copy
import gzip
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import torchvision

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.model_size import parameter_count, size_kb  # noqa: E402
from common.training import TrainingRun, exit_now  # noqa: E402
from evaluator import feature_moments, frechet_distance, gaussian, load_evaluator, to_uint8, weights_sha256  # noqa: E402
from model import Diffusion, DiffusionConfig, UNet, UNetConfig  # noqa: E402


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


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (N, 28, 28) -> floats in [-1, 1] (N, 1, 28, 28), the range the diffusion model works in."""
    return images.float().div(127.5).sub(1).unsqueeze(1)


def shard(n: int, ctx) -> slice:
    """This rank's contiguous share of n evaluation items (the shares of all ranks cover 0 .. n-1 once)."""
    return slice(n * ctx.rank // ctx.world_size, n * (ctx.rank + 1) // ctx.world_size)


def denoising_probe(test_images: torch.Tensor, count: int, timesteps: int, seed: int):
    """The held-out denoising loss's fixed inputs: the first `count` test images, each at one timestep of an
    evenly spaced grid over 0 .. T-1 and with noise from a generator of a fixed seed: the same for every run."""
    x0 = to_model_range(test_images[:count])
    t = torch.arange(len(x0)) * timesteps // len(x0)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    return x0, t, noise


@torch.no_grad()
def evaluate(model, diffusion, evaluator, reference, probe, hp: dict, batch: int, seed: int, ctx, device):
    """(Frechet distance of fid_samples generated images to the test images, held-out denoising loss).

    Every rank draws the same starting noise (seeded with the run's seed: the same at every evaluation), samples
    its share of the images and sums their features; the sums are all-reduced, so N processes score exactly the
    images one process would. The denoising loss's squared errors are summed the same way."""
    model.eval()
    n = hp["fid_samples"]
    noise = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))[shard(n, ctx)]
    images = torch.cat([diffusion.ddim_sample(model, noise[i:i + batch].to(device), hp["fid_sampler_steps"])
                        for i in range(0, len(noise), batch)])
    moments = ctx.all_reduce_sum(feature_moments(evaluator, to_uint8(images), batch))
    fid = frechet_distance(*gaussian(moments.cpu()), *reference)

    x0, t, eps = (v[shard(len(probe[0]), ctx)].to(device) for v in probe)
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    for i in range(0, len(x0), batch):
        pred = diffusion.predict_noise(model, diffusion.add_noise(x0[i:i + batch], t[i:i + batch], eps[i:i + batch]),
                                       t[i:i + batch])
        sums += torch.stack([(pred - eps[i:i + batch]).double().square().sum(), torch.tensor(pred.numel())])
    ctx.all_reduce_sum(sums)
    model.train()
    return fid, (sums[0] / sums[1]).item()


def learning_rate(step: int, hp: dict) -> float:
    """Linear warmup from 0 to the base rate, then linear decay to the end rate at the decay step."""
    base, end = hp["opt_base_learning_rate"], hp["opt_end_learning_rate"]
    warmup, decay = hp["opt_learning_rate_warmup_steps"], hp["opt_learning_rate_decay_steps"]
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= decay:
        return end
    return end + (base - end) * (decay - step) / (decay - warmup)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """Exponential moving average of the weights; the decay ramps up as min(decay, (1 + step) / (10 + step))
    so that the first steps' weights do not linger."""
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - d)


def evaluation_inputs(test_images: torch.Tensor, cfg: dict, hp: dict, device):
    """The evaluation network (refused unless its weights have the pinned sha256), the test images' feature
    Gaussian (computed once, before the clock starts) and the denoising loss's fixed inputs."""
    evaluator = load_evaluator(cfg["evaluator"]).to(device)
    reference = gaussian(feature_moments(evaluator, test_images.to(device)).cpu())
    probe = denoising_probe(test_images, hp["eval_denoising_images"], cfg["diffusion"]["timesteps"],
                            hp["eval_denoising_seed"])
    return evaluator, reference, probe


def make_optimizer(model: torch.nn.Module, hp: dict) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=hp["opt_base_learning_rate"],
                             betas=(hp["opt_adamw_beta_1"], hp["opt_adamw_beta_2"]),
                             eps=hp["opt_adamw_epsilon"], weight_decay=hp["opt_adamw_weight_decay"])


def log_denoising_loss(run, value: float) -> None:
    """The held-out denoising loss, logged beside each evaluation of the metric (a diagnostic, not the score)."""
    run.log.event("eval_denoising_loss", value,
                  metadata={"epoch_num": run.epoch_num(), "samples_count": run.samples, "step": run.steps_done})


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, quality, cfg, device = run.hyperparameters, run.quality, run.model_config, run.device

    train_images, _, test_images, _ = load_fashion_mnist(run.definition, run.data_dir)  # labels are not used
    if quality.get("eval_max_images"):  # smoke configuration only: a slice of the test set
        test_images = test_images[:quality["eval_max_images"]]
    evaluator, reference, probe = evaluation_inputs(test_images, cfg, hp, device)
    x_train = to_model_range(train_images)
    model = UNet(UNetConfig(**cfg["unet"])).to(device)
    diffusion = Diffusion(DiffusionConfig(**cfg["diffusion"]))
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = make_optimizer(model, hp)
    ddp_model = run.distributed(model)
    # One generator, the same on every rank: the permutation of the training set each epoch, then each step's
    # timesteps and noise for the whole global batch (each rank keeps its slice: N processes compute what 1 would).
    sampler = torch.Generator().manual_seed(run.seed)
    steps_per_epoch = len(x_train) // run.global_batch
    run.log_hyperparameters(train_samples=len(x_train), eval_samples=hp["fid_samples"],
                            model_parameters=parameter_count(model), model_size_kb=round(size_kb(model), 1),
                            fid_evaluator_sha256=weights_sha256(evaluator))

    for step in run.steps():
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(x_train), generator=sampler)
        batch = order[(step % steps_per_epoch) * run.global_batch:][:run.global_batch]
        t = torch.randint(diffusion.T, (run.global_batch,), generator=sampler)
        noise = torch.randn(run.global_batch, 1, 28, 28, generator=sampler)
        x0, t, noise = (run.rank_slice(v).to(device) for v in (x_train[batch], t, noise))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, hp)
        loss = diffusion.loss(ddp_model, x0, t, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        update_ema(ema, model, step, hp["ema_decay"])
        run.step_done(loss)
        if run.eval_due():
            fid, denoising_loss = evaluate(ema, diffusion, evaluator, reference, probe, hp, quality["eval_batch"],
                                           run.seed, run.dist, device)
            log_denoising_loss(run, denoising_loss)
            run.eval_result(fid)
    return run.finish(ema)


if __name__ == "__main__":
    exit_now(main())
