"""Greedy decoding with a KV cache over a transformers causal LM, its reference, perplexity and int8 weights.

greedy_decode is the SUT's loop: one prefill over the (left-padded) prompts, then one position per new token,
each step reading the cache of the steps before (transformers' DynamicCache). reference_answer is the plain
`model.generate` of one prompt, the naive baseline and the accuracy reference. An answer ends after an
end-of-sequence token or after `new_tokens` tokens, as model.generate's do.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def eos_ids(model) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}


def left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of prompts of different lengths, padded on the left so that every prompt's
    last token is in the last column, where the next token is read."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


@torch.inference_mode()
def greedy_decode(model, prompts: list[list[int]], new_tokens: int, pad_id: int, on_first_token=None) -> list[list[int]]:
    """Greedy answers of a batch of prompts. on_first_token(list of first tokens) is called as soon as the prefill
    has produced them (LoadGen's time to first token)."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    input_ids, mask = left_pad(prompts, pad_id, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # padding does not shift a prompt's positions
    cache = DynamicCache()
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                   use_cache=True, logits_to_keep=1).logits[:, -1]
    token = logits.argmax(-1)
    if on_first_token:
        on_first_token(token.tolist())
    stop = eos_ids(model)
    answers = [[t] for t in token.tolist()]
    done = [t in stop for t in token.tolist()]
    for _ in range(new_tokens - 1):
        if all(done):
            break
        mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=1)
        positions = positions[:, -1:] + 1
        logits = model(input_ids=token[:, None], attention_mask=mask, position_ids=positions, past_key_values=cache,
                       use_cache=True).logits[:, -1]
        token = logits.argmax(-1)
        for row, t in enumerate(token.tolist()):
            if not done[row]:
                answers[row].append(t)
                done[row] = t in stop
    return answers


@torch.inference_mode()
def reference_answer(model, prompt: list[int], new_tokens: int) -> list[int]:
    """model.generate, greedy, one prompt: what transformers itself answers."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
                         num_beams=1, pad_token_id=model.generation_config.pad_token_id)
    return out[0, len(prompt):].tolist()


@torch.inference_mode()
def perplexity(model, tokens: list[int], window: int) -> float:
    """exp(mean negative log-likelihood) of `tokens`, scored in consecutive windows of `window` tokens."""
    device = next(model.parameters()).device
    ids = torch.tensor(tokens, device=device)
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, window):
        chunk = ids[start:start + window + 1]
        if len(chunk) < 2:
            break
        logits = model(input_ids=chunk[None, :-1]).logits[0].float()
        total += F.cross_entropy(logits, chunk[1:], reduction="sum").item()
        count += len(chunk) - 1
    return math.exp(total / count)


def quantize_int8(model):
    """Int8 weight-only quantisation of every linear layer through torchao (torch.ao.quantization, the older
    route, is deprecated in the installed torch). Activations stay in the model's dtype."""
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError as error:
        raise SystemExit(f"error: the int8 variant needs torchao (pip install torchao): {error}") from None
    quantize_(model, Int8WeightOnlyConfig())
    return model
