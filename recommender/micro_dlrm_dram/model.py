"""micro_dlrm's DLRM with its embeddings in ONE large hashed table, the memory-system layout of production DLRMs
(Weinberger et al. 2009, "Feature Hashing for Large Scale Multitask Learning"; MLPerf DLRM's hashed Criteo ids):

    bottom MLP(dense features)                       -> x                 (size embedding_dim)
    row = hash(feature, id) for each categorical id  -> e_1 .. e_k       (rows of the one shared table)
    row = hash("genre", g) for each genre g of the movie -> their mean
    pairwise dot products over [x, e_1, .., e_k, genre mean], top MLP -> one logit   (as micro_dlrm)

The table has `table_rows` rows (millions; benchmark.yaml), far more than the ~2,700 ids MovieLens-100K holds, so
almost every id gets a row of its own (a few may share one: a hash collision, counted and logged). It is an
nn.Embedding with sparse=True: a step's gradient is a sparse tensor holding only the rows the batch looked up, and
the sparse optimizer (torch.optim.SparseAdam) reads and writes only those rows of the table and of its moments.

Row 0 is reserved: the user and movie ids absent from the training split (index 0 of micro_dlrm's vocabularies)
and the padding of a movie's genre list map to it, and it stays zero and is never trained (padding_idx), so an
unseen user or movie contributes no interaction, as in micro_dlrm. Every other key hashes into rows 1..rows-1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

# SplitMix64's constants (Steele, Lea and Flood 2014): the increment is 2^64 / golden ratio; the two multipliers and
# shifts make its finaliser, a bijection of 64-bit integers whose output bits each depend on every input bit.
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX_1, MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
GENRE_SALT = 1000  # the genres' feature number (salt); categorical features are numbered 0, 1, ... in column order


def hash_rows(ids: np.ndarray, salt: int, table_rows: int) -> np.ndarray:
    """Table rows of the integer ids of one feature: SplitMix64(id + (salt + 1) * golden gamma), reduced to
    1..table_rows-1. numpy's uint64 arithmetic wraps modulo 2^64 on every platform, so the rows are the same
    everywhere. Keys are (feature, id) pairs: the salt keeps user 5 and movie 5 apart."""
    z = np.asarray(ids, dtype=np.uint64) + np.uint64((salt + 1) * int(GOLDEN_GAMMA) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * MIX_1
    z = (z ^ (z >> np.uint64(27))) * MIX_2
    z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(table_rows - 1) + np.uint64(1)).astype(np.int64)


def table_inputs(categorical: torch.Tensor, genres: torch.Tensor, table_rows: int,
                 oov_columns: tuple[int, ...] = (0, 1)) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows each example reads: (N, k) rows of its k categorical ids (column c hashed with salt c; index 0 of
    the user and movie columns, "not in the training split", -> row 0) and (N, max genres) rows of its genres
    (padded with row 0). Done once per split before training, as production pipelines hash ids at ingestion."""
    ids = categorical.numpy()
    rows = np.stack([hash_rows(ids[:, c], c, table_rows) for c in range(ids.shape[1])], axis=1)
    for c in oov_columns:
        rows[ids[:, c] == 0, c] = 0
    multi_hot = genres.numpy() > 0
    genre_rows = np.zeros((len(ids), max(1, int(multi_hot.sum(1).max()))), dtype=np.int64)
    all_genres = hash_rows(np.arange(multi_hot.shape[1]), GENRE_SALT, table_rows)
    example, genre = np.nonzero(multi_hot)                         # in genre order within each example
    slot = np.cumsum(multi_hot, axis=1)[example, genre] - 1          # the genre's place in its example's list
    genre_rows[example, slot] = all_genres[genre]
    return torch.from_numpy(rows), torch.from_numpy(genre_rows)


def hash_collisions(categorical: torch.Tensor, rows: torch.Tensor, n_genres: int, table_rows: int) -> tuple[int, int]:
    """(distinct keys, keys that share their row with another key) among the keys present: the (feature, id) pairs
    of `categorical` (N, k), whose rows are `rows` (table_inputs), and the n_genres genres. The reserved row 0
    (ids absent from training) is left out."""
    k = categorical.size(1)
    keys = torch.cat([torch.stack([torch.arange(k).expand_as(categorical).reshape(-1), categorical.reshape(-1)], 1),
                      torch.stack([torch.full((n_genres,), GENRE_SALT), torch.arange(n_genres)], 1)])
    key_rows = torch.cat([rows.reshape(-1), torch.from_numpy(hash_rows(np.arange(n_genres), GENRE_SALT, table_rows))])
    unique_keys, index = torch.unique(keys[key_rows > 0], dim=0, return_inverse=True)
    row_of_key = torch.zeros(len(unique_keys), dtype=torch.int64).scatter_(0, index, key_rows[key_rows > 0])
    _, keys_per_row = torch.unique(row_of_key, return_counts=True)
    return len(unique_keys), int(keys_per_row[keys_per_row > 1].sum())


@dataclass
class HashedDLRMConfig:
    n_categorical: int                       # categorical features per example (hashed into the table)
    n_dense: int
    table_rows: int = 1 << 22
    embedding_dim: int = 16
    bottom_mlp: list[int] = field(default_factory=lambda: [64])
    top_mlp: list[int] = field(default_factory=lambda: [64, 32])
    init_scale: float = 0.05                 # table rows start U(-init_scale, init_scale)


def mlp(sizes: list[int], last_relu: bool) -> nn.Sequential:
    """Linear layers with ReLU between them, initialised as the DLRM reference does: weights N(0, sqrt(2/(in+out))),
    biases N(0, sqrt(1/out))."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        nn.init.normal_(linear.weight, 0.0, (2.0 / (n_in + n_out)) ** 0.5)
        nn.init.normal_(linear.bias, 0.0, (1.0 / n_out) ** 0.5)
        layers.append(linear)
        if i < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class HashedDLRM(nn.Module):
    def __init__(self, config: HashedDLRMConfig):
        super().__init__()
        self.config = config
        d = config.embedding_dim
        self.table = nn.Embedding(config.table_rows, d, padding_idx=0, sparse=True)
        nn.init.uniform_(self.table.weight, -config.init_scale, config.init_scale)
        with torch.no_grad():
            self.table.weight[0].zero_()
        self.bottom = mlp([config.n_dense, *config.bottom_mlp, d], last_relu=True)
        n_vectors = 1 + config.n_categorical + 1  # bottom output, categorical embeddings, genre mean
        self.n_interactions = n_vectors * (n_vectors - 1) // 2
        self.top = mlp([d + self.n_interactions, *config.top_mlp, 1], last_relu=False)
        rows, cols = torch.tril_indices(n_vectors, n_vectors, offset=-1)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def dense_parameters(self) -> list[nn.Parameter]:
        """Everything but the table: the MLPs, trained by a dense optimizer."""
        return [p for name, p in self.named_parameters() if not name.startswith("table.")]

    def forward(self, dense: torch.Tensor, rows: torch.Tensor, genre_rows: torch.Tensor):
        """dense (B, n_dense) float; rows (B, k) and genre_rows (B, max genres) table rows (table_inputs).
        Returns (B,) logits of P(rating >= 4) and the batch mean of the squared norms of the categorical rows it
        used (micro_dlrm's L2 penalty, on the looked-up rows only, so its gradient is sparse too)."""
        x = self.bottom(dense)
        k = rows.size(1)
        looked_up = self.table(torch.cat([rows, genre_rows], dim=1))      # one lookup: (B, k + max genres, d)
        embedded, genre_vectors = looked_up[:, :k], looked_up[:, k:]
        genre_mean = genre_vectors.sum(1) / (genre_rows > 0).sum(1, keepdim=True).clamp(min=1)  # row 0 pads: zeros
        v = torch.cat([x.unsqueeze(1), embedded, genre_mean.unsqueeze(1)], dim=1)  # (B, n_vectors, d)
        dots = torch.bmm(v, v.transpose(1, 2))
        interactions = dots[:, self.pair_rows, self.pair_cols]  # each unordered pair once, no self-products
        logits = self.top(torch.cat([x, interactions], dim=1)).squeeze(1)
        squared_norm = embedded.pow(2).sum((1, 2)).mean()
        return logits, squared_norm
