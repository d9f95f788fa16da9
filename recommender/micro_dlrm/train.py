"""Train a small DLRM on MovieLens-100K (u1.base) until its AUC on u1.test for "rating >= 4" reaches the target.

    python recommender/micro_dlrm/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 recommender/micro_dlrm/train.py --seed 1 ...   (DDP; same global batch)

Features never use a rating value: the label is the only thing read from the rating column, and every
statistic (id vocabularies, rating counts, standardisation) comes from the training split alone.
All numbers (model, hyperparameters, target, cadence) come from benchmark.yaml.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.movielens import (  # noqa: E402,F401  (tests/test_micro_dlrm.py reads the data through train.py)
    cardinalities, encode, evaluate, fit_features, learning_rate, load_movielens, read_ratings,
    read_side_information, roc_auc)
from common.training import TrainingRun, exit_now  # noqa: E402
from model import DLRM, DLRMConfig  # noqa: E402


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, cfg, device = run.hyperparameters, run.model_config, run.device

    train, test, sizes = load_movielens(run.definition, run.data_dir)
    n_train = len(train["label"])
    steps_per_epoch = n_train // run.global_batch  # a last partial batch (none at 500) would be dropped
    model = DLRM(DLRMConfig(cardinalities=sizes, n_dense=train["dense"].size(1), n_genres=train["genres"].size(1),
                            embedding_dim=cfg["embedding_dim"], bottom_mlp=cfg["bottom_mlp"],
                            top_mlp=cfg["top_mlp"])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["opt_base_learning_rate"],
                                 betas=(hp["opt_adam_beta_1"], hp["opt_adam_beta_2"]), eps=hp["opt_adam_epsilon"])
    ddp_model = run.distributed(model)
    # The same permutation of the training rows on every rank each epoch; each rank takes its slice of a batch.
    sampler = torch.Generator().manual_seed(run.seed)
    run.log_hyperparameters(train_samples=n_train, eval_samples=len(test["label"]), model_parameters=model.num_params())

    for step in run.steps():
        if step % steps_per_epoch == 0:
            order = torch.randperm(n_train, generator=sampler)
        rows = run.rank_slice(order[(step % steps_per_epoch) * run.global_batch:][:run.global_batch])
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, hp)
        logits, squared_norm = ddp_model(train["dense"][rows].to(device), train["categorical"][rows].to(device),
                                         train["genres"][rows].to(device))
        loss = F.binary_cross_entropy_with_logits(logits, train["label"][rows].to(device))
        optimizer.zero_grad(set_to_none=True)
        (loss + hp["embedding_l2_penalty"] * squared_norm).backward()
        optimizer.step()
        run.step_done(loss)
        if run.eval_due():
            run.eval_result(evaluate(model, test, run.dist, device))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
