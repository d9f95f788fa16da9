"""A sparse mixture-of-experts character GPT: language/nanogpt's model with each block's dense MLP replaced by E
expert MLPs and a router that sends every token to its top-2 experts (Shazeer et al. 2017; GShard, Lepikhin et al.
2021), with the Switch Transformer's load-balancing auxiliary loss (Fedus et al. 2022).

Attention, embeddings, weight tying and initialisation are copied from language/nanogpt/model.py (karpathy/nanoGPT),
kept self-contained so that each workload's reference code hashes on its own. Attention is causal
(scaled_dot_product_attention(is_causal=True)), and the router looks at one token at a time, so no position sees the
future (tests/test_nano_moe.py proves it).

Equal active parameters: each expert's hidden width is expert_hidden (half of nanogpt's 4 * n_embd = 512), so the
two experts a token uses cost the same FLOPs as nanogpt's dense MLP. Dispatch is dropless and really sparse: the
(token, expert) assignments are sorted by expert and each expert runs only on its own tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class MoEConfig:
    vocab_size: int
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_expert: int = 4
    expert_hidden: int = 256
    top_k: int = 2
    dropout: float = 0.0
    bias: bool = False


class CausalSelfAttention(nn.Module):
    """Copied from language/nanogpt/model.py."""

    def __init__(self, config: MoEConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


def route(router_logits: torch.Tensor, top_k: int):
    """Softmax router: each token's top_k experts and their weights renormalised to sum to 1, plus the full
    probabilities (the load-balancing loss needs them)."""
    probs = F.softmax(router_logits, dim=-1)
    weights, experts = probs.topk(top_k, dim=-1)
    return weights / weights.sum(dim=-1, keepdim=True), experts, probs


def load_balancing_loss(probs: torch.Tensor, experts: torch.Tensor, n_expert: int, global_counts: bool = False):
    """Switch Transformer's auxiliary loss E * sum_e f_e * P_e: f_e is the fraction of the (token, slot) assignments
    sent to expert e (not differentiable), P_e the mean router probability of e. It is 1 for uniform routing and
    grows as the load concentrates on fewer experts. global_counts: under DDP, f_e counts every rank's tokens, so
    the ranks' averaged gradients equal one process's over the whole batch (P_e's mean is linear: DDP averages it)."""
    counts = torch.bincount(experts.flatten(), minlength=n_expert).to(probs.dtype)
    total = torch.tensor(float(experts.numel()), dtype=probs.dtype, device=probs.device)
    if global_counts and dist.is_available() and dist.is_initialized():
        both = torch.cat([counts, total[None]])
        dist.all_reduce(both)
        counts, total = both[:-1], both[-1]
    return n_expert * (counts / total * probs.mean(dim=0)).sum()


class MoEMLP(nn.Module):
    """E GELU expert MLPs (n_embd -> expert_hidden -> n_embd) with top-k routing and dropless sparse dispatch."""

    def __init__(self, config: MoEConfig):
        super().__init__()
        self.n_expert, self.top_k = config.n_expert, config.top_k
        self.router = nn.Linear(config.n_embd, config.n_expert, bias=False)
        # Expert weights stacked: c_fc[e] is expert e's first matrix, c_proj[e] its second.
        self.c_fc = nn.Parameter(torch.empty(config.n_expert, config.n_embd, config.expert_hidden))
        self.c_proj = nn.Parameter(torch.empty(config.n_expert, config.expert_hidden, config.n_embd))
        self.dropout = nn.Dropout(config.dropout)
        self.aux_loss = None      # the last forward pass's load-balancing loss
        self.load = None          # the last forward pass's fraction of assignments per expert (detached)

    def forward(self, x):
        B, T, C = x.size()
        tokens = x.reshape(-1, C)
        weights, experts, probs = route(self.router(tokens), self.top_k)
        self.aux_loss = load_balancing_loss(probs, experts, self.n_expert, global_counts=self.training)
        # Sort the N * top_k assignments by expert, so each expert's tokens form one contiguous slice.
        flat_experts = experts.flatten()
        order = flat_experts.argsort(stable=True)
        token_of = order // self.top_k
        counts = torch.bincount(flat_experts, minlength=self.n_expert)
        self.load = (counts.float() / flat_experts.numel()).detach()
        out = torch.zeros_like(tokens)
        start = 0
        for e, count in enumerate(counts.tolist()):
            # An expert with no tokens still runs (on an empty slice), so every parameter takes part in every
            # step, as DistributedDataParallel requires.
            idx = token_of[start:start + count]
            h = F.gelu(tokens[idx] @ self.c_fc[e]) @ self.c_proj[e]
            out.index_add_(0, idx, h * weights.flatten()[order[start:start + count], None])
            start += count
        return self.dropout(out.view(B, T, C))


class Block(nn.Module):
    def __init__(self, config: MoEConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.moe = MoEMLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.moe(self.ln_2(x))


class MoEGPT(nn.Module):
    def __init__(self, config: MoEConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        # nanoGPT's initialisation: N(0, 0.02), residual projections (attention's and the experts' second
        # matrices) scaled by 1/sqrt(2 * n_layer).
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight") or name.endswith("moe.c_proj"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
            elif name.endswith("moe.c_fc"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Every parameter; the tied embedding counts once."""
        return sum(p.numel() for p in self.parameters())

    def num_active_params(self) -> int:
        """Parameters one token uses: everything but the experts it is not routed to (n_expert - top_k per layer)."""
        c = self.config
        unused = c.n_layer * (c.n_expert - c.top_k) * 2 * c.n_embd * c.expert_hidden
        return self.num_params() - unused

    def moe_layers(self):
        return [block.moe for block in self.transformer.h]

    def forward(self, idx, targets=None):
        """Logits, and with targets the cross-entropy; the load-balancing loss of the pass is aux_loss()."""
        B, T = idx.size()
        assert T <= self.config.block_size, f"sequence of {T} exceeds block size {self.config.block_size}"
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    def aux_loss(self) -> torch.Tensor:
        """Mean over layers of the last forward pass's load-balancing losses."""
        return torch.stack([layer.aux_loss for layer in self.moe_layers()]).mean()

    def configure_optimizer(self, hp: dict) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices only (nanoGPT's rule: every parameter of 2+ dimensions)."""
        decay = [p for p in self.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": hp["opt_adamw_weight_decay"]},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=hp["opt_base_learning_rate"],
                                 betas=(hp["opt_adamw_beta_1"], hp["opt_adamw_beta_2"]), eps=hp["opt_adamw_epsilon"])
