#!/bin/bash
# Download SST-2's train.tsv and dev.tsv into $DATA_DIR/sst2/ (default <repo>/data) and verify their sha256.
# With DATASET_MIRROR (a local directory or base URL holding sst2/train.tsv and sst2/dev.tsv) the files come from
# the mirror through common/fetch.py. Without it, glue_archive.py downloads the canonical GLUE archive
# (https://dl.fbaipublicfiles.com/glue/data/SST-2.zip), unpacks the two members and deletes the archive; either way
# the files are then checked against benchmark.yaml.
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${DATASET_MIRROR:-}" ]; then
  "${PYTHON:-python3}" "$WORKLOAD_DIR/glue_archive.py" "$@"
fi
exec "${PYTHON:-python3}" -m common.fetch download micro_bert "$@"
