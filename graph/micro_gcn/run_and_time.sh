#!/bin/bash
# Time one micro_gcn training run: ./run_and_time.sh <seed>. Environment variables: see common/run_and_time.sh.
BENCHMARK=micro_gcn
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$WORKLOAD_DIR/../../common/run_and_time.sh"
