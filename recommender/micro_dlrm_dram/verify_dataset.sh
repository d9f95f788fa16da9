#!/bin/bash
# Verify the sha256 of every MovieLens-100K file in $DATA_DIR (default <repo>/data) against benchmark.yaml.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m common.fetch verify micro_dlrm_dram "$@"
