"""Train a PPO actor-critic on CartPole-v1 until its policy's mean return over 100 fixed evaluation episodes reaches
the target.

    python rl/micro_rl/train.py --seed 1 [--smoke] [--log-file out.txt]
    torchrun --nproc_per_node 2 rl/micro_rl/train.py --seed 1 ...   (DDP: each process steps its share of the
                                                                      environments; same global batch)

The environment is simulated by gymnasium (no dataset). PPO with the clipped surrogate objective and generalised
advantage estimation (Schulman et al. 2017, 2016): every update collects `ppo_rollout_length` steps from each of
`ppo_num_envs` environments (the global batch, counted as samples), then takes `ppo_epochs` full-batch gradient
steps on the clipped loss. Seeds: the policy's weights and its action sampling come from the run seed, and so do
the training environments (environment i of run seed s is reset with seed s * 1000 + i); the evaluation episodes
use fixed seeds from EVAL_SEED_BASE up, which no training environment ever uses, sample the policy's actions
with a fixed generator (EVAL_ACTION_SEED), and never reach the optimizer or the rollout buffer. Why sampled and
not greedy: the greedy action of an untrained network is a fixed random controller, and some of those already
balance the pole for 500 steps (baselines.py), while the sampled untrained policy is a coin flip. All numbers come
from benchmark.yaml.
"""
from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.training import TrainingRun, exit_now  # noqa: E402
from model import ActorCritic, ActorCriticConfig  # noqa: E402

ENV_ID = "CartPole-v1"
EVAL_SEED_BASE = 1_000_000_000  # evaluation episode k is reset with seed EVAL_SEED_BASE + k
EVAL_ACTION_SEED = 2_000_000_000  # the evaluation's action sampler; training's is seeded with the run seed
MAX_RUN_SEED = EVAL_SEED_BASE // 1000 - 1  # keeps every training seed (run seed * 1000 + i) below EVAL_SEED_BASE
# The per-step record a rollout stores (see collect): the 4 observations, then these fields.
OBS, ACTION, LOG_PROB, VALUE, REWARD, DONE = slice(0, 4), 4, 5, 6, 7, 8
RECORD_FIELDS = 9


def training_env_seeds(run_seed: int, num_envs: int) -> list[int]:
    if not 0 <= run_seed <= MAX_RUN_SEED or num_envs > 1000:
        raise SystemExit(f"error: {ENV_ID} needs a run seed between 0 and {MAX_RUN_SEED} and at most 1000 "
                         f"environments, so that no training environment shares a seed with an evaluation episode")
    return [run_seed * 1000 + i for i in range(num_envs)]


def evaluation_seeds(episodes: int) -> list[int]:
    return [EVAL_SEED_BASE + k for k in range(episodes)]


def make_envs(count: int) -> gym.vector.SyncVectorEnv:
    """`count` CartPole-v1 environments stepped together; an episode that ends is reset in the same step (its
    last observation is in info["final_obs"]), so every step's observation is one the policy acts on."""
    return gym.vector.SyncVectorEnv([lambda: gym.make(ENV_ID) for _ in range(count)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def sample_actions(logits: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Inverse-transform sampling: the first action whose cumulative probability exceeds the uniform draw."""
    probs = logits.softmax(-1)
    return (probs.cumsum(-1) < uniform[:, None]).sum(-1).clamp(max=probs.shape[-1] - 1)


def as_tensor(obs: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(obs, dtype=torch.float32)


@torch.no_grad()
def collect(model, envs, obs, length: int, sampler: torch.Generator, shard: slice, total_envs: int, gamma: float):
    """Play `length` steps of the sampled policy in this process's environments. Returns the records
    (length, local envs, RECORD_FIELDS), the value of the observation after the last step, and that observation.
    Actions are drawn by inverse transform from uniforms drawn for every environment of every process (this one
    keeps its slice), so the actions do not depend on how the environments are shared among processes. An
    episode cut by the time limit (truncated, not failed) gets the discounted value of its last observation added
    to its last reward, as if it had continued (Pardo et al., ICML 2018)."""
    records = []
    for _ in range(length):
        logits, value = model(obs)
        action = sample_actions(logits, torch.rand(total_envs, generator=sampler)[shard])
        log_prob = logits.log_softmax(-1).gather(-1, action[:, None]).squeeze(-1)
        next_obs, reward, terminated, truncated, info = envs.step(action.numpy())
        reward = torch.as_tensor(reward, dtype=torch.float32)
        for i in np.flatnonzero(truncated & ~terminated):
            reward[i] += gamma * model(as_tensor(info["final_obs"][i])[None])[1][0]
        done = torch.as_tensor(terminated | truncated, dtype=torch.float32)
        records.append(torch.cat([obs, torch.stack([action.float(), log_prob, value, reward, done], -1)], -1))
        obs = as_tensor(next_obs)
    return torch.stack(records), model(obs)[1], obs


def gather_rollout(records, last_value, shard: slice, total_envs: int, ctx):
    """Every process's records, in environment order, on every process: each writes its columns into zeros
    and the sum over processes fills them all (adding zeros is exact)."""
    full = torch.zeros(records.shape[0] + 1, total_envs, RECORD_FIELDS)
    full[:-1, shard] = records
    full[-1, shard, 0] = last_value
    ctx.all_reduce_sum(full)
    return full[:-1], full[-1, :, 0]


def advantages_and_returns(records, last_value, gamma: float, lam: float):
    """Generalised advantage estimation over (time, envs); a done step does not bootstrap from the next
    observation (the first of a new episode)."""
    value, reward, done = records[..., VALUE], records[..., REWARD], records[..., DONE]
    advantages = torch.zeros_like(reward)
    running = torch.zeros_like(last_value)
    for t in reversed(range(len(reward))):
        next_value = last_value if t == len(reward) - 1 else value[t + 1]
        delta = reward[t] + gamma * next_value * (1 - done[t]) - value[t]
        running = delta + gamma * lam * (1 - done[t]) * running
        advantages[t] = running
    return advantages, advantages + value


def ppo_loss(model, batch, advantages, returns, hp: dict):
    """Clipped surrogate policy loss + value_coef * value MSE - entropy_coef * entropy, means over the batch."""
    logits, value = model(batch[:, OBS])
    log_probs = logits.log_softmax(-1)
    new_log_prob = log_probs.gather(-1, batch[:, ACTION].long()[:, None]).squeeze(-1)
    ratio = (new_log_prob - batch[:, LOG_PROB]).exp()
    clip = hp["ppo_clip_ratio"]
    policy_loss = -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages).mean()
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
    return policy_loss + hp["ppo_value_coef"] * F.mse_loss(value, returns) - hp["ppo_entropy_coef"] * entropy


@torch.no_grad()
def evaluate(model, envs, seeds: list[int], ctx) -> float:
    """Mean undiscounted return of the policy over one episode per seed, actions sampled from its probabilities
    with a generator reset to EVAL_ACTION_SEED at every evaluation (so the score is a function of the weights
    alone). Each process plays its share of the seeds (envs holds exactly that many environments) and the sums
    are all-reduced; the uniforms are drawn for every episode, as in collect, so the shares do not change them."""
    mine = slice(ctx.rank, None, ctx.world_size)
    obs, _ = envs.reset(seed=seeds[mine])
    sampler = torch.Generator().manual_seed(EVAL_ACTION_SEED)
    returns, playing = np.zeros(envs.num_envs), np.ones(envs.num_envs, dtype=bool)
    while playing.any():
        action = sample_actions(model(as_tensor(obs))[0], torch.rand(len(seeds), generator=sampler)[mine])
        obs, reward, terminated, truncated, _ = envs.step(action.numpy())
        returns += reward * playing  # an environment that finished is reset and keeps stepping: not counted
        playing &= ~(terminated | truncated)
    totals = ctx.all_reduce_sum(torch.tensor([returns.sum(), envs.num_envs], dtype=torch.float64))
    return (totals[0] / totals[1]).item()


def learning_rate(update: int, hp: dict) -> float:
    """Linear decay from the base rate to the end rate over the decay updates (PPO's usual annealing)."""
    base, end, decay = hp["opt_base_learning_rate"], hp["opt_end_learning_rate"], hp["opt_learning_rate_decay_steps"]
    return end + (base - end) * max(0.0, 1 - update / decay)


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, ctx = run.hyperparameters, run.dist
    total_envs, length = hp["ppo_num_envs"], hp["ppo_rollout_length"]
    if total_envs * length != run.global_batch or total_envs % ctx.world_size:
        raise SystemExit(f"error: global_batch_size must be ppo_num_envs x ppo_rollout_length and ppo_num_envs a "
                         f"multiple of the {ctx.world_size} processes")
    shard = slice(ctx.rank * total_envs // ctx.world_size, (ctx.rank + 1) * total_envs // ctx.world_size)
    envs, eval_seeds = make_envs(shard.stop - shard.start), evaluation_seeds(hp["eval_episodes"])
    eval_envs = make_envs(len(eval_seeds[ctx.rank::ctx.world_size]))
    obs = as_tensor(envs.reset(seed=training_env_seeds(run.seed, total_envs)[shard])[0])
    model = ActorCritic(ActorCriticConfig(**run.model_config))
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["opt_base_learning_rate"],
                                 betas=(hp["opt_adam_beta_1"], hp["opt_adam_beta_2"]), eps=hp["opt_adam_epsilon"])
    ddp_model, sampler = run.distributed(model), torch.Generator().manual_seed(run.seed)
    run.log_hyperparameters(train_samples=run.global_batch, eval_samples=len(eval_seeds),
                            model_parameters=model.num_params())

    for update in run.steps():
        records, last_value, obs = collect(model, envs, obs, length, sampler, shard, total_envs, hp["ppo_gamma"])
        records, last_value = gather_rollout(records, last_value, shard, total_envs, ctx)
        advantages, returns = advantages_and_returns(records, last_value, hp["ppo_gamma"], hp["ppo_gae_lambda"])
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)  # over the whole rollout
        mine = run.rank_slice(torch.arange(run.global_batch))  # this process's share of the flattened rollout
        batch, advantages, returns = records.flatten(0, 1)[mine], advantages.flatten()[mine], returns.flatten()[mine]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(update, hp)
        losses = []
        for _ in range(hp["ppo_epochs"]):
            loss = ppo_loss(ddp_model, batch, advantages, returns, hp)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp["opt_gradient_clip_norm"])
            optimizer.step()
            losses.append(loss.item())
        run.step_done(sum(losses) / len(losses))
        if run.eval_due():
            run.eval_result(evaluate(model, eval_envs, eval_seeds, ctx))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
