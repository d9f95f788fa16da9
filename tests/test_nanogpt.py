"""nanogpt specifics: no look-ahead (causal attention), a fixed disjoint split, the trivial baselines."""
from __future__ import annotations

import pytest
import torch

from common import benchmark
from conftest import workload_modules

_baselines, _model, _train = workload_modules("nanogpt", "baselines", "model", "train")
ngram_losses = _baselines.ngram_losses
GPT, GPTConfig = _model.GPT, _model.GPTConfig
learning_rate, load_splits, val_windows = _train.learning_rate, _train.load_splits, _train.val_windows


def test_future_characters_cannot_change_past_predictions():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    x = torch.randint(65, (2, 32))
    y = x.clone()
    y[:, 20:] = torch.randint(65, (2, 12))
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(y)
    assert torch.allclose(a[:, :20], b[:, :20], atol=1e-6)
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_reference_model_size():
    d = benchmark.load("nanogpt")
    model = GPT(GPTConfig(vocab_size=65, **d["model"]))
    assert model.num_params() == 812_288  # the figure the README reports


def test_split_is_fixed_disjoint_and_covers_the_whole_val_split(data_dir):
    d = benchmark.load("nanogpt")
    train, val, vocab = load_splits(d, data_dir)
    assert vocab == 65 and len(train) + len(val) == 1_115_394
    assert len(train) == int(0.9 * 1_115_394)
    x, y = val_windows(val, d["model"]["block_size"], None)
    assert y.numel() >= len(val) - 1 - d["model"]["block_size"] and y.numel() >= 100_000
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_trivial_baselines_are_far_from_the_target(data_dir):
    d = benchmark.load("nanogpt")
    train, val, vocab = load_splits(d, data_dir)
    losses = ngram_losses(train, val, vocab)
    assert losses["unigram"] == pytest.approx(3.347, abs=1e-3)
    assert losses["bigram"] == pytest.approx(2.482, abs=1e-3)
    assert d["quality"]["target"] < losses["bigram"] - 0.5


def test_learning_rate_schedule():
    hp = benchmark.load("nanogpt")["hyperparameters"]
    assert learning_rate(0, hp) < learning_rate(hp["opt_learning_rate_warmup_steps"] - 1, hp)
    assert learning_rate(hp["opt_learning_rate_warmup_steps"], hp) == pytest.approx(hp["opt_base_learning_rate"])
    assert learning_rate(hp["opt_learning_rate_decay_steps"], hp) == pytest.approx(hp["opt_end_learning_rate"])
