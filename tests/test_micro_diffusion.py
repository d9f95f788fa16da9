"""vision/micro_diffusion: the pinned evaluation network (reproduced from its seed; a different one is refused), the
Frechet distance, the noise schedule and the noise parameterisation, the U-Net's size, the sampler's determinism,
the published split, and a leak check: the test images enter the metric and nothing else."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "vision" / "micro_diffusion"
sys.path.insert(0, str(REPO))

from common import benchmark, training  # noqa: E402
from common.model_size import parameter_count, size_kb  # noqa: E402
from common.runtime import Distributed  # noqa: E402
from conftest import workload_modules  # noqa: E402

model_mod, evaluator_mod, train_mod = workload_modules("micro_diffusion", "model", "evaluator", "train")
DEFINITION = benchmark.load(WORKLOAD)
SMOKE = benchmark.load(WORKLOAD, smoke=True)
EVALUATOR = DEFINITION["model"]["evaluator"]


# --- the evaluation network -------------------------------------------------------------------------------------

def test_evaluator_weights_reproduce_the_pinned_sha256():
    evaluator = evaluator_mod.load_evaluator(EVALUATOR)
    assert evaluator_mod.weights_sha256(evaluator) == EVALUATOR["sha256"]
    assert DEFINITION["hyperparameters"]["fid_evaluator_sha256"] == EVALUATOR["sha256"]  # logged, checker-compared
    assert SMOKE["model"]["evaluator"] == EVALUATOR  # the smoke configuration scores with the same network
    # The first layer, drawn here straight from numpy: uniform float64 draws scaled in float64, one float32 rounding.
    rng = np.random.Generator(np.random.PCG64(EVALUATOR["seed"]))
    conv1 = ((2.0 * rng.random((EVALUATOR["widths"][0], 1, 3, 3)) - 1.0) * np.sqrt(6.0 / 9)).astype("<f4")
    assert np.array_equal(evaluator.conv1.weight.numpy(), conv1)
    assert all(not p.requires_grad for p in evaluator.parameters()) and not evaluator.training
    assert sum(p.numel() for p in evaluator.parameters()) == 256_512


@pytest.mark.parametrize("change", [{"seed": EVALUATOR["seed"] + 1}, {"features": 63}, {"widths": [32, 64, 48]},
                                    {"sha256": "0" * 64}])
def test_a_different_evaluator_is_refused(change):
    with pytest.raises(evaluator_mod.EvaluatorError, match="refusing to score"):
        evaluator_mod.load_evaluator({**EVALUATOR, **change})


def test_one_changed_weight_changes_the_sha256():
    evaluator = evaluator_mod.load_evaluator(EVALUATOR)
    with torch.no_grad():
        evaluator.proj.weight[0, 0] = torch.nextafter(evaluator.proj.weight[0, 0], torch.tensor(1.0))
    assert evaluator_mod.weights_sha256(evaluator) != EVALUATOR["sha256"]


# --- the Frechet distance ---------------------------------------------------------------------------------------

def _moments(features: torch.Tensor) -> torch.Tensor:
    """feature_moments of given features (an identity evaluator on flat inputs)."""
    return evaluator_mod.feature_moments(torch.nn.Identity(), features.double())


def test_frechet_distance_of_identical_sets_is_zero_and_a_shift_adds_its_square():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2000, 8, generator=g, dtype=torch.float64) @ torch.randn(8, 8, generator=g,
                                                                                      dtype=torch.float64)
    same = evaluator_mod.frechet_distance(*evaluator_mod.gaussian(_moments(features)),
                                          *evaluator_mod.gaussian(_moments(features)))
    assert abs(same) < 1e-8
    shift = torch.full((8,), 0.5, dtype=torch.float64)
    shifted = evaluator_mod.frechet_distance(*evaluator_mod.gaussian(_moments(features + shift)),
                                             *evaluator_mod.gaussian(_moments(features)))
    assert shifted == pytest.approx(8 * 0.25, rel=1e-9)  # a translation leaves the covariance unchanged


def test_frechet_distance_matches_the_closed_form_for_diagonal_covariances():
    m1, m2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    expected = ((m1 - m2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()  # 5 + (1 + 1 + 4)
    got = evaluator_mod.frechet_distance(m1, torch.diag(a), m2, torch.diag(b))
    assert got == pytest.approx(float(expected), rel=1e-12) and got == pytest.approx(11.0)
    assert evaluator_mod.frechet_distance(m2, torch.diag(b), m1, torch.diag(a)) == pytest.approx(got, rel=1e-12)


def test_sharded_feature_sums_equal_the_whole():
    """What a distributed evaluation all-reduces: the moments of the shards add up to the moments of the whole."""
    evaluator = evaluator_mod.load_evaluator(EVALUATOR)
    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    whole = evaluator_mod.feature_moments(evaluator, images)
    for world in (2, 3):
        parts = [evaluator_mod.feature_moments(evaluator, images[train_mod.shard(50, Distributed(r, world))], 7)
                 for r in range(world)]
        assert torch.allclose(sum(parts), whole, rtol=1e-5, atol=1e-6)  # float32 features: batch-size rounding
    covered = [i for r in range(3) for i in range(1000)[train_mod.shard(1000, Distributed(r, 3))]]
    assert covered == list(range(1000))


def test_frechet_distance_separates_real_images_from_noise(fashion_mnist):
    """On real data: a second sample of training images is far closer to the test images than noise is."""
    train_x, test_x = fashion_mnist
    evaluator = evaluator_mod.load_evaluator(EVALUATOR)
    reference = evaluator_mod.gaussian(evaluator_mod.feature_moments(evaluator, test_x[:2000]))
    real = evaluator_mod.frechet_distance(*evaluator_mod.gaussian(evaluator_mod.feature_moments(
        evaluator, train_x[:1000])), *reference)
    noise = torch.randint(0, 256, (1000, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    random = evaluator_mod.frechet_distance(*evaluator_mod.gaussian(evaluator_mod.feature_moments(
        evaluator, noise)), *reference)
    assert real < 0.5 < 5 < random


# --- the diffusion model ----------------------------------------------------------------------------------------

def test_noise_schedule_alpha_bar_is_decreasing_inside_0_1():
    diffusion = model_mod.Diffusion(model_mod.DiffusionConfig(**DEFINITION["model"]["diffusion"]))
    ab = diffusion.alpha_bar.double()
    assert len(ab) == diffusion.T == 1000
    assert bool((ab > 0).all() and (ab < 1).all() and (ab[1:] < ab[:-1]).all())
    assert ab[0].item() == pytest.approx(1 - 1e-4) and ab[-1].item() == pytest.approx(4.0358e-5, rel=1e-3)
    assert diffusion.sample_timesteps(10) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]


def test_the_network_outputs_v_and_the_loss_is_on_the_noise():
    """eps_hat = sqrt(ab) F + sqrt(1 - ab) x_t recovers eps exactly when F is the true v."""
    diffusion = model_mod.Diffusion(model_mod.DiffusionConfig(**DEFINITION["model"]["diffusion"]))
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1, torch.randn(4, 1, 28, 28, generator=g)
    t = torch.tensor([0, 10, 500, 999])
    ab = diffusion.alpha_bar[t][:, None, None, None]
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    x_t = diffusion.add_noise(x0, t, eps)
    assert torch.allclose(diffusion.predict_noise(lambda x, tt: v, x_t, t), eps, atol=1e-5)
    assert diffusion.loss(lambda x, tt: v, x0, t, eps).item() < 1e-9


def test_unet_shape_and_size():
    model = model_mod.UNet(model_mod.UNetConfig(**DEFINITION["model"]["unet"]))
    assert parameter_count(model) == model.num_params() == 150_017
    assert 580 < size_kb(model) < 680  # 150,017 float32 weights (586 KB) and the serialisation's overhead
    x = torch.randn(3, 1, 28, 28)
    assert model(x, torch.tensor([0, 500, 999])).shape == (3, 1, 28, 28)
    assert torch.equal(model(x, torch.tensor([0, 1, 2])), torch.zeros(3, 1, 28, 28))  # conv_out starts at zero


def test_sampler_is_deterministic_for_a_seed():
    cfg, hp = SMOKE["model"], SMOKE["hyperparameters"]
    torch.manual_seed(0)
    model = model_mod.UNet(model_mod.UNetConfig(**cfg["unet"]))
    with torch.no_grad():
        for p in model.parameters():  # a non-trivial network (conv_out would otherwise be zero)
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    diffusion = model_mod.Diffusion(model_mod.DiffusionConfig(**cfg["diffusion"]))
    evaluator = evaluator_mod.load_evaluator(cfg["evaluator"])
    test_x = torch.randint(0, 256, (100, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    reference = evaluator_mod.gaussian(evaluator_mod.feature_moments(evaluator, test_x))
    probe = train_mod.denoising_probe(test_x, hp["eval_denoising_images"], diffusion.T, hp["eval_denoising_seed"])

    def score(seed):
        return train_mod.evaluate(model, diffusion, evaluator, reference, probe, hp, 16, seed, Distributed(),
                                  torch.device("cpu"))

    first, again, other = score(5), score(5), score(6)
    assert first == again                    # same seed: the same images, bit for bit
    assert first[0] != other[0]              # another seed: other starting noise, other images
    assert first[1] == other[1]              # the denoising loss's inputs do not depend on the run's seed
    noise = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    assert torch.equal(diffusion.ddim_sample(model, noise, 5), diffusion.ddim_sample(model, noise, 5))


# --- data and leak ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fashion_mnist(data_dir):  # data_dir: conftest's session copy of every workload's dataset, from the mirror
    train_x, _, test_x, _ = train_mod.load_fashion_mnist(DEFINITION, data_dir)
    return train_x, test_x


def test_fashion_mnist_split_as_published(fashion_mnist):
    train_x, test_x = fashion_mnist
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert train_x.dtype == test_x.dtype == torch.uint8
    assert train_x.float().mean().item() == pytest.approx(72.94, abs=0.01)  # 0.2860 x 255, as resnet18 states
    x = train_mod.to_model_range(train_x[:10])
    assert x.shape == (10, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_test_images_enter_only_the_metric(data_dir, tmp_path, monkeypatch):
    """Replacing every test image (by its negative) leaves training unchanged, step for step; only the metric and
    the held-out denoising loss move. The run is kept going past its smoke target so that two steps compare."""
    real_loader = train_mod.load_fashion_mnist

    def negated_test(definition, directory):
        train_x, train_y, test_x, test_y = real_loader(definition, directory)
        return train_x, train_y, 255 - test_x, test_y

    monkeypatch.setattr(training.benchmark, "target_reached", lambda value, quality: False)
    runs = {}
    for name, loader in (("real", real_loader), ("negated", negated_test)):
        monkeypatch.setattr(train_mod, "load_fashion_mnist", loader)
        log = tmp_path / f"{name}.txt"
        train_mod.main(["--seed", "3", "--smoke", "--data-dir", str(data_dir), "--log-file", str(log),
                        "--device", "cpu"])
        runs[name] = _events(log)

    def values(events, key):
        return [e["value"] for e in events if e["key"] == key]

    assert len(values(runs["real"], "train_loss")) == 2
    assert values(runs["real"], "train_loss") == values(runs["negated"], "train_loss")
    for key in ("eval_accuracy", "eval_denoising_loss"):
        assert len(values(runs["real"], key)) == 2
        assert all(a != b for a, b in zip(values(runs["real"], key), values(runs["negated"], key)))
