#!/bin/bash
# Download the Visual Wake Words archive (MLPerf Tiny's vw_coco2014_96.tar.gz) into $DATA_DIR/vww/ (default
# <repo>/data), verify its sha256 and extract it beside itself (extract_dataset.py: also checks Silicon Labs'
# published SHA-1; skipped when already extracted from the same archive).
# Set DATASET_MIRROR to a local directory or base URL to use a mirror instead of the canonical URL.
# SYNTHETIC_DATA=1 writes the synthetic pipeline fixture instead (make_fixture.py; --smoke for the small one):
# it is for tests, and a result on it is never valid.
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m common.fetch download micronet_vww "$@"
if [ "${SYNTHETIC_DATA:-0}" != 1 ]; then
  exec "${PYTHON:-python3}" "$WORKLOAD_DIR/extract_dataset.py" "$@"
fi
