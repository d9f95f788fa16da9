"""recommender/micro_dlrm_dram: the hash (fixed values, range, per-feature salt, unseen ids on the zero row), the
collision count, sparse gradients and a sparse optimizer that touch only the rows a batch looked up, the table size
read from the definition, micro_dlrm's data and target, and what the smoke run logs about its table."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "recommender" / "micro_dlrm_dram"
sys.path.insert(0, str(REPO))

from common import benchmark, movielens  # noqa: E402
from conftest import workload_modules  # noqa: E402

model_mod, train_mod = workload_modules("micro_dlrm_dram", "model", "train")
DEFINITION = benchmark.load(WORKLOAD)
SMOKE = benchmark.load(WORKLOAD, smoke=True)


def splitmix64_row(value: int, salt: int, rows: int) -> int:
    """The documented hash in plain Python integers (no numpy): SplitMix64 of value + (salt + 1) * gamma."""
    mask = 2**64 - 1
    z = (value + (salt + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return 1 + (z ^ (z >> 31)) % (rows - 1)


def test_hash_is_fixed_in_range_and_salted_per_feature():
    rows = DEFINITION["model"]["table_rows"]
    ids = np.array([0, 1, 2, 943, 1682, 2**40 + 7])
    for salt in (0, 1, 6, model_mod.GENRE_SALT):
        assert model_mod.hash_rows(ids, salt, rows).tolist() == [splitmix64_row(int(i), salt, rows) for i in ids]
    # pinned values: a table written on one machine is addressed identically on any other
    assert model_mod.hash_rows(np.arange(5), 0, 1 << 22).tolist() == [841127, 204681, 3687620, 1504267, 540050]
    many = model_mod.hash_rows(np.arange(2_000_000), 3, 1 << 16)  # ~30 ids per row
    assert many.min() >= 1 and many.max() <= (1 << 16) - 1  # row 0 is never a hash value
    assert len(np.unique(many)) == (1 << 16) - 1              # and every other row is reachable
    assert not np.array_equal(model_mod.hash_rows(np.arange(50), 0, rows), model_mod.hash_rows(np.arange(50), 1, rows))


def test_unseen_ids_and_genre_padding_read_the_zero_row():
    categorical = torch.tensor([[0, 5, 1, 3, 2, 4, 6], [7, 0, 0, 0, 0, 0, 0]])
    genres = torch.zeros(2, 19)
    genres[0, [1, 4, 7]], genres[1, 0] = 1, 1
    rows, genre_rows = model_mod.table_inputs(categorical, genres, 1 << 16)
    assert rows[0, 0] == 0 and rows[1, 1] == 0       # user / movie index 0: absent from u1.base
    assert (rows[1, 2:] > 0).all()                    # index 0 of a side feature is a real value, hashed
    assert genre_rows.shape == (2, 3) and (genre_rows[1, 1:] == 0).all() and (genre_rows[0] > 0).all()


def test_collisions_are_counted_among_the_keys_present():
    categorical = torch.tensor([[1, 1], [2, 1], [3, 2]])   # keys (0,1) (0,2) (0,3) (1,1) (1,2) and 4 genres
    rows = torch.stack([torch.from_numpy(model_mod.hash_rows(categorical[:, c].numpy(), c, 3)) for c in (0, 1)], 1)
    keys, sharing = model_mod.hash_collisions(categorical, rows, n_genres=4, table_rows=3)
    assert keys == 9 and sharing == 9                # 9 keys on 2 usable rows: every key shares its row
    big = 1 << 22
    rows = torch.stack([torch.from_numpy(model_mod.hash_rows(categorical[:, c].numpy(), c, big)) for c in (0, 1)], 1)
    assert model_mod.hash_collisions(categorical, rows, n_genres=4, table_rows=big) == (9, 0)


def _small_model():
    config = model_mod.HashedDLRMConfig(n_categorical=7, n_dense=4, **SMOKE["model"])
    return model_mod.HashedDLRM(config)


def test_gradients_are_sparse_and_only_looked_up_rows_change():
    torch.manual_seed(0)
    model = _small_model()
    rows = torch.randint(1, 1000, (32, 7))
    genre_rows = torch.cat([torch.randint(1, 1000, (32, 2)), torch.zeros(32, 1, dtype=torch.long)], 1)
    before = model.table.weight.detach().clone()
    optimizer = torch.optim.SparseAdam([model.table.weight], lr=0.01)
    logits, squared_norm = model(torch.randn(32, 4), rows, genre_rows)
    (logits.mean() + 0.03 * squared_norm).backward()
    grad = model.table.weight.grad
    assert grad.is_sparse
    touched = set(grad.coalesce().indices()[0].tolist())
    assert touched <= set(rows.flatten().tolist()) | set(genre_rows.flatten().tolist())
    optimizer.step()
    changed = set((model.table.weight.detach() != before).any(1).nonzero().flatten().tolist())
    assert changed and changed <= touched - {0}
    assert not model.table.weight[0].any()           # the reserved row stays zero


def test_l2_penalty_reaches_only_the_categorical_rows():
    model = _small_model()
    rows = torch.tensor([[11, 12, 13, 14, 15, 16, 17]])
    _, squared_norm = model(torch.zeros(1, 4), rows, torch.tensor([[21, 22]]))
    assert squared_norm.item() == pytest.approx(model.table.weight[rows[0]].pow(2).sum().item(), rel=1e-6)
    squared_norm.backward()
    grad = model.table.weight.grad.coalesce()
    nonzero = {int(i) for i, g in zip(grad.indices()[0], grad.values()) if g.any()}
    assert nonzero == set(range(11, 18))


def test_table_size_comes_from_the_definition():
    assert DEFINITION["model"]["table_rows"] == 1 << 22 and SMOKE["model"]["table_rows"] == 1 << 16
    model = _small_model()
    assert model.table.weight.shape == (SMOKE["model"]["table_rows"], SMOKE["model"]["embedding_dim"])
    assert model.table.sparse


def test_same_task_as_micro_dlrm():
    dense = benchmark.load("micro_dlrm")
    assert DEFINITION["dataset"] == dense["dataset"] and DEFINITION["quality"]["target"] == dense["quality"]["target"]
    assert DEFINITION["quality"]["metric"] == dense["quality"]["metric"]
    dense_train, = workload_modules("micro_dlrm", "train")
    assert dense_train.load_movielens is movielens.load_movielens is train_mod.load_movielens  # one data path


def test_smoke_log_reports_the_table(smoke_logs):
    _, _, events = smoke_logs("micro_dlrm_dram")
    by_key = {e["key"]: e["value"] for e in events}
    rows, dim = SMOKE["model"]["table_rows"], SMOKE["model"]["embedding_dim"]
    assert by_key["embedding_hash"]["table_rows"] == rows
    assert by_key["embedding_hash"]["keys_present"] == 2662  # 943 users, 1,650 movies, side values, 19 genres
    assert 0 < by_key["embedding_hash"]["keys_sharing_a_row"] < 2662  # 2^16 rows: some collide, most do not
    table = by_key["embedding_table"]
    assert table["table_bytes"] == rows * dim * 4
    assert table["optimizer_state_bytes"] >= 2 * rows * dim * 4   # SparseAdam's two moments (and its step count)
    steps = [e for e in events if e["key"] == "run_stop"][0]["metadata"]["steps"]
    assert table["lookups"] > steps * SMOKE["hyperparameters"]["global_batch_size"] * 7 and table["lookups_per_s"] > 0
