"""Greedy generation for the nanogpt training benchmark's GPT (language/nanogpt/model.py), two ways:

- `generate_cached`: the served path. The prompt runs once (prefill) and fills a key/value cache; each further
  token runs one position through the blocks, attending to the cached keys and values: O(1) positions per token.
- `generate_full_recompute`: the reference. Every token re-runs the whole sequence through the unmodified
  model.forward: O(n) positions per token, no cache, nothing that could drift.

The accuracy gate requires both to produce the same tokens. The cached path reuses the trained model's own
modules (embeddings, LayerNorms, attention and MLP weights) and changes only how attention sees the past.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


class KVCache:
    """Keys and values of every layer for the positions seen so far: per layer two (B, heads, T, head_dim)
    tensors, grown by concatenation (simple; a preallocated cache is one of Lab 2's optimisations)."""

    def __init__(self, n_layer: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].size(2)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


def _attention_cached(attn, x: torch.Tensor, cache: KVCache, layer: int, past: int) -> torch.Tensor:
    """model.CausalSelfAttention.forward for new positions x (B, T, C) after `past` cached ones."""
    B, T, C = x.size()
    q, k, v = attn.c_attn(x).split(C, dim=2)
    q, k, v = (t.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2) for t in (q, k, v))
    k, v = cache.append(layer, k, v)
    if past == 0:    # prefill: the usual causal mask over the prompt
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    elif T == 1:     # one new token: it may see every cached position and itself
        y = F.scaled_dot_product_attention(q, k, v)
    else:            # several new tokens after a cached past: new token i sees past + i + 1 positions
        mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return attn.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


@torch.no_grad()
def forward_cached(model, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Logits (B, T, vocab) of the new positions idx (B, T), which follow the cache's positions."""
    t = model.transformer
    past = cache.length  # read once: each layer's append makes its own keys longer
    if past + idx.size(1) > model.config.block_size:
        raise ValueError(f"{past + idx.size(1)} positions exceed the block size {model.config.block_size}")
    pos = torch.arange(past, past + idx.size(1), device=idx.device)
    x = t.wte(idx) + t.wpe(pos)
    for layer, block in enumerate(t.h):
        x = x + _attention_cached(block.attn, block.ln_1(x), cache, layer, past)
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(t.ln_f(x))


@torch.no_grad()
def generate_cached(model, prompts: torch.Tensor, new_tokens: int, on_first_token=None) -> torch.Tensor:
    """Greedy continuation (B, new_tokens) of prompts (B, T) with a KV cache. on_first_token(tokens (B,)) is called
    as soon as the first new token of every prompt exists (LoadGen's time to first token)."""
    cache = KVCache(len(model.transformer.h))
    logits = forward_cached(model, prompts, cache)
    token = logits[:, -1].argmax(dim=-1)
    if on_first_token is not None:
        on_first_token(token)
    out = [token]
    for _ in range(new_tokens - 1):
        token = forward_cached(model, token[:, None], cache)[:, -1].argmax(dim=-1)
        out.append(token)
    return torch.stack(out, dim=1)


@torch.no_grad()
def generate_full_recompute(model, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """The reference: greedy continuation (new_tokens,) of one prompt (T,), re-running model.forward over the
    whole sequence for every token."""
    sequence = prompt[None]
    for _ in range(new_tokens):
        logits, _ = model(sequence)
        sequence = torch.cat([sequence, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return sequence[0, prompt.numel():]


@torch.no_grad()
def prefill_argmax(model, prompts: torch.Tensor) -> torch.Tensor:
    """Prefill: the argmax next token at every position of prompts (B, T), one forward pass."""
    logits, _ = model(prompts)
    return logits.argmax(dim=-1)
