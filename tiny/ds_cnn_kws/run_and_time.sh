#!/bin/bash
# Time one DS-CNN keyword-spotting training run: ./run_and_time.sh <seed>. Environment variables: see
# common/timed_run.sh (SYNTHETIC_DATA=1: the espeak-ng stand-in corpus, never a benchmark result).
BENCHMARK=ds_cnn_kws
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$WORKLOAD_DIR/../../common/timed_run.sh"
