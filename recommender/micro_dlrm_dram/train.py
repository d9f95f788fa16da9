"""Train micro_dlrm's task with its embeddings in one large hashed table, updated sparsely, until the AUC on u1.test
for "rating >= 4" reaches micro_dlrm's target.

    python recommender/micro_dlrm_dram/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 recommender/micro_dlrm_dram/train.py --seed 1 ...   (DDP; same global batch)

The data, features, label and metric are micro_dlrm's (common/movielens.py). What differs: every categorical id and
genre is hashed into one table of model.table_rows rows (model.py), whose gradient is sparse and which
torch.optim.SparseAdam updates row by row, while Adam trains the MLPs. Besides the MLPerf log's usual events the
run logs its table: bytes of the table and of its optimizer state, hash collisions among the ids present, and
embedding lookups per second over the timed region.
All numbers (model, table size, hyperparameters, target, cadence) come from benchmark.yaml.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.movielens import evaluate, learning_rate, load_movielens  # noqa: E402
from common.training import TrainingRun, exit_now  # noqa: E402
from model import HashedDLRM, HashedDLRMConfig, hash_collisions, table_inputs  # noqa: E402


def hashed_movielens(definition: dict, data_dir: Path, table_rows: int):
    """micro_dlrm's encoded splits with the categorical ids and genres replaced by the table rows they read, the
    number of rows each example looks up (padding excluded), and the hash collisions among the keys present."""
    train, test, _ = load_movielens(definition, data_dir)
    ids_present, n_genres = torch.cat([train["categorical"], test["categorical"]]), train["genres"].size(1)
    for split in (train, test):
        split["categorical"], split["genres"] = table_inputs(split["categorical"], split["genres"], table_rows)
        split["lookups"] = split["categorical"].size(1) + (split["genres"] > 0).sum(1)  # genre padding is no lookup
    rows_present = torch.cat([train["categorical"], test["categorical"]])
    keys, colliding = hash_collisions(ids_present, rows_present, n_genres, table_rows)
    return train, test, {"table_rows": table_rows, "keys_present": keys, "keys_sharing_a_row": colliding}


def table_report(model: HashedDLRM, optimizer: torch.optim.Optimizer, lookups: int, seconds: float) -> dict:
    """Memory of the table and of its SparseAdam moments (allocated at the first step), and lookups per second."""
    table = model.table.weight
    state = sum(t.numel() * t.element_size() for t in optimizer.state[table].values() if torch.is_tensor(t))
    return {"table_bytes": table.numel() * table.element_size(), "optimizer_state_bytes": state,
            "lookups": lookups, "lookups_per_s": round(lookups / max(seconds, 1e-9))}


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, cfg, device = run.hyperparameters, run.model_config, run.device

    train, test, collisions = hashed_movielens(run.definition, run.data_dir, cfg["table_rows"])
    run.log.event("embedding_hash", collisions)
    n_train = len(train["label"])
    steps_per_epoch = n_train // run.global_batch  # a last partial batch (none at 500) would be dropped
    model = HashedDLRM(HashedDLRMConfig(n_categorical=train["categorical"].size(1), n_dense=train["dense"].size(1),
                                        **cfg)).to(device)
    adam = dict(betas=(hp["opt_adam_beta_1"], hp["opt_adam_beta_2"]), eps=hp["opt_adam_epsilon"])
    optimizers = [torch.optim.Adam(model.dense_parameters(), lr=hp["opt_base_learning_rate"], **adam),
                  torch.optim.SparseAdam([model.table.weight], lr=hp["opt_base_learning_rate"], **adam)]
    ddp_model = run.distributed(model)
    sampler = torch.Generator().manual_seed(run.seed)  # the same permutation on every rank, as micro_dlrm
    run.log_hyperparameters(train_samples=n_train, eval_samples=len(test["label"]), model_parameters=model.num_params())

    lookups = 0
    for step in run.steps():
        started = time.perf_counter() if step == 0 else started
        if step % steps_per_epoch == 0:
            order = torch.randperm(n_train, generator=sampler)
        batch = order[(step % steps_per_epoch) * run.global_batch:][:run.global_batch]
        rows, lookups = run.rank_slice(batch), lookups + int(train["lookups"][batch].sum())
        for group in (g for optimizer in optimizers for g in optimizer.param_groups):
            group["lr"] = learning_rate(step, hp)
        logits, squared_norm = ddp_model(train["dense"][rows].to(device), train["categorical"][rows].to(device),
                                         train["genres"][rows].to(device))
        loss = F.binary_cross_entropy_with_logits(logits, train["label"][rows].to(device))
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        (loss + hp["embedding_l2_penalty"] * squared_norm).backward()
        for optimizer in optimizers:
            optimizer.step()
        run.step_done(loss)
        if run.eval_due():
            run.eval_result(evaluate(model, test, run.dist, device))
    run.log.event("embedding_table", table_report(model, optimizers[1], lookups, time.perf_counter() - started))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
