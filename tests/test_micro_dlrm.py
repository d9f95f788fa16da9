"""recommender/micro_dlrm: the fixed split, leak checks on the features (no rating value is ever read, nothing comes
from the test file), out-of-vocabulary ids, the AUC, and the parameter count."""
from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "recommender" / "micro_dlrm"
sys.path.insert(0, str(REPO))

from common import benchmark  # noqa: E402
from conftest import workload_modules  # noqa: E402

model_mod, train_mod = workload_modules("micro_dlrm", "model", "train")
DEFINITION = benchmark.load(WORKLOAD)


def _files(data_dir: Path) -> dict[str, Path]:
    return {Path(f["path"]).name: data_dir / f["path"] for f in DEFINITION["dataset"]["files"]}


@pytest.fixture(scope="module")
def movielens(data_dir):  # data_dir: conftest's session copy of every workload's dataset, fetched from the mirror
    files = _files(data_dir)
    side = train_mod.read_side_information(files["u.user"].parent)
    return side, train_mod.read_ratings(files["u1.base"]), train_mod.read_ratings(files["u1.test"])


def test_fixed_split(movielens):
    _, base, test = movielens
    assert base.shape == (80000, 4) and test.shape == (20000, 4)
    assert not set(map(tuple, base[:, :2].tolist())) & set(map(tuple, test[:, :2].tolist()))


def test_features_never_read_a_rating(movielens):
    """Scrambling every rating value (train and test) changes the labels and nothing else."""
    side, base, test = movielens
    rng = np.random.default_rng(0)
    scrambled_base, scrambled_test = base.copy(), test.copy()
    scrambled_base[:, 2], scrambled_test[:, 2] = rng.integers(1, 6, len(base)), 6 - test[:, 2]
    tables, scrambled_tables = train_mod.fit_features(base, side), train_mod.fit_features(scrambled_base, side)
    for key in tables:
        assert np.array_equal(tables[key], scrambled_tables[key]), key
    a, b = train_mod.encode(test, side, tables), train_mod.encode(scrambled_test, side, scrambled_tables)
    for key in ("dense", "categorical", "genres"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["label"], b["label"])


def test_nothing_comes_from_the_test_file(data_dir, tmp_path):
    """load_movielens with a different u1.test (flipped labels, half the rows dropped) gives the same training
    inputs, the same vocabularies, and the same features for the test rows that remain."""
    files = _files(data_dir)
    copy = tmp_path / "data"
    for entry in DEFINITION["dataset"]["files"]:
        (copy / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / entry["path"], copy / entry["path"])
    test = train_mod.read_ratings(files["u1.test"])
    changed = test[::2].copy()
    changed[:, 2] = np.where(changed[:, 2] >= 4, 1, 5)  # every label flips
    np.savetxt(copy / Path(DEFINITION["dataset"]["files"][1]["path"]), changed, fmt="%d", delimiter="\t")
    train_a, test_a, sizes_a = train_mod.load_movielens(DEFINITION, data_dir)
    train_b, test_b, sizes_b = train_mod.load_movielens(DEFINITION, copy)
    assert sizes_a == sizes_b
    for key in train_a:
        assert torch.equal(train_a[key], train_b[key]), key
    for key in ("dense", "categorical", "genres"):
        assert torch.equal(test_a[key][::2], test_b[key]), key
    assert torch.equal(test_a["label"][::2], 1 - test_b["label"])


def test_unseen_ids_map_to_a_zero_row_that_never_trains(movielens):
    side, base, test = movielens
    tables = train_mod.fit_features(base, side)
    encoded = train_mod.encode(test, side, tables)
    unseen = ~np.isin(test[:, 1], base[:, 1])
    assert unseen.sum() == 32  # u1.test rates 32 movies that u1.base never does
    assert (encoded["categorical"][torch.from_numpy(unseen), 1] == 0).all()
    assert (encoded["categorical"][torch.from_numpy(~unseen), 1] > 0).all()
    sizes = train_mod.cardinalities(side, tables)
    model = model_mod.DLRM(model_mod.DLRMConfig(cardinalities=sizes, n_dense=4, n_genres=19))
    rows = torch.from_numpy(np.flatnonzero(unseen))
    logits, norm = model(encoded["dense"][rows], encoded["categorical"][rows], encoded["genres"][rows])
    (logits.sum() + norm).backward()
    assert not model.embeddings["item"].weight[0].any()
    assert not model.embeddings["item"].weight.grad[0].any()


def test_roc_auc_matches_pairwise_definition():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 8, (60,), generator=gen).double()  # many ties
    labels = (torch.rand(60, generator=gen) < 0.4).double()
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos.tolist(), neg.tolist())]
    assert train_mod.roc_auc(scores, labels) == pytest.approx(sum(pairs) / len(pairs), abs=1e-12)


def test_parameter_count(movielens):
    side, base, _ = movielens
    sizes = train_mod.cardinalities(side, train_mod.fit_features(base, side))
    cfg = DEFINITION["model"]
    d = cfg["embedding_dim"]
    model = model_mod.DLRM(model_mod.DLRMConfig(cardinalities=sizes, n_dense=4, n_genres=19, embedding_dim=d,
                                                bottom_mlp=cfg["bottom_mlp"], top_mlp=cfg["top_mlp"]))
    assert sizes == {"user": 944, "item": 1651, "gender": 2, "occupation": 21, "age_group": 7, "zip_region": 11,
                     "release_decade": 9}
    embeddings = (sum(sizes.values()) + 19) * d
    bottom = (4 * 64 + 64) + (64 * d + d)
    top = ((d + 36) * 64 + 64) + (64 * 32 + 32) + (32 + 1)
    assert model.n_interactions == 36  # 9 vectors: bottom output, 7 categorical, genres
    assert model.num_params() == embeddings + bottom + top == 49489
