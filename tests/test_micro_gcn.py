"""graph/micro_gcn: the Planetoid split as published, the normalised adjacency, the model size, and a leak check
showing that no decision of a training run depends on a test label."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "graph" / "micro_gcn"
sys.path.insert(0, str(REPO))

from common import benchmark  # noqa: E402
from conftest import workload_modules  # noqa: E402

model_mod, train_mod = workload_modules("micro_gcn", "model", "train")
DEFINITION = benchmark.load(WORKLOAD)


@pytest.fixture(scope="module")
def cora(data_dir):  # data_dir: conftest's session copy of every workload's dataset, fetched from the mirror
    return train_mod.load_planetoid(data_dir / "cora" / "planetoid")


def test_planetoid_split_as_published(cora):
    labels, edges = cora["labels"], cora["edges"]
    assert cora["features"].shape == (2708, 1433)
    assert int(labels.max()) + 1 == 7
    assert edges.shape == (2, 10556)  # 5278 undirected edges, both directions, as PyG reports
    assert not (edges[0] == edges[1]).any()
    forward = set(map(tuple, edges.T.tolist()))
    assert all((d, s) in forward for s, d in forward)
    train, val, test = (set(cora[k].tolist()) for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (140, 500, 1000)
    assert not (train & val or train & test or val & test)
    assert labels[cora["train"]].bincount().tolist() == [20] * 7  # Planetoid: 20 labelled nodes per class
    row_sums = torch.sparse.sum(cora["features"], dim=1).to_dense()
    assert torch.allclose(row_sums, torch.ones(2708), atol=1e-5)


def test_normalized_adjacency_matches_dense_formula(cora):
    n = 2708
    adj = model_mod.normalized_adjacency(cora["edges"], n).to_dense()
    a = torch.zeros(n, n)
    a[cora["edges"][0], cora["edges"][1]] = 1.0
    a += torch.eye(n)
    d = a.sum(1).pow(-0.5)
    assert torch.allclose(adj, d[:, None] * a * d[None, :], atol=1e-6)


def test_parameter_count():
    hidden = DEFINITION["model"]["hidden"]
    model = model_mod.GCN(model_mod.GCNConfig(in_features=1433, n_classes=7, hidden=hidden))
    assert model.num_params() == 1433 * hidden + hidden + hidden * 7 + 7 == 23063


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_no_decision_depends_on_test_labels(data_dir, tmp_path, monkeypatch):
    """Scrambling every test label leaves the whole run (losses, validation curve, stopping epoch) unchanged;
    only the single final test score moves, and the test split is scored exactly once."""
    real_loader = train_mod.load_planetoid

    def scrambled(directory):
        data = real_loader(directory)
        test = data["test"]
        data["labels"][test] = (data["labels"][test] + 1 + torch.arange(len(test)) % 6) % 7  # all changed
        return data

    runs = {}
    for name, loader in (("real", real_loader), ("scrambled", scrambled)):
        monkeypatch.setattr(train_mod, "load_planetoid", loader)
        log = tmp_path / f"{name}.txt"
        train_mod.main(["--seed", "3", "--smoke", "--data-dir", str(data_dir), "--log-file", str(log), "--device", "cpu"])
        runs[name] = _events(log)

    def trajectory(events):
        return [(e["key"], e["value"]) for e in events if e["key"] in ("val_loss", "train_loss", "early_stopping")]

    assert trajectory(runs["real"]) == trajectory(runs["scrambled"])
    scores = {name: [e["value"] for e in events if e["key"] == "eval_accuracy"] for name, events in runs.items()}
    assert len(scores["real"]) == 1 and len(scores["scrambled"]) == 1
    assert scores["real"][0] > 0.5 > 0.25 > scores["scrambled"][0]  # the labels did change, and only here
