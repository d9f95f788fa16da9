"""nano_moe specifics: no look-ahead through attention or routing, top-2 routing, the load-balancing loss, sparse
dispatch equal to the dense reference, equal active parameters with nanogpt, nanogpt's split and baselines, and the
expert-load figures in the log."""
from __future__ import annotations

import math

import pytest
import torch

from common import benchmark
from conftest import workload_modules

DEFINITION = benchmark.load("nano_moe")
_model, _train, _baselines = workload_modules("nano_moe", "model", "train", "baselines")
_dense_model, _dense_train = workload_modules("nanogpt", "model", "train")
MoEGPT, MoEConfig = _model.MoEGPT, _model.MoEConfig


def small_model(seed=0, **overrides):
    torch.manual_seed(seed)
    config = {"vocab_size": 65, "block_size": 32, "n_layer": 2, "n_head": 2, "n_embd": 32, "n_expert": 4,
              "expert_hidden": 64, **overrides}
    model = MoEGPT(MoEConfig(**config))
    for layer in model.moe_layers():  # a sharper router than the N(0, 0.02) init, so the routing really varies
        torch.nn.init.normal_(layer.router.weight, std=1.0)
    return model


@pytest.mark.parametrize("train_mode", [False, True])
def test_changing_token_t_plus_1_never_changes_logits_up_to_t(train_mode):
    """The peer's MoE reached loss 0.04 because attention had no causal mask: here every position t is checked."""
    model = small_model().train(train_mode)
    x = torch.randint(65, (3, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base, _ = model(x)
        chosen = torch.stack([layer.load for layer in model.moe_layers()])
        assert (chosen > 0).sum() >= 6, "routing should use several experts in each layer"
        for t in range(31):
            changed = x.clone()
            changed[:, t + 1] = (changed[:, t + 1] + 1 + torch.arange(3)) % 65
            logits, _ = model(changed)
            assert torch.allclose(logits[:, :t + 1], base[:, :t + 1], atol=1e-6), f"position <= {t} saw token {t + 1}"
            assert not torch.allclose(logits[:, t + 1], base[:, t + 1])


def test_top2_routing_picks_two_distinct_experts_whose_weights_sum_to_one():
    logits = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    weights, experts, probs = _model.route(logits, 2)
    assert experts.shape == weights.shape == (500, 2)
    assert (experts[:, 0] != experts[:, 1]).all()
    assert torch.allclose(weights.sum(-1), torch.ones(500))
    assert torch.equal(experts, logits.topk(2, dim=-1).indices)
    # the renormalised weights keep the softmax's ratio between the two chosen experts
    ratio = probs.gather(1, experts[:, :1]) / probs.gather(1, experts[:, 1:])
    assert torch.allclose(weights[:, :1] / weights[:, 1:], ratio, rtol=1e-5)


def test_load_balancing_loss_formula_hand_case_and_minimum():
    # 2 tokens, 4 experts, top-2: expert 0 gets 2 of the 4 assignments, experts 1 and 2 one each, expert 3 none.
    probs = torch.tensor([[0.5, 0.3, 0.1, 0.1], [0.4, 0.1, 0.4, 0.1]])
    experts = torch.tensor([[0, 1], [0, 2]])
    # f = (0.5, 0.25, 0.25, 0); P = (0.45, 0.2, 0.25, 0.1); E * sum f P = 4 * (0.225 + 0.05 + 0.0625)
    assert _model.load_balancing_loss(probs, experts, 4).item() == pytest.approx(4 * 0.3375)
    uniform = torch.full((8, 4), 0.25)
    balanced = torch.tensor([[0, 1], [2, 3]] * 4)
    assert _model.load_balancing_loss(uniform, balanced, 4).item() == pytest.approx(1.0)
    collapsed = torch.tensor([[1.0, 0, 0, 0]] * 8)
    assert _model.load_balancing_loss(collapsed, torch.tensor([[0, 1]] * 8), 4).item() == pytest.approx(2.0)
    # with a uniform load (f = 1/E) the loss is 1 whatever the probabilities, since they sum to 1 for each token
    skewed = torch.softmax(torch.randn(8, 4, generator=torch.Generator().manual_seed(3)) * 3, dim=-1)
    assert _model.load_balancing_loss(skewed, balanced, 4).item() == pytest.approx(1.0)


def test_sparse_dispatch_equals_every_expert_on_every_token_masked():
    model = small_model(n_layer=1)
    moe = model.moe_layers()[0]
    x = torch.randn(4, 16, 32, generator=torch.Generator().manual_seed(2))
    sparse = moe(x)
    tokens = x.reshape(-1, 32)
    weights, experts, _ = _model.route(moe.router(tokens), 2)
    gate = torch.zeros(len(tokens), 4).scatter(1, experts, weights)  # 0 for the experts a token does not use
    every = torch.stack([torch.nn.functional.gelu(tokens @ moe.c_fc[e]) @ moe.c_proj[e] for e in range(4)], dim=1)
    dense = (gate[:, :, None] * every).sum(1).view_as(x)
    assert torch.allclose(sparse, dense, atol=1e-6)
    assert moe.load.sum().item() == pytest.approx(1.0)
    # gradients flow to the router through the weights, and to every expert that received tokens
    sparse.square().sum().backward()
    assert moe.router.weight.grad.abs().sum() > 0
    assert all(moe.c_fc.grad[e].abs().sum() > 0 for e in range(4) if moe.load[e] > 0)


def test_active_parameters_equal_nanogpts_plus_the_routers():
    cfg = DEFINITION["model"]
    dense_cfg = benchmark.load("nanogpt")["model"]
    assert {k: cfg[k] for k in dense_cfg} == dense_cfg  # same attention, width, depth and context as nanogpt
    assert cfg["top_k"] * cfg["expert_hidden"] == 4 * cfg["n_embd"]  # two experts = nanogpt's MLP width
    model = MoEGPT(MoEConfig(vocab_size=65, **cfg))
    dense = _dense_model.GPT(_dense_model.GPTConfig(vocab_size=65, **dense_cfg)).num_params()
    routers = cfg["n_layer"] * cfg["n_embd"] * cfg["n_expert"]
    assert model.num_active_params() == dense + routers == 814_336  # the figures the README reports
    assert model.num_params() == 1_338_624


def test_same_split_evaluation_and_target_as_nanogpt(data_dir):
    nanogpt = benchmark.load("nanogpt")
    assert DEFINITION["dataset"] == {**nanogpt["dataset"]}
    assert DEFINITION["quality"] == nanogpt["quality"]
    train, val, vocab = _train.load_splits(DEFINITION, data_dir)
    dense_train, dense_val, _ = _dense_train.load_splits(nanogpt, data_dir)
    assert vocab == 65 and torch.equal(train, dense_train) and torch.equal(val, dense_val)
    losses = _baselines.ngram_losses(train, val, vocab)  # the figures of the README's baseline table
    assert losses["unigram"] == pytest.approx(3.347, abs=1e-3) and losses["bigram"] == pytest.approx(2.482, abs=1e-3)
    assert DEFINITION["quality"]["target"] < losses["bigram"] - 0.5


def test_learning_rate_schedule_is_nanogpts():
    hp = DEFINITION["hyperparameters"]
    for step in (0, 10, 49, 50, 300, 999, 1000, 1200):
        assert _train.learning_rate(step, hp) == _dense_train.learning_rate(step, hp)


def test_smoke_log_reports_expert_load_and_active_parameters(smoke_logs):
    _, _, events = smoke_logs("nano_moe")
    by_key = {e["key"]: e for e in events}
    assert by_key["model_active_parameters"]["value"] <= by_key["model_parameters"]["value"]
    loads = [e for e in events if e["key"] == "moe_load"]
    evals = [e for e in events if e["key"] == DEFINITION["quality"]["log_key"]]
    assert len(loads) == len(evals) > 0
    for event in loads:
        value = event["value"]
        smoke_model = benchmark.load("nano_moe", smoke=True)["model"]
        assert len(value["fraction_per_layer"]) == smoke_model["n_layer"]
        assert all(sum(row) == pytest.approx(1.0, abs=1e-3) for row in value["fraction_per_layer"])
        assert 0 < value["aux_loss"] <= smoke_model["n_expert"] and math.isfinite(value["aux_loss"])
        assert value["min_fraction"] <= 1 / smoke_model["n_expert"] <= value["max_fraction"]
