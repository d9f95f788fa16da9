#!/bin/bash
# agent/codegen under LoadGen: ./run_and_time.sh <seed> runs every variant (VARIANT=<name>: one).
# Environment variables: see common/timed_run.sh; SMOLLM2_SOURCE=offline|hub chooses the prepared weights.
BENCHMARK=codegen
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$WORKLOAD_DIR/../../common/timed_run.sh"
