"""The query samples and the held-out text of smollm2, built from data the suite already mirrors.

- instructions: MBPP problem statements (the test split, task_id 11 on, in order), each one user turn of the
  tokenizer's own chat template ("Write a python function to ...").
- long context: TinyShakespeare passages of exactly `context_tokens` tokens, evenly spaced over the second half of
  the text, each followed by a request to summarise it, in the chat template (so each prompt is longer still).
- perplexity text: the first `perplexity_tokens` tokens of TinyShakespeare (never a long-context passage).

Every set is logged with the sha256 of its exact prompt texts and of its token ids (README: the reference values).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

MBPP_TEST_FIRST_TASK = 11  # MBPP's splits by task_id: 1-10 prompt, 11-510 test, 511-600 validation, 601-974 train
SUMMARY_REQUEST = "Summarize the passage above in one sentence."


def _chat(tokenizer, text: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)


def instruction_prompts(tokenizer, data_dir: Path, count: int) -> list[str]:
    rows = [json.loads(line) for line in (data_dir / "mbpp" / "mbpp.jsonl").read_text().splitlines() if line]
    tests = [row["text"] for row in sorted(rows, key=lambda r: r["task_id"]) if row["task_id"] >= MBPP_TEST_FIRST_TASK]
    if count > len(tests):
        raise ValueError(f"MBPP has {len(tests)} test problems, not {count}")
    return [_chat(tokenizer, text) for text in tests[:count]]


def shakespeare_tokens(tokenizer, data_dir: Path) -> list[int]:
    text = (data_dir / "tinyshakespeare" / "input.txt").read_text()
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def long_context_prompts(tokenizer, tokens: list[int], count: int, context_tokens: int) -> list[str]:
    half = len(tokens) // 2
    span = len(tokens) - half - context_tokens
    starts = [half + (span * i) // max(1, count - 1) for i in range(count)]
    return [_chat(tokenizer, tokenizer.decode(tokens[s:s + context_tokens]) + "\n\n" + SUMMARY_REQUEST)
            for s in starts]


def query_prompts(tokenizer, data_dir: Path, shakespeare: list[int], sut_config: dict) -> list[str]:
    """The query sample library of a variant's sut: config (task long_context or instruct)."""
    if sut_config["task"] == "long_context":
        return long_context_prompts(tokenizer, shakespeare, sut_config["prompts"], sut_config["context_tokens"])
    return instruction_prompts(tokenizer, data_dir, sut_config["prompts"])


def perplexity_tokens(tokens: list[int], count: int) -> list[int]:
    return tokens[:count]


def encode(tokenizer, prompts: list[str]) -> list[list[int]]:
    """Token ids of rendered chat prompts (the template already holds the special tokens)."""
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


def fingerprint(prompts: list[str], token_ids: list[list[int]]) -> dict:
    """What the log records of a prompt set: its size, lengths and the sha256 of its texts and of its tokens."""
    lengths = [len(t) for t in token_ids]
    return {"prompts": len(prompts), "min_tokens": min(lengths), "max_tokens": max(lengths),
            "texts_sha256": hashlib.sha256(json.dumps(prompts).encode()).hexdigest(),
            "tokens_sha256": hashlib.sha256(json.dumps(token_ids).encode()).hexdigest()}
