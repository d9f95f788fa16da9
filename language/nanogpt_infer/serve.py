"""Serve a checkpoint of the nanogpt training benchmark under MLPerf LoadGen: one variant per run.

    python language/nanogpt_infer/serve.py --variant decode_server --seed 1 [--smoke] [--data-dir data] \
        [--log-file result_1.txt]

Variants (benchmark.yaml, performance:): prefill_offline (tokens/s of prompt tokens), decode_singlestream (p90
latency of a whole answer, TTFT/TPOT), decode_server (tokens/s under TTFT/TPOT bounds). The checkpoint is
$CHECKPOINT, else $DATA_DIR/<checkpoint.file> of the definition (download_dataset.sh makes it).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
TRAINING_DIR = HERE.parent / "nanogpt"  # the training benchmark owns the model and its evaluation
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)
sys.path.insert(0, str(TRAINING_DIR))

from common import benchmark  # noqa: E402
from common.fetch import sha256_of  # noqa: E402
from common.inference import Gate, InferenceRun, SystemUnderTest, exit_now  # noqa: E402
from common.runtime import Distributed  # noqa: E402
from generate import generate_cached, generate_full_recompute, prefill_argmax  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402  (language/nanogpt/model.py)
from train import evaluate, load_splits, val_windows  # noqa: E402  (language/nanogpt/train.py)


class DecodeSUT(SystemUnderTest):
    """Greedy decode with a KV cache: the prompt is prefilled once, then one position per new token."""

    def __init__(self, model, prompts: torch.Tensor, new_tokens: int, max_batch: int = 1):
        self.model, self.prompts, self.new_tokens, self.max_batch = model, prompts, new_tokens, max_batch

    def answer(self, queries):
        prompts = self.prompts[[q.index for q in queries]]

        def first_token(tokens):
            for query, token in zip(queries, tokens.tolist()):
                query.first_token([token])

        answers = generate_cached(self.model, prompts, self.new_tokens, on_first_token=first_token)
        for query, tokens in zip(queries, answers):
            query.complete(tokens)


class PrefillSUT(SystemUnderTest):
    """Prefill: one forward pass over each prompt; the answer is the argmax next token at every position."""

    def __init__(self, model, prompts: torch.Tensor, max_batch: int):
        self.model, self.prompts, self.max_batch = model, prompts, max_batch

    def answer(self, queries):
        for query, tokens in zip(queries, prefill_argmax(self.model, self.prompts[[q.index for q in queries]])):
            query.complete(tokens)


def load_checkpoint(run, training: dict):
    """The model served and its record for the log. The checkpoint must come from the training benchmark (same
    smoke flag); when download_dataset.sh recorded its sha256 (<file>.json), the file must still have it."""
    path = Path(os.environ.get("CHECKPOINT") or run.data_dir / run.definition["checkpoint"]["file"])
    if not path.is_file():
        raise SystemExit(f"error: no checkpoint at {path}: run {HERE / 'download_dataset.sh'} (it trains the "
                         f"reference one) or set CHECKPOINT to a checkpoint of {training['name']}")
    sha256 = sha256_of(path)
    lineage_file = path.with_name(path.name + ".json")
    if lineage_file.is_file():
        recorded = json.loads(lineage_file.read_text())["sha256"]
        if recorded != sha256:
            raise SystemExit(f"error: checkpoint {path} has sha256 {sha256}, but {lineage_file.name} recorded "
                             f"{recorded} when it was made: the file changed")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("benchmark") != training["name"] or bool(checkpoint.get("smoke")) != training["smoke"]:
        kind = "smoke " if training["smoke"] else ""
        raise SystemExit(f"error: {path} is not a {kind}checkpoint of {training['name']} (it says benchmark "
                         f"{checkpoint.get('benchmark')!r}, smoke {bool(checkpoint.get('smoke'))})")
    return checkpoint, {
        "file": str(path.relative_to(run.data_dir)) if path.is_relative_to(run.data_dir) else str(path),
        "sha256": sha256, "training_benchmark": training["name"], "training_seed": checkpoint.get("seed"),
        "training_status": checkpoint.get("status"), "training_quality": checkpoint.get("quality"),
        "training_log_sha256": checkpoint.get("training_log_sha256"), "model_config": checkpoint["model_config"],
        "model_code_sha256": sha256_of(TRAINING_DIR / "model.py")}


def prompt_windows(val: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """`count` windows of `length` characters, evenly spaced over the validation split (never trained on)."""
    starts = torch.linspace(0, len(val) - length - 1, count).long()
    return torch.stack([val[s:s + length] for s in starts.tolist()])


def main(argv=None) -> int:
    run = InferenceRun.from_command_line(__doc__, HERE, argv)
    training = benchmark.load(TRAINING_DIR, smoke=run.definition["smoke"])
    checkpoint, record = load_checkpoint(run, training)
    run.log_event("checkpoint", record)

    _, val, vocab_size = load_splits(training, run.data_dir)
    cfg = checkpoint["model_config"]
    model = GPT(GPTConfig(vocab_size=vocab_size, **cfg))
    model.load_state_dict(checkpoint["state_dict"])
    model = model.to(run.device).eval()

    # The checkpoint qualifies when its validation loss, recomputed by the training benchmark's own evaluation,
    # meets the training target.
    val_x, val_y = val_windows(val, cfg["block_size"], training["quality"].get("eval_max_chars"))
    val_loss = evaluate(model, val_x, val_y, Distributed(), run.device)
    gate = Gate("checkpoint_val_loss", val_loss, training["quality"]["target"], training["quality"]["direction"])

    sut_config = run.sut_config
    if sut_config["task"] == "prefill":
        prompts = prompt_windows(val, sut_config["prompts"], sut_config["prompt_tokens"]).to(run.device)
        sut = PrefillSUT(model, prompts, sut_config["batch_size"])

        def reference(index):
            return prefill_argmax(model, prompts[index:index + 1])[0].tolist()
    else:
        prompts = prompt_windows(val, sut_config["prompts"], sut_config["prompt_tokens"]).to(run.device)
        sut = DecodeSUT(model, prompts, sut_config["output_tokens"], sut_config.get("batch_size", 1))

        def reference(index):
            return generate_full_recompute(model, prompts[index], sut_config["output_tokens"]).tolist()
    return run.serve(sut, total_samples=len(prompts), reference=reference, gates=[gate])


if __name__ == "__main__":
    exit_now(main())
