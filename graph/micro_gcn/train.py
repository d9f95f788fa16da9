"""Train a two-layer GCN on Cora (Planetoid public split) with validation early stopping, then score the test set.

    python graph/micro_gcn/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 graph/micro_gcn/train.py --seed 1 ...   (DDP; same full batch)

Protocol (leak-free): every step is one full-batch epoch over the 140 training nodes. After each epoch the
500 validation nodes are scored; training stops when the validation loss has not improved for
`early_stopping_patience` epochs (or after max_steps), the weights of the best-validation-loss epoch are restored,
and only then are the 1000 test nodes scored, exactly once. That single test accuracy is the logged quality;
no decision of the run ever looks at a test label.

DDP: the graph is tiny, so every rank holds all of it and runs the same full forward pass (same seed, hence the
same dropout masks); the loss is a sum over the training nodes sharded by rank, so the all-reduced gradient equals
the one-process gradient. Validation/test counts are sharded the same way and all-reduced.
All numbers come from benchmark.yaml.
"""
from __future__ import annotations

import copy
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.training import TrainingRun, exit_now  # noqa: E402
from model import GCN, GCNConfig, normalized_adjacency  # noqa: E402


class _PickledCSR:
    """Stands in for scipy.sparse.csr_matrix while unpickling: the pickle only restores its attributes."""


class _PlanetoidUnpickler(pickle.Unpickler):
    """Reads the Planetoid pickles (Python 2, scipy CSR matrices, numpy arrays, a dict of adjacency lists)
    without scipy, and refuses every other class a pickle could name (a pickle can otherwise run any code)."""
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "defaultdict"), ("__builtin__", "list")}

    def find_class(self, module, name):
        if (module, name) == ("scipy.sparse.csr", "csr_matrix"):
            return _PickledCSR
        if (module, name) == ("numpy.core.multiarray", "_reconstruct"):
            return np.ndarray.__reduce__(np.empty(0))[0]  # numpy's own array reconstructor
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in a Planetoid file")


def _read(path: Path):
    with open(path, "rb") as f:
        obj = _PlanetoidUnpickler(f, encoding="latin1").load()
    if isinstance(obj, _PickledCSR):  # CSR (data, indices, indptr) -> dense float32 array
        csr = obj.__dict__
        dense = np.zeros(csr["_shape"], dtype=np.float32)
        rows = np.repeat(np.arange(csr["_shape"][0]), np.diff(csr["indptr"]))
        dense[rows, csr["indices"]] = csr["data"]
        return dense
    return obj


def load_planetoid(directory: Path) -> dict:
    """Cora as Kipf's gcn/utils.py load_data builds it: rows of allx then tx, with the test rows moved to the
    node ids listed in ind.cora.test.index; train = nodes 0..139, val = 140..639, test = the 1000 listed ids.
    Features are row-normalised (each paper's bag of words sums to 1); edges are made undirected, deduplicated,
    without self-loops (the model adds them)."""
    x, y, tx, ty, allx, ally, graph = (_read(directory / f"ind.cora.{n}") for n in
                                       ("x", "y", "tx", "ty", "allx", "ally", "graph"))
    test_index = np.loadtxt(directory / "ind.cora.test.index", dtype=np.int64)
    test_sorted = np.sort(test_index)
    features = np.vstack([allx, tx])
    labels = np.vstack([ally, ty]).argmax(1)
    features[test_index], labels[test_index] = features[test_sorted].copy(), labels[test_sorted].copy()
    features /= np.maximum(features.sum(1, keepdims=True), 1e-12)
    pairs = [(s, d) for s, neighbours in graph.items() for d in neighbours if s != d]
    edges = np.unique(np.array(pairs + [(d, s) for s, d in pairs]).T, axis=1)
    return {
        "features": torch.from_numpy(features).to_sparse(),  # 1.3% dense bag of words
        "labels": torch.from_numpy(labels),
        "edges": torch.from_numpy(edges),
        "train": torch.arange(len(y)),
        "val": torch.arange(len(y), len(y) + 500),
        "test": torch.from_numpy(test_sorted),
    }


@torch.no_grad()
def evaluate(model, x, adj, labels, nodes, ctx) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over `nodes`; each rank scores a shard, sums are all-reduced."""
    model.eval()
    shard = nodes[ctx.rank::ctx.world_size]
    logits = model(x, adj)[shard]
    totals = torch.tensor([F.cross_entropy(logits, labels[shard], reduction="sum").item(),
                           (logits.argmax(1) == labels[shard]).sum().item(), len(shard)], dtype=torch.float64)
    loss_sum, correct, count = ctx.all_reduce_sum(totals).tolist()
    model.train()
    return loss_sum / count, correct / count


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, device, world_size = run.hyperparameters, run.device, run.dist.world_size

    data = load_planetoid(run.data_dir / Path(run.definition["dataset"]["files"][0]["path"]).parent)
    x, labels = data["features"].to(device), data["labels"].to(device)
    adj = normalized_adjacency(data["edges"], len(labels)).to(device)
    n_train = len(data["train"])
    if run.global_batch != n_train:
        raise SystemExit(f"global_batch_size must be the {n_train} training nodes (full-batch training)")
    local_train = data["train"][run.dist.rank::world_size].to(device)
    model = GCN(GCNConfig(in_features=x.size(1), n_classes=int(labels.max()) + 1, hidden=run.model_config["hidden"],
                          dropout=hp["dropout"])).to(device)
    optimizer = model.configure_optimizer(hp)
    ddp_model = run.distributed(model)
    run.log_hyperparameters(train_samples=n_train, eval_samples=len(data["test"]), model_parameters=model.num_params())

    best_val_loss, best_step, best_state = float("inf"), 0, None
    for step in run.steps():
        logits = ddp_model(x, adj)
        # This rank's share of the mean over all training nodes, x world_size because DDP averages gradients
        # (so the logged loss, averaged over ranks by the harness, is the full-batch loss).
        loss = F.cross_entropy(logits[local_train], labels[local_train], reduction="sum") / n_train * world_size
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.step_done(loss)
        val_loss, val_accuracy = evaluate(model, x, adj, labels, data["val"].to(device), run.dist)
        run.log.event("val_loss", val_loss, metadata={"epoch_num": step + 1, "val_accuracy": val_accuracy})
        if val_loss < best_val_loss:
            best_val_loss, best_step, best_state = val_loss, step, copy.deepcopy(model.state_dict())
        elif step - best_step >= hp["early_stopping_patience"]:
            break
    model.load_state_dict(best_state)
    run.log.event("early_stopping", {"stopped_epoch": step + 1, "restored_epoch": best_step + 1,
                                     "best_val_loss": best_val_loss})

    run.begin_eval()  # the only evaluation of the test nodes (quality.max_evaluations: 1)
    _, test_accuracy = evaluate(model, x, adj, labels, data["test"].to(device), run.dist)
    run.eval_result(test_accuracy)
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
