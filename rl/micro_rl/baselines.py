"""Baselines for the quality target, scored exactly like the benchmark (train.evaluate): mean undiscounted return
over the 100 CartPole-v1 evaluation episodes with the fixed evaluation seeds.

- uniform random: each step's action drawn uniformly (with the evaluation's sampler);
- always push left / always push right: one constant action (the pole falls in about 9 steps);
- untrained network, sampled: ActorCritic at initialisation for run seeds 1-5, scored as the benchmark scores
  (its policy head starts near 0, so this is close to uniform random);
- untrained network, greedy: the same networks' argmax action. Some of these fixed random controllers already
  balance the pole for all 500 steps, which is why the benchmark samples its evaluation actions.

    python rl/micro_rl/baselines.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from common.runtime import Distributed  # noqa: E402
from model import ActorCritic, ActorCriticConfig  # noqa: E402
from train import evaluate, evaluation_seeds, make_envs  # noqa: E402


class FixedPolicy:
    """Stands in for the model in train.evaluate, which samples from the softmax of the first output: equal
    logits for the uniform random policy, a logit 10,000 above the other for a constant action (probability 1)."""

    def __init__(self, action: int | None, actions: int = 2):
        self.action, self.actions = action, actions

    def __call__(self, obs: torch.Tensor):
        logits = torch.zeros(len(obs), self.actions)
        if self.action is not None:
            logits[:, self.action] = 1e4
        return logits, None


class Greedy:
    """A network's argmax action (what a greedy evaluation would play): one-hot logits as above."""

    def __init__(self, model):
        self.model = model

    def __call__(self, obs: torch.Tensor):
        logits = self.model(obs)[0]
        return 1e4 * torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float(), None


def baseline_returns(definition: dict, network_seeds=range(1, 6)) -> dict:
    seeds = evaluation_seeds(definition["hyperparameters"]["eval_episodes"])
    envs, single = make_envs(len(seeds)), Distributed()
    returns = {"uniform random": evaluate(FixedPolicy(None), envs, seeds, single),
               "always push left": evaluate(FixedPolicy(0), envs, seeds, single),
               "always push right": evaluate(FixedPolicy(1), envs, seeds, single)}
    for seed in network_seeds:
        torch.manual_seed(seed)  # as the harness seeds a run before train.py builds the model
        model = ActorCritic(ActorCriticConfig(**definition["model"]))
        returns[f"untrained network, sampled, seed {seed}"] = evaluate(model, envs, seeds, single)
        returns[f"untrained network, greedy, seed {seed}"] = evaluate(Greedy(model), envs, seeds, single)
    return returns


if __name__ == "__main__":
    for name, value in baseline_returns(benchmark.load(HERE)).items():
        print(f"{name:>38}: mean return {value:.2f}")
