#!/bin/bash
# Prepare nanogpt_infer in $DATA_DIR (default <repo>/data): download TinyShakespeare and verify its sha256, then the
# checkpoint served: $CHECKPOINT if given (its sha256 is recorded), else the reference checkpoint, made by running
# the nanogpt training benchmark (seed 1; minutes on a laptop CPU) when it is not there yet. SMOKE=1: the smoke
# checkpoint (seconds). Set DATASET_MIRROR to a local directory or base URL to use a mirror.
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m common.fetch download nanogpt_infer "$@"
exec "${PYTHON:-python3}" "$WORKLOAD_DIR/prepare_checkpoint.py" make "$@"
