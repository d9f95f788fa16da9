#!/bin/bash
# Nothing was downloaded (CartPole-v1 is simulated by gymnasium): check that the installed gymnasium is the pinned
# one and registers CartPole-v1 with its 500-step limit.
set -euo pipefail
WORKLOAD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"${PYTHON:-python3}" - "$WORKLOAD_DIR/requirements.txt" <<'PY'
import sys
try:
    import gymnasium
except ImportError:
    sys.exit(f"micro_rl: gymnasium is not installed for {sys.executable}: pip install -r rl/micro_rl/requirements.txt (or set PYTHON)")
pinned = next(line.split("==")[1].strip() for line in open(sys.argv[1]) if line.startswith("gymnasium=="))
if gymnasium.__version__ != pinned:
    sys.exit(f"micro_rl: gymnasium {gymnasium.__version__} is installed but requirements.txt pins {pinned}")
spec = gymnasium.spec("CartPole-v1")
if spec.max_episode_steps != 500:
    sys.exit(f"micro_rl: CartPole-v1 has max_episode_steps {spec.max_episode_steps}, not 500")
print(f"micro_rl: gymnasium {gymnasium.__version__} registers CartPole-v1 with max_episode_steps 500")
PY
