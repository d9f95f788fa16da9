"""A small actor-critic for CartPole: two separate multilayer perceptrons read the 4 observations (cart position,
cart velocity, pole angle, pole angular velocity).

    observation (batch, 4)
      actor:  linear -> tanh -> linear -> tanh -> linear -> (batch, 2) action logits (push left, push right)
      critic: linear -> tanh -> linear -> tanh -> linear -> (batch,)   state value

Separate networks (no shared trunk) and orthogonal initialisation with gain sqrt(2) for hidden layers, 0.01 for the
policy head (the first policy is close to uniform, so early rollouts explore) and 1 for the value head: the
"37 implementation details of PPO" defaults (Huang et al., ICLR blog track 2022) that CleanRL and Stable-Baselines3
use for classic-control tasks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class ActorCriticConfig:
    observations: int = 4   # CartPole-v1's observation vector
    actions: int = 2        # CartPole-v1's discrete actions
    hidden: int = 64
    layers: int = 2         # hidden layers of each network


def _layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(cfg: ActorCriticConfig, outputs: int, head_gain: float) -> nn.Sequential:
    sizes = [cfg.observations] + [cfg.hidden] * cfg.layers
    body = [m for a, b in zip(sizes, sizes[1:]) for m in (_layer(a, b, math.sqrt(2)), nn.Tanh())]
    return nn.Sequential(*body, _layer(sizes[-1], outputs, head_gain))


class ActorCritic(nn.Module):
    def __init__(self, cfg: ActorCriticConfig):
        super().__init__()
        self.actor = _mlp(cfg, cfg.actions, head_gain=0.01)
        self.critic = _mlp(cfg, 1, head_gain=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action logits (batch, actions), state values (batch,)); one forward for both, as DDP wants every
        parameter used by the module it wraps."""
        return self.actor(obs), self.critic(obs).squeeze(-1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
