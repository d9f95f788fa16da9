#!/bin/bash
# Time one run of Lab 1's slow ResNet-18 baseline: ./run_and_time.sh <seed> (open division; the log goes where
# vision/resnet18's would, under results/<submitter>/results/<system>/resnet18/). Environment: common/timed_run.sh.
BENCHMARK=resnet18
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SUBMISSION_DIVISION=${SUBMISSION_DIVISION:-open}
source "$WORKLOAD_DIR/../../common/timed_run.sh"
