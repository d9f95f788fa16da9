"""Train MLPerf Tiny's DS-CNN on Speech Commands v0.02 until top-1 accuracy on its test set reaches the target.

    python tiny/ds_cnn_kws/train.py --seed 1 [--smoke] [--synthetic-data] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 tiny/ds_cnn_kws/train.py --seed 1 ...   (DDP; same global batch)

--synthetic-data (SYNTHETIC_DATA=1) trains and scores on the espeak-ng stand-in corpus instead (tests and offline
calibration; never a benchmark result). All numbers (model, hyperparameters, target, cadence) come from
benchmark.yaml.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.model_size import int8_size_kb, parameter_count, size_kb  # noqa: E402
from common.training import TrainingRun, exit_now  # noqa: E402
from model import DSCNN, DSCNNConfig  # noqa: E402
from speech_commands import load_splits  # noqa: E402


def as_tensors(split):
    """MFCCs (N, 49, 10) -> (N, 1, 49, 10) float32; labels int64."""
    features, labels = split
    return torch.from_numpy(features).unsqueeze(1), torch.from_numpy(labels)


@torch.no_grad()
def evaluate(model, clips, labels, ctx, device, batch: int) -> float:
    """Top-1 accuracy over every test clip; each rank scores a shard, the counts are all-reduced."""
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    for start in range(ctx.rank * batch, len(clips), ctx.world_size * batch):
        logits = model(clips[start:start + batch].to(device))
        totals[0] += (logits.argmax(dim=1) == labels[start:start + batch].to(device)).sum()
        totals[1] += len(logits)
    ctx.all_reduce_sum(totals)
    model.train()
    return (totals[0] / totals[1]).item()


def learning_rate(epoch: int, hp: dict) -> float:
    """MLPerf Tiny's step schedule: the base rate times the decay factor once every decay_epochs epochs
    (5e-4 for epochs 0-11, 1e-4 for 12-23, 2e-5 for 24-35)."""
    return hp["opt_base_learning_rate"] * hp["opt_learning_rate_decay_factor"] ** (
        epoch // hp["opt_learning_rate_decay_epochs"])


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, quality, device = run.hyperparameters, run.quality, run.device

    splits = load_splits(run.definition, run.data_dir, run.synthetic_data, names=("train", "test"))
    train_x, train_y = as_tensors(splits["train"])
    test_x, test_y = as_tensors(splits["test"])
    model = DSCNN(DSCNNConfig(**run.model_config)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["opt_base_learning_rate"],
                                 betas=(hp["opt_adam_beta_1"], hp["opt_adam_beta_2"]), eps=hp["opt_adam_epsilon"])
    ddp_model = run.distributed(model)
    # The same permutation of the training set on every rank each epoch (the last partial batch is dropped).
    sampler = torch.Generator().manual_seed(run.seed)
    steps_per_epoch = len(train_y) // run.global_batch
    run.log_hyperparameters(train_samples=len(train_y), eval_samples=len(test_y),
                            model_parameters=parameter_count(model), model_size_kb=round(size_kb(model), 1),
                            model_int8_size_kb=round(int8_size_kb(model), 1))

    for step in run.steps():
        epoch, index = divmod(step, steps_per_epoch)
        if epoch == hp["train_epochs"]:
            break  # the schedule's end: quality.max_steps on the real data; a smaller corpus gets here first
        if index == 0:
            order = torch.randperm(len(train_y), generator=sampler)
        batch = run.rank_slice(order[index * run.global_batch:][:run.global_batch])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(epoch, hp)
        loss = F.cross_entropy(ddp_model(train_x[batch].to(device)), train_y[batch].to(device))
        # Keras's kernel_regularizer=l2(w): + w * sum(kernel^2) in the loss (it is part of Keras's reported loss too)
        loss = loss + hp["opt_weight_decay"] * sum(kernel.square().sum() for kernel in model.l2_regularized())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.step_done(loss)
        if run.eval_due():
            run.eval_result(evaluate(model, test_x, test_y, run.dist, device, quality["eval_batch"]))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
