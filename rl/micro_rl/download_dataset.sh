#!/bin/bash
# Nothing to download: CartPole-v1 is simulated by gymnasium (rl/micro_rl/requirements.txt pins it). This checks
# that the installed gymnasium registers CartPole-v1 as the benchmark expects (verify_dataset.sh).
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
echo "micro_rl: no dataset to download (gymnasium simulates CartPole-v1)"
exec "$WORKLOAD_DIR/verify_dataset.sh" "$@"
