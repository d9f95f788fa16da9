"""rl/micro_rl: training and evaluation seeds never meet, evaluation leaves the model and the optimizer as they were
and never feeds training, seeded rollouts repeat exactly and do not depend on how the environments are shared among
processes, generalised advantage estimation by hand, and the baselines that the target stands far above."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common import benchmark
from common.runtime import Distributed
from conftest import workload_modules

DEFINITION = benchmark.load("micro_rl")
HP = DEFINITION["hyperparameters"]
_baselines, _model, _train = workload_modules("micro_rl", "baselines", "model", "train")


def _model_for(seed: int, hidden: int = 16):
    torch.manual_seed(seed)
    return _model.ActorCritic(_model.ActorCriticConfig(**{**DEFINITION["model"], "hidden": hidden}))


def test_training_and_evaluation_seeds_are_disjoint():
    evaluation = _train.evaluation_seeds(HP["eval_episodes"])
    assert len(set(evaluation)) == HP["eval_episodes"] == 100
    highest_training = max(_train.training_env_seeds(_train.MAX_RUN_SEED, 1000))
    assert highest_training < min(evaluation)
    for seed in (0, 1, 5, 32767):  # 32767: the largest $RANDOM run_and_time.sh draws without a seed
        assert not set(_train.training_env_seeds(seed, HP["ppo_num_envs"])) & set(evaluation)
    with pytest.raises(SystemExit, match="no training environment shares a seed"):
        _train.training_env_seeds(_train.MAX_RUN_SEED + 1, HP["ppo_num_envs"])
    assert _train.EVAL_ACTION_SEED >= min(evaluation) + HP["eval_episodes"]  # not a training seed either


def test_the_definition_is_consistent():
    assert HP["global_batch_size"] == HP["ppo_num_envs"] * HP["ppo_rollout_length"]
    assert DEFINITION["quality"]["target"] == 475.0 and DEFINITION["quality"]["direction"] == "maximize"
    import gymnasium

    assert gymnasium.spec(_train.ENV_ID).max_episode_steps == 500


def test_evaluation_changes_no_parameter_no_optimizer_state_and_repeats():
    model = _model_for(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    logits, value = model(torch.randn(8, 4))
    (logits.sum() + value.sum()).backward()
    optimizer.step()  # so that the optimizer has state to compare
    optimizer.zero_grad(set_to_none=True)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: {n: t.clone() for n, t in s.items()} for k, s in optimizer.state_dict()["state"].items()}
    seeds = _train.evaluation_seeds(20)
    envs = _train.make_envs(len(seeds))
    first = _train.evaluate(model, envs, seeds, Distributed())
    assert _train.evaluate(model, envs, seeds, Distributed()) == first  # a function of the weights alone
    assert all(torch.equal(params[k], v) for k, v in model.state_dict().items())
    after = optimizer.state_dict()["state"]
    assert all(torch.equal(state[k][n], after[k][n]) for k in state for n in state[k])
    assert all(p.grad is None for p in model.parameters())


class _Shard(Distributed):
    """Rank `rank` of `world_size` whose all-reduce records its contribution and returns it unchanged."""

    def __init__(self, rank, world_size, sums):
        super().__init__()
        self.rank, self.world_size, self.sums = rank, world_size, sums

    def all_reduce_sum(self, tensor):
        self.sums.append(tensor.clone())
        return tensor


def test_sharded_evaluation_equals_the_whole():
    model, seeds = _model_for(2), _train.evaluation_seeds(12)
    whole = _train.evaluate(model, _train.make_envs(len(seeds)), seeds, Distributed())
    sums = []
    for rank in range(3):
        _train.evaluate(model, _train.make_envs(len(seeds[rank::3])), seeds, _Shard(rank, 3, sums))
    total = torch.stack(sums).sum(0)
    assert total[1].item() == 12 and (total[0] / total[1]).item() == pytest.approx(whole, rel=1e-12)


def _rollout(run_seed: int, shards: int, total_envs: int = 4, length: int = 40):
    """The records of `length` steps of a seeded run, its environments split into `shards` processes'
    shares, reassembled in environment order."""
    model, parts = _model_for(run_seed), []
    for rank in range(shards):
        shard = slice(rank * total_envs // shards, (rank + 1) * total_envs // shards)
        envs = _train.make_envs(shard.stop - shard.start)
        obs = _train.as_tensor(envs.reset(seed=_train.training_env_seeds(run_seed, total_envs)[shard])[0])
        sampler = torch.Generator().manual_seed(run_seed)
        records, last_value, _ = _train.collect(model, envs, obs, length, sampler, shard, total_envs, 0.98)
        parts.append(_train.gather_rollout(records, last_value, shard, total_envs, Distributed()))
    records = sum(p[0] for p in parts)
    return records, sum(p[1] for p in parts)


def test_seeded_rollouts_repeat_and_do_not_depend_on_the_process_count():
    records, last_value = _rollout(3, shards=1)
    assert records.shape == (40, 4, _train.RECORD_FIELDS)
    again, _ = _rollout(3, shards=1)
    assert torch.equal(records, again)
    split, split_last = _rollout(3, shards=2)
    assert torch.allclose(split, records, atol=1e-6) and torch.allclose(split_last, last_value, atol=1e-6)
    assert torch.equal(split[..., _train.ACTION], records[..., _train.ACTION])  # the same actions
    other, _ = _rollout(4, shards=1)
    assert not torch.equal(other[..., _train.OBS], records[..., _train.OBS])  # another run seed: other environments
    assert records[..., _train.DONE].sum() > 0  # episodes ended (and were reset) inside the rollout


def test_generalised_advantage_estimation_by_hand():
    gamma, lam = 0.9, 0.5
    records = torch.zeros(3, 1, _train.RECORD_FIELDS)
    records[:, 0, _train.VALUE] = torch.tensor([1.0, 2.0, 3.0])
    records[:, 0, _train.REWARD] = torch.tensor([1.0, 1.0, 1.0])
    records[:, 0, _train.DONE] = torch.tensor([0.0, 1.0, 0.0])   # the episode ends at step 1
    last_value = torch.tensor([4.0])
    advantages, returns = _train.advantages_and_returns(records, last_value, gamma, lam)
    delta2 = 1 + gamma * 4 - 3
    delta1 = 1 - 2                                      # done: no bootstrap from step 2's observation
    delta0 = 1 + gamma * 2 - 1
    expected = torch.tensor([delta0 + gamma * lam * delta1, delta1, delta2])
    assert torch.allclose(advantages[:, 0], expected)
    assert torch.allclose(returns[:, 0], expected + records[:, 0, _train.VALUE])


def test_sampled_actions_follow_the_probabilities():
    logits = torch.log(torch.tensor([[0.25, 0.75]])).expand(40_000, 2)
    actions = _train.sample_actions(logits, torch.rand(40_000, generator=torch.Generator().manual_seed(0)))
    assert actions.float().mean().item() == pytest.approx(0.75, abs=0.01)


def test_baselines_are_far_below_the_target():
    returns = _baselines.baseline_returns(DEFINITION, network_seeds=(3, 4))  # the script prints seeds 1-5
    assert 20 < returns["uniform random"] < 25
    assert 8.5 < returns["always push left"] < 10.5 and 8.5 < returns["always push right"] < 10.5
    for seed in (3, 4):
        assert 20 < returns[f"untrained network, sampled, seed {seed}"] < 25
    # Why evaluation samples: a greedy untrained network can already be a perfect controller.
    assert returns["untrained network, greedy, seed 4"] == 500.0
    assert returns["untrained network, greedy, seed 3"] < 10
    assert DEFINITION["quality"]["target"] > 20 * returns["uniform random"]


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_evaluation_episodes_never_drive_training(data_dir, tmp_path, monkeypatch):
    """Moving the evaluation seeds leaves the logged training losses unchanged bit for bit; only the evaluations
    move."""
    runs = {}
    for name, base in (("real", _train.EVAL_SEED_BASE), ("moved", _train.EVAL_SEED_BASE + 500)):
        monkeypatch.setattr(_train, "EVAL_SEED_BASE", base)
        log = tmp_path / f"{name}.txt"
        assert _train.main(["--seed", "3", "--smoke", "--data-dir", str(data_dir), "--log-file", str(log),
                            "--device", "cpu"]) == 0
        runs[name] = _events(log)

    def logged(events, key):
        return [e["value"] for e in events if e["key"] == key]

    assert logged(runs["real"], "train_loss") and logged(runs["real"], "train_loss") == logged(runs["moved"], "train_loss")
    real, other = logged(runs["real"], "eval_accuracy"), logged(runs["moved"], "eval_accuracy")
    assert real and len(real) == len(other) and real != other


def test_smoke_log_counts_environment_steps(smoke_logs):
    _, _, events = smoke_logs("micro_rl")
    smoke = benchmark.load("micro_rl", smoke=True)
    by_key = {e["key"]: e for e in events}
    assert by_key["run_stop"]["metadata"]["status"] == "success"
    assert by_key["eval_samples"]["value"] == smoke["hyperparameters"]["eval_episodes"]
    steps = smoke["quality"]["max_steps"]
    assert by_key["eval_accuracy"]["metadata"]["samples_count"] == steps * smoke["hyperparameters"]["global_batch_size"]
