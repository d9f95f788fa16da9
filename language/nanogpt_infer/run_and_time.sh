#!/bin/bash
# Serve the nanogpt checkpoint under LoadGen: ./run_and_time.sh <seed> runs every variant (VARIANT=<name>: one).
# Environment variables: see common/timed_run.sh; CHECKPOINT overrides the checkpoint (download_dataset.sh).
BENCHMARK=nanogpt_infer
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$WORKLOAD_DIR/../../common/timed_run.sh"
