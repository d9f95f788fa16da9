#!/bin/bash
# Verify the sha256 of the two Speech Commands archives in $DATA_DIR (default <repo>/data) against benchmark.yaml;
# with SYNTHETIC_DATA=1, every file of the synthetic stand-in corpus against its SHA256SUMS.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m common.fetch verify ds_cnn_kws "$@"
