"""A small DLRM (Naumov et al. 2019, "Deep Learning Recommendation Model for Personalization and Recommendation
Systems"; facebookresearch/dlrm) for MovieLens-100K, predicting whether a user rates a movie 4 or 5:

    bottom MLP(dense features)              -> x             (one vector of size embedding_dim)
    one embedding per categorical feature   -> e_1 .. e_k    (same size)
    genres (multi-hot)                      -> mean of the genre embeddings
    pairwise dot products <v_i, v_j>, i > j, over v = [x, e_1, .., e_k, genres]   (DLRM's "dot" interaction)
    top MLP([x, dot products])              -> one logit

User and item id 0 is reserved for ids absent from the training split: that row is zero and never trained
(padding_idx), so an unseen user or movie contributes no interaction, only its side features do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn


@dataclass
class DLRMConfig:
    cardinalities: dict[str, int]           # categorical feature -> number of rows (user/item include index 0)
    n_dense: int
    n_genres: int
    embedding_dim: int = 16
    bottom_mlp: list[int] = field(default_factory=lambda: [64])
    top_mlp: list[int] = field(default_factory=lambda: [64, 32])
    oov_features: tuple[str, ...] = ("user", "item")  # features whose index 0 means "not in the training split"


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


class DLRM(nn.Module):
    def __init__(self, config: DLRMConfig):
        super().__init__()
        self.config = config
        d = config.embedding_dim
        self.features = list(config.cardinalities)
        self.embeddings = nn.ModuleDict()
        for name, rows in config.cardinalities.items():
            oov = name in config.oov_features
            table = nn.Embedding(rows, d, padding_idx=0 if oov else None)
            # DLRM reference initialisation: U(-sqrt(1/rows), sqrt(1/rows)); the out-of-vocabulary row stays 0.
            nn.init.uniform_(table.weight, -(1.0 / rows) ** 0.5, (1.0 / rows) ** 0.5)
            if oov:
                with torch.no_grad():
                    table.weight[0].zero_()
            self.embeddings[name] = table
        self.genres = nn.Embedding(config.n_genres, d)
        nn.init.uniform_(self.genres.weight, -(1.0 / config.n_genres) ** 0.5, (1.0 / config.n_genres) ** 0.5)
        self.bottom = mlp([config.n_dense, *config.bottom_mlp, d], last_relu=True)
        n_vectors = 1 + len(self.features) + 1  # bottom output, categorical embeddings, genres
        self.n_interactions = n_vectors * (n_vectors - 1) // 2
        self.top = mlp([d + self.n_interactions, *config.top_mlp, 1], last_relu=False)
        rows, cols = torch.tril_indices(n_vectors, n_vectors, offset=-1)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor, genres: torch.Tensor):
        """dense (B, n_dense) float; categorical (B, k) long, columns in `self.features` order; genres (B, n_genres)
        multi-hot float. Returns (B,) logits of P(rating >= 4) and the batch mean of the squared norms of the
        categorical embedding rows it used (the L2 penalty of matrix factorisation, on the rows a batch touches)."""
        x = self.bottom(dense)
        embedded = [self.embeddings[name](categorical[:, i]) for i, name in enumerate(self.features)]
        genre_mean = genres @ self.genres.weight / genres.sum(1, keepdim=True)  # mean of the movie's genres
        v = torch.stack([x, *embedded, genre_mean], dim=1)       # (B, n_vectors, d)
        dots = torch.bmm(v, v.transpose(1, 2))                   # (B, n_vectors, n_vectors)
        interactions = dots[:, self.pair_rows, self.pair_cols]   # each unordered pair once, no self-products
        logits = self.top(torch.cat([x, interactions], dim=1)).squeeze(1)
        squared_norm = sum(e.pow(2).sum(1) for e in embedded).mean()
        return logits, squared_norm
