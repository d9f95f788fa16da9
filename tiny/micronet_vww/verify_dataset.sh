#!/bin/bash
# Verify the sha256 of the Visual Wake Words archive in $DATA_DIR (default <repo>/data) against benchmark.yaml
# (SYNTHETIC_DATA=1: every file of the synthetic fixture against its SHA256SUMS).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m common.fetch verify micronet_vww "$@"
