#!/bin/bash
# Verify the sha256 of TinyShakespeare in $DATA_DIR (default <repo>/data) against benchmark.yaml, and of the
# checkpoint against the sha256 recorded when it was made or brought (SMOKE=1: the smoke checkpoint).
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m common.fetch verify nanogpt_infer "$@"
exec "${PYTHON:-python3}" "$WORKLOAD_DIR/prepare_checkpoint.py" verify "$@"
