"""Serve SmolLM2-135M-Instruct under MLPerf LoadGen: one variant per run.

    python slm/smollm2/serve.py --variant baseline --seed 1 [--smoke] [--data-dir data] [--log-file result_1.txt]

Variants (benchmark.yaml, performance:): baseline (fp32, SingleStream), baseline_server (fp32, Server),
baseline_bf16 (bf16 weights and activations, SingleStream), int8 (torchao int8 weight-only, SingleStream), batched
(batches of 4, left padding with attention masks, Offline tokens/s), long_context (prompts of more than 1,024
tokens, SingleStream; the prefill dominates). The weights are prepared by download_dataset.sh (common/smollm2.py;
SMOLLM2_SOURCE=offline|hub).

The accuracy run scores each variant against the fp32 model as transformers itself runs it (model.generate,
greedy, one prompt at a time) and gates the perplexity of a held-out text (benchmark.yaml, quality: gates:).
"""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)
sys.path.insert(0, str(HERE))

import prompts as prompt_sets  # noqa: E402
from common import smollm2  # noqa: E402
from common.inference import Gate, InferenceRun, SystemUnderTest, exit_now, peak_memory_mb  # noqa: E402
from generate import greedy_decode, perplexity, quantize_int8, reference_answer  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class DecodeSUT(SystemUnderTest):
    """Greedy decode with a KV cache of up to max_batch prompts together (left-padded, attention-masked)."""

    def __init__(self, model, prompts: list[list[int]], new_tokens: int, pad_id: int, max_batch: int = 1):
        self.model, self.prompts, self.new_tokens, self.pad_id = model, prompts, new_tokens, pad_id
        self.max_batch = max_batch

    def answer(self, queries):
        def first_token(tokens):
            for query, token in zip(queries, tokens):
                query.first_token([token])

        answers = greedy_decode(self.model, [self.prompts[q.index] for q in queries], self.new_tokens, self.pad_id,
                                on_first_token=first_token)
        for query, tokens in zip(queries, answers):
            query.complete(tokens)


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes in bf16 natively (CPU: AVX512-BF16 or AMX; else torch emulates it, slowly)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def served_model(base, sut_config: dict, device):
    """The model a variant serves: the fp32 model itself, or a copy in another dtype and/or quantised."""
    dtype = DTYPES[sut_config["dtype"]]
    quantization = sut_config.get("quantization", "none")
    if dtype == torch.float32 and quantization == "none":
        return base
    model = copy.deepcopy(base).to(dtype)
    if quantization == "int8_weight_only":
        model = quantize_int8(model)
    elif quantization != "none":
        raise SystemExit(f"error: unknown quantization {quantization!r} (none, int8_weight_only)")
    return model.eval()


def main(argv=None) -> int:
    run = InferenceRun.from_command_line(__doc__, HERE, argv)
    sut_config = run.sut_config
    tokenizer, base, record = smollm2.load(run.definition, run.data_dir, run.device)
    run.log_event("model", record)

    if sut_config["dtype"] == "bfloat16":
        native = native_bf16(run.device)
        run.log_event("bf16_native", native)
        if not native:
            print("warning: this device has no native bf16 (no AVX512-BF16/AMX): torch emulates it; the quality "
                  "figures hold, the timings say little about bf16 hardware", flush=True)
    start = time.perf_counter()
    model = served_model(base, sut_config, run.device)
    run.log_event("model_preparation", {"dtype": sut_config["dtype"],
                                        "quantization": sut_config.get("quantization", "none"),
                                        "seconds": round(time.perf_counter() - start, 3),
                                        "peak_memory_mb": peak_memory_mb()})

    shakespeare = prompt_sets.shakespeare_tokens(tokenizer, run.data_dir)
    texts = prompt_sets.query_prompts(tokenizer, run.data_dir, shakespeare, sut_config)
    token_ids = prompt_sets.encode(tokenizer, texts)
    run.log_event("prompt_set", {"task": sut_config["task"], **prompt_sets.fingerprint(texts, token_ids)})

    # Quality, untimed: the perplexity of the held-out text under the served model and under the fp32 model.
    held_out = prompt_sets.perplexity_tokens(shakespeare, sut_config["perplexity_tokens"])
    window = sut_config["perplexity_window"]
    fp32_perplexity = perplexity(base, held_out, window)
    served_perplexity = fp32_perplexity if model is base else perplexity(model, held_out, window)
    measured = {"perplexity": served_perplexity, "fp32_perplexity": fp32_perplexity,
                "perplexity_ratio": served_perplexity / fp32_perplexity}
    gates = []
    for key, gate in run.quality["gates"].items():
        if key not in measured:
            raise SystemExit(f"error: benchmark.yaml gates {key!r}, which serve.py does not measure "
                             f"({', '.join(measured)})")
        gates.append(Gate(key, measured[key], gate["target"], gate["direction"]))

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sut = DecodeSUT(model, token_ids, sut_config["output_tokens"], pad_id, sut_config["batch_size"])

    def reference(index):
        return reference_answer(base, token_ids[index], sut_config["output_tokens"])

    return run.serve(sut, total_samples=len(token_ids), reference=reference, gates=gates)


if __name__ == "__main__":
    exit_now(main())
