#!/bin/bash
# Download the MovieLens-100K files into $DATA_DIR (default <repo>/data) and verify their sha256.
# Set DATASET_MIRROR to a local directory or base URL to use a mirror instead of the canonical URL.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m common.fetch download micro_dlrm_dram "$@"
