#!/bin/bash
# Download Speech Commands v0.02 (the main archive and the test-set archive) into $DATA_DIR/speech_commands/
# (default <repo>/data), verify their sha256, and unpack each beside itself. Set DATASET_MIRROR to a local directory
# or base URL to use a mirror instead of the canonical URLs.
# SYNTHETIC_DATA=1 (or --synthetic; --smoke for the small one) writes the espeak-ng stand-in corpus instead
# (make_synthetic_speech_commands.py; needs espeak-ng): for machines that cannot reach the archives; never a
# benchmark result.
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m common.fetch download ds_cnn_kws "$@"
synthetic=${SYNTHETIC_DATA:-0}
for arg in "$@"; do [ "$arg" = --synthetic ] && synthetic=1; done
if [ "$synthetic" != 1 ]; then
  "${PYTHON:-python3}" "$WORKLOAD_DIR/speech_commands.py" extract "$@"
fi
