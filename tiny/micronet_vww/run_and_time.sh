#!/bin/bash
# Time one MobileNetV1 x0.25 Visual Wake Words training run: ./run_and_time.sh <seed>. Environment variables: see
# common/timed_run.sh (SYNTHETIC_DATA=1: train on the synthetic pipeline fixture; never a valid result).
BENCHMARK=micronet_vww
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$WORKLOAD_DIR/../../common/timed_run.sh"
