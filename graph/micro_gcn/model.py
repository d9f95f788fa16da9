"""A two-layer graph convolutional network (Kipf & Welling, ICLR 2017, "Semi-Supervised Classification with
Graph Convolutional Networks"), written out in plain torch with sparse matrices for the graph and the features:

    H1     = dropout(ReLU(A_hat @ dropout(X) @ W1 + b1))
    logits = A_hat @ H1 @ W2 + b2,        A_hat = D^-1/2 (A + I) D^-1/2

A_hat is the symmetrically normalised adjacency with self-loops ("renormalisation trick" of the paper, eq. 2).
No torch_geometric: the whole model is the two matrix products above, so it reads in a minute and needs only torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GCNConfig:
    in_features: int
    n_classes: int
    hidden: int = 16
    dropout: float = 0.5


def normalized_adjacency(edges: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 as a sparse COO tensor, from an undirected edge list of shape (2, E) that holds
    both directions of every edge and no self-loops."""
    loops = torch.arange(n_nodes).repeat(2, 1)
    index = torch.cat([edges, loops], dim=1)
    degree = torch.zeros(n_nodes).index_add_(0, index[0], torch.ones(index.size(1)))
    d_inv_sqrt = degree.pow(-0.5)
    values = d_inv_sqrt[index[0]] * d_inv_sqrt[index[1]]
    return torch.sparse_coo_tensor(index, values, (n_nodes, n_nodes), check_invariants=True).coalesce()


def sparse_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout on the stored values of a sparse tensor: the same function as dense dropout (zeros stay zero),
    at the cost of 49k random draws instead of 3.9M for Cora's 1.3%-dense bag-of-words features."""
    if not training or p == 0.0:
        return x
    return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, True), x.shape,
                                   is_coalesced=True, check_invariants=False)


class GraphConvolution(nn.Module):
    """One GCN layer: A_hat @ (X @ W) + b; Glorot-uniform W as in the paper's code, and a zero-initialised bias b
    as in torch_geometric's GCNConv (the paper's code has the option, off by default)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(adj, torch.sparse.mm(x, self.weight) if x.is_sparse else x @ self.weight) + self.bias


class GCN(nn.Module):
    def __init__(self, config: GCNConfig):
        super().__init__()
        self.config = config
        self.conv1 = GraphConvolution(config.in_features, config.hidden)
        self.conv2 = GraphConvolution(config.hidden, config.n_classes)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Logits for every node of the graph (full-batch: the whole graph in one pass)."""
        p = self.config.dropout
        x = sparse_dropout(x, p, self.training) if x.is_sparse else F.dropout(x, p, self.training)
        x = F.dropout(F.relu(self.conv1(x, adj)), p, self.training)
        return self.conv2(x, adj)

    def configure_optimizer(self, hp: dict) -> torch.optim.Adam:
        """Adam; L2 weight decay on the first layer's weight only, as in the paper's code."""
        groups = [{"params": [self.conv1.weight], "weight_decay": hp["opt_weight_decay"]},
                  {"params": [self.conv1.bias, self.conv2.weight, self.conv2.bias], "weight_decay": 0.0}]
        return torch.optim.Adam(groups, lr=hp["opt_base_learning_rate"],
                                betas=(hp["opt_adam_beta_1"], hp["opt_adam_beta_2"]), eps=hp["opt_adam_epsilon"])
