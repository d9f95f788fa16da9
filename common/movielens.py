"""MovieLens-100K for the recommender workloads (micro_dlrm, micro_dlrm_dram): the files as published, the
features both models read, and the AUC both are scored by. One copy, so the two workloads train and are scored on
bit-identical inputs and differ only in how they store and update their embeddings.

Features never use a rating value: the label is the only thing read from the rating column, and every
statistic (id vocabularies, rating counts, standardisation) comes from the training split alone.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

AGE_EDGES = (18, 25, 35, 45, 50, 56)  # MovieLens-1M's age groups: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+
FIRST_DECADE, N_DECADES = 1920, 8     # release decades 1920s..1990s (earlier clipped), index 0 = unknown date


# --- data -------------------------------------------------------------------------------------------------------
def read_ratings(path: Path) -> np.ndarray:
    """user id, item id, rating, timestamp per row (tab-separated, ids from 1)."""
    return np.loadtxt(path, dtype=np.int64, ndmin=2)


def read_side_information(directory: Path) -> dict:
    """Per-user and per-movie attributes from u.user, u.occupation and u.item, indexed by raw id (row 0 unused).
    These describe users and movies, not ratings, and are known for every id."""
    occupations = (directory / "u.occupation").read_text(encoding="latin-1").split()
    users = [line.split("|") for line in (directory / "u.user").read_text(encoding="latin-1").splitlines()]
    items = [line.split("|") for line in (directory / "u.item").read_text(encoding="latin-1").splitlines()]
    n_users, n_items = len(users) + 1, len(items) + 1
    age, gender, occupation, zip_region = (np.zeros(n_users, dtype=np.int64) for _ in range(4))
    for uid, user_age, user_gender, user_occupation, zip_code in users:
        u = int(uid)
        age[u], gender[u] = int(user_age), user_gender == "M"
        occupation[u] = occupations.index(user_occupation)
        zip_region[u] = int(zip_code[0]) if zip_code[0].isdigit() else 10  # first ZIP digit; 10 = non-US code
    year = np.full(n_items, np.nan)
    genres = np.zeros((n_items, len(items[0]) - 5), dtype=np.float32)
    for fields in items:
        i = int(fields[0])
        if fields[2]:
            year[i] = int(fields[2][-4:])  # release date "01-Jan-1995"
        genres[i] = [float(g) for g in fields[5:]]
    return {"age": age, "gender": gender, "occupation": occupation, "zip_region": zip_region, "year": year,
            "genres": genres, "n_occupations": len(occupations)}


def fit_features(train: np.ndarray, side: dict) -> dict:
    """Everything learned from data before training, from the training split's (user, item) pairs only:
    id vocabularies (index 0 = absent from training), rating counts, and the dense columns' mean and std."""
    users, items = np.unique(train[:, 0]), np.unique(train[:, 1])
    user_index = np.zeros(len(side["age"]), dtype=np.int64)
    item_index = np.zeros(len(side["year"]), dtype=np.int64)
    user_index[users], item_index[items] = np.arange(1, len(users) + 1), np.arange(1, len(items) + 1)
    tables = {"user_index": user_index, "item_index": item_index,
              "user_count": np.bincount(train[:, 0], minlength=len(user_index)),
              "item_count": np.bincount(train[:, 1], minlength=len(item_index)),
              "year_fill": np.nanmean(side["year"][train[:, 1]])}
    dense = _dense_columns(train, side, tables)
    tables["dense_mean"], tables["dense_std"] = dense.mean(0), dense.std(0)
    return tables


def _dense_columns(rows: np.ndarray, side: dict, tables: dict) -> np.ndarray:
    year = side["year"][rows[:, 1]]
    return np.stack([side["age"][rows[:, 0]],
                     np.log1p(tables["user_count"][rows[:, 0]]),
                     np.log1p(tables["item_count"][rows[:, 1]]),
                     np.where(np.isnan(year), tables["year_fill"], year)], axis=1)


def encode(rows: np.ndarray, side: dict, tables: dict) -> dict:
    """Model inputs for rating rows. Only the label looks at the rating column."""
    user, item = rows[:, 0], rows[:, 1]
    year = side["year"][item]
    decade = np.where(np.isnan(year), 0, np.clip((np.nan_to_num(year) - FIRST_DECADE) // 10, 0, N_DECADES - 1) + 1)
    categorical = np.stack([tables["user_index"][user], tables["item_index"][item], side["gender"][user],
                            side["occupation"][user], np.searchsorted(AGE_EDGES, side["age"][user], side="right"),
                            side["zip_region"][user], decade.astype(np.int64)], axis=1)
    dense = (_dense_columns(rows, side, tables) - tables["dense_mean"]) / tables["dense_std"]
    return {"dense": torch.tensor(dense, dtype=torch.float32),
            "categorical": torch.from_numpy(categorical),
            "genres": torch.from_numpy(side["genres"][item]),
            "label": torch.from_numpy((rows[:, 2] >= 4).astype(np.float32))}


CATEGORICAL = ("user", "item", "gender", "occupation", "age_group", "zip_region", "release_decade")


def cardinalities(side: dict, tables: dict) -> dict:
    return {"user": int(tables["user_index"].max()) + 1, "item": int(tables["item_index"].max()) + 1, "gender": 2,
            "occupation": side["n_occupations"], "age_group": len(AGE_EDGES) + 1, "zip_region": 11,
            "release_decade": N_DECADES + 1}


def load_movielens(definition: dict, data_dir: Path):
    files = {Path(f["path"]).name: data_dir / f["path"] for f in definition["dataset"]["files"]}
    side = read_side_information(files["u.user"].parent)
    train_rows = read_ratings(files[definition["dataset"]["train_file"]])
    test_rows = read_ratings(files[definition["dataset"]["test_file"]])
    tables = fit_features(train_rows, side)
    return encode(train_rows, side, tables), encode(test_rows, side, tables), cardinalities(side, tables)


# --- evaluation -------------------------------------------------------------------------------------------------
def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve (Mann-Whitney U, tied scores get their average rank)."""
    order = scores.double().argsort()
    _, inverse, counts = torch.unique_consecutive(scores.double()[order], return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]  # 1-based average rank of each sorted score
    positive = labels[order] > 0.5
    n_pos, n_neg = positive.sum().item(), (~positive).sum().item()
    return ((ranks[positive].sum().item() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@torch.no_grad()
def evaluate(model, data: dict, ctx, device, batch: int = 8192) -> float:
    """AUC over every test row: each rank scores a shard and writes it into a zero vector; the all-reduced sum is
    the whole vector of scores, identical on every rank whatever the process count."""
    model.eval()
    n = len(data["label"])
    scores = torch.zeros(n, dtype=torch.float64, device=device)
    for start in range(ctx.rank * batch, n, ctx.world_size * batch):
        s = slice(start, min(start + batch, n))
        logits, _ = model(data["dense"][s].to(device), data["categorical"][s].to(device), data["genres"][s].to(device))
        scores[s] = logits.double()
    ctx.all_reduce_sum(scores)
    model.train()
    return roc_auc(scores.cpu(), data["label"])


# --- training ---------------------------------------------------------------------------------------------------
def learning_rate(step: int, hp: dict) -> float:
    """Cosine decay from the base to the end learning rate over opt_learning_rate_decay_steps (no warmup)."""
    base, end, decay = hp["opt_base_learning_rate"], hp["opt_end_learning_rate"], hp["opt_learning_rate_decay_steps"]
    progress = min(1.0, step / decay)
    return end + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base - end)
