"""Train the sparse mixture-of-experts character GPT on TinyShakespeare until the validation loss reaches the target.

    python language/nano_moe/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 language/nano_moe/train.py --seed 1 ...   (DDP; same global batch)

Data, split, evaluation and schedule are language/nanogpt's (copied, so the workload stands alone); the loss adds the
routers' load-balancing term. All numbers come from benchmark.yaml.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.training import TrainingRun, exit_now  # noqa: E402
from model import MoEConfig, MoEGPT  # noqa: E402


def load_splits(definition: dict, data_dir: Path):
    """Encode the text with its character vocabulary; the first train_fraction trains, the rest validates."""
    text = (data_dir / definition["dataset"]["files"][0]["path"]).read_text(encoding="utf-8")
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    data = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    n_train = int(definition["dataset"]["train_fraction"] * len(data))
    return data[:n_train], data[n_train:], len(vocab)


def val_windows(val: torch.Tensor, block_size: int, max_chars: int | None):
    """Non-overlapping windows covering the validation split: every character after the first is predicted
    exactly once, with at most block_size characters of context (nanogpt's evaluation)."""
    if max_chars:
        val = val[:max_chars + 1]
    n = (len(val) - 1) // block_size
    x = val[: n * block_size].view(n, block_size)
    y = val[1: n * block_size + 1].view(n, block_size)
    return x, y


@torch.no_grad()
def evaluate(model, x, y, ctx, device, batch=256) -> float:
    """Mean cross-entropy (nats/char) over all windows; each rank scores a shard, sums are all-reduced."""
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    for start in range(ctx.rank * batch, len(x), ctx.world_size * batch):
        xb, yb = x[start:start + batch].to(device), y[start:start + batch].to(device)
        logits, _ = model(xb)
        totals[0] += torch.nn.functional.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="sum").double()
        totals[1] += yb.numel()
    ctx.all_reduce_sum(totals)
    model.train()
    return (totals[0] / totals[1]).item()


def learning_rate(step: int, hp: dict) -> float:
    """Linear warmup, then cosine decay to the end learning rate (nanoGPT's schedule)."""
    base, end = hp["opt_base_learning_rate"], hp["opt_end_learning_rate"]
    warmup, decay = hp["opt_learning_rate_warmup_steps"], hp["opt_learning_rate_decay_steps"]
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= decay:
        return end
    progress = (step - warmup) / (decay - warmup)
    return end + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base - end)


class ExpertLoad:
    """Per-layer expert load (fraction of the token assignments each expert received) and the load-balancing loss,
    averaged over the training steps of one evaluation period, logged as the `moe_load` event at each evaluation."""

    def __init__(self, model: MoEGPT):
        self.model, self.steps, self.aux_sum = model, 0, 0.0
        self.load_sum = torch.zeros(len(model.moe_layers()), model.config.n_expert)

    def add(self, aux_loss: torch.Tensor) -> None:
        self.steps += 1
        self.aux_sum += aux_loss.item()
        self.load_sum += torch.stack([layer.load.cpu() for layer in self.model.moe_layers()])

    def log(self, run: TrainingRun) -> None:
        load = self.load_sum / max(1, self.steps)
        cv = (load.std(dim=1, unbiased=False) / load.mean(dim=1)).tolist()  # coefficient of variation per layer
        run.log.event("moe_load", {"aux_loss": self.aux_sum / max(1, self.steps),
                                   "fraction_per_layer": [[round(f, 4) for f in row] for row in load.tolist()],
                                   "max_fraction": round(load.max().item(), 4), "min_fraction": round(load.min().item(), 4),
                                   "cv_per_layer": [round(c, 4) for c in cv]},
                      metadata={"samples_count": run.samples, "step": run.steps_done})
        self.steps, self.aux_sum = 0, 0.0
        self.load_sum.zero_()


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, quality, cfg = run.hyperparameters, run.quality, run.model_config

    train, val, vocab_size = load_splits(run.definition, run.data_dir)
    val_x, val_y = val_windows(val, cfg["block_size"], quality.get("eval_max_chars"))
    model = MoEGPT(MoEConfig(vocab_size=vocab_size, **cfg)).to(run.device)
    optimizer = model.configure_optimizer(hp)
    ddp_model = run.distributed(model)
    sampler = torch.Generator().manual_seed(run.seed)
    expert_load = ExpertLoad(model)
    run.log_hyperparameters(train_samples=len(train) - cfg["block_size"], eval_samples=len(val_x),
                            model_parameters=model.num_params(), model_active_parameters=model.num_active_params())

    for step in run.steps():
        offsets = run.rank_slice(torch.randint(len(train) - cfg["block_size"], (run.global_batch,), generator=sampler))
        xb = torch.stack([train[o:o + cfg["block_size"]] for o in offsets.tolist()]).to(run.device)
        yb = torch.stack([train[o + 1:o + 1 + cfg["block_size"]] for o in offsets.tolist()]).to(run.device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, hp)
        _, loss = ddp_model(xb, yb)
        aux_loss = model.aux_loss()
        optimizer.zero_grad(set_to_none=True)
        (loss + hp["moe_aux_loss_coefficient"] * aux_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp["opt_gradient_clip_norm"])
        optimizer.step()
        run.step_done(loss)  # the cross-entropy alone, comparable with nanogpt's train_loss
        expert_load.add(aux_loss)
        if run.eval_due():
            expert_load.log(run)
            run.eval_result(evaluate(model, val_x, val_y, run.dist, run.device))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
