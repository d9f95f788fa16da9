#!/bin/bash
# Time one ResNet-18 training run: ./run_and_time.sh <seed>. Environment variables: see common/timed_run.sh.
BENCHMARK=resnet18
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$WORKLOAD_DIR/../../common/timed_run.sh"
