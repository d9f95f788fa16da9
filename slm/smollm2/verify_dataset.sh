#!/bin/bash
# Verify the sha256 of MBPP and TinyShakespeare in $DATA_DIR (default <repo>/data) against benchmark.yaml, and of
# every file of the prepared weights (SMOLLM2_SOURCE) against the sha256 recorded when they were prepared.
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m common.fetch verify smollm2 "$@"
exec "${PYTHON:-python3}" -m common.smollm2 verify smollm2 "$@"
