"""The naive baseline: the same prompts answered by plain `model.generate` (greedy, one prompt at a time, no
LoadGen), to compare with the SUT's own loop on the same queries (serve.py --bare-loop N, same variant).

    python slm/smollm2/naive_generate.py --variant baseline --queries 64 [--smoke] [--data-dir data]

Prints one JSON line: latency percentiles of a whole answer, tokens/s, and the model's load time and peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import prompts as prompt_sets  # noqa: E402
from common import benchmark, loadgen  # noqa: E402
from common.inference import peak_memory_mb  # noqa: E402
from generate import reference_answer  # noqa: E402
from serve import load, served_model  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    args = parser.parse_args(argv)
    definition = benchmark.load(HERE, smoke=args.smoke)
    config = loadgen.sut_config(definition, args.variant)
    device = torch.device("cpu")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    tokenizer, base, record = load(definition, args.data_dir, device)
    model = served_model(base, config, device)
    shakespeare = prompt_sets.shakespeare_tokens(tokenizer, args.data_dir)
    texts = prompt_sets.query_prompts(tokenizer, args.data_dir, shakespeare, config)
    token_ids = prompt_sets.encode(tokenizer, texts)
    reference_answer(model, token_ids[0], config["output_tokens"])  # warm-up, as LoadGen's first query also is
    latencies, tokens = [], 0
    start = time.perf_counter()
    for i in range(args.queries):
        t0 = time.perf_counter()
        tokens += len(reference_answer(model, token_ids[i % len(token_ids)], config["output_tokens"]))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    print(json.dumps({"variant": args.variant, "naive": "model.generate", "queries": args.queries,
                      "p50_latency_ms": 1e3 * cuts[49], "p90_latency_ms": 1e3 * cuts[89],
                      "p99_latency_ms": 1e3 * cuts[98], "tokens_per_second": tokens / elapsed,
                      "load_seconds": record["load_seconds"], "peak_memory_mb": peak_memory_mb()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
