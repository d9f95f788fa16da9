#!/bin/bash
# Time one micro_bert training run: ./run_and_time.sh <seed>. Environment variables: see common/timed_run.sh.
BENCHMARK=micro_bert
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$WORKLOAD_DIR/../../common/timed_run.sh"
