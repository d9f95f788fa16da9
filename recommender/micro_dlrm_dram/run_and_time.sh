#!/bin/bash
# Time one micro_dlrm_dram training run: ./run_and_time.sh <seed>. Environment variables: see common/timed_run.sh.
BENCHMARK=micro_dlrm_dram
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$WORKLOAD_DIR/../../common/timed_run.sh"
