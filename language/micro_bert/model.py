"""A small BERT-style encoder for sentence classification, readable in a few minutes (nanoGPT's style).

    token ids (B, T) + padding mask (B, T)
      token embedding + learned position embedding, dropout
      N pre-LayerNorm encoder blocks: x + attention(LN(x)), x + MLP(LN(x))    (attention never looks at padding)
      final LayerNorm
      mean over the real (non-padding) positions -> linear -> 2 logits

Differences from BERT (Devlin et al., 2019), all for a small model trained from scratch: pre-LN blocks (as GPT-2;
they train stably without a long warm-up), no token-type embedding (one sentence per example), and the classifier
reads the mean of the token states instead of a [CLS] pooler (the [CLS] token is still the first token).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class EncoderConfig:
    vocab_size: int = 8192
    max_len: int = 64          # tokens per sentence, [CLS] and [SEP] included (longer sentences are truncated)
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    d_ff: int = 512
    dropout: float = 0.1
    num_classes: int = 2


class SelfAttention(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        assert cfg.d_model % cfg.heads == 0
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, heads, T, hd)
        # mask (B, T) -> (B, 1, 1, T): every query may look at every real token and at no padding token.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :],
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), mask))
        return x + self.drop(self.mlp(self.ln2(x)))


class SentenceEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # BERT's initialisation: normal(0, 0.02) weights, zero biases (LayerNorm keeps torch's 1 and 0).
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids (B, T) token ids, mask (B, T) True at real tokens (the first must be real): (B, num_classes) logits.
        What sits in the padding positions never reaches the logits (attention and pooling both skip them)."""
        T = ids.shape[1]
        x = self.drop(self.tok_emb(ids) + self.pos_emb(torch.arange(T, device=ids.device)))
        for block in self.blocks:
            x = block(x, mask)
        x = self.ln_f(x)
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1)  # mean over the real tokens only
        return self.head(pooled)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
