#!/bin/bash
# Shared body of every training workload's run_and_time.sh (MLCommons conventions): the workload script sets
# BENCHMARK and WORKLOAD_DIR and sources this file.
#
#   <suite>/<workload>/run_and_time.sh [SEED]
#
# Environment: DATA_DIR (datasets root, default <repo>/data), LOGDIR (default <repo>/results/<benchmark>),
# LOGFILE (default $LOGDIR/<benchmark>_seed<SEED>.txt), SMOKE=1 (tiny test configuration), DEVICE (cuda|mps|cpu),
# NPROC (processes per node, default 1), NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT (multi-node torchrun),
# PYTHON (interpreter, default python3).
set -euo pipefail

SEED=${1:-${SEED:-$RANDOM}}
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
DATA_DIR=${DATA_DIR:-$REPO_ROOT/data}
LOGDIR=${LOGDIR:-$REPO_ROOT/results/$BENCHMARK}
LOGFILE=${LOGFILE:-$LOGDIR/${BENCHMARK}_seed${SEED}.txt}
NPROC=${NPROC:-1}
NNODES=${NNODES:-1}
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -m common.fetch verify "$BENCHMARK" --data-dir "$DATA_DIR"; then
  echo "dataset for $BENCHMARK is not ready in $DATA_DIR: run $WORKLOAD_DIR/download_dataset.sh" >&2
  exit 1
fi
mkdir -p "$(dirname "$LOGFILE")"

start=$(date +%s)
start_fmt=$(date +%Y-%m-%d\ %r)
echo "STARTING TIMING RUN AT $start_fmt"

# Clear the page cache as the MLCommons references do; only root may, so others skip it (logged as cache_clear).
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ]; then
  sync && echo 3 > /proc/sys/vm/drop_caches || true
fi

args=(--seed "$SEED" --data-dir "$DATA_DIR" --log-file "$LOGFILE")
[ "${SMOKE:-0}" = 1 ] && args+=(--smoke)
[ -n "${DEVICE:-}" ] && args+=(--device "$DEVICE")

set +e  # a failed run still prints ENDING TIMING RUN and its exit code
if [ "$NPROC" -gt 1 ] || [ "$NNODES" -gt 1 ]; then
  if [ "$NNODES" -gt 1 ]; then
    rdzv=(--nnodes "$NNODES" --node_rank "${NODE_RANK:?set NODE_RANK}" \
          --master_addr "${MASTER_ADDR:?set MASTER_ADDR}" --master_port "${MASTER_PORT:-29500}")
  else
    rdzv=(--standalone)
  fi
  "$PYTHON" -m torch.distributed.run "${rdzv[@]}" --nproc_per_node "$NPROC" "$WORKLOAD_DIR/train.py" "${args[@]}"
else
  "$PYTHON" "$WORKLOAD_DIR/train.py" "${args[@]}"
fi
ret_code=$?
set -e

end=$(date +%s)
end_fmt=$(date +%Y-%m-%d\ %r)
echo "ENDING TIMING RUN AT $end_fmt"
if [ $ret_code -ne 0 ]; then
  echo "$BENCHMARK run with seed $SEED failed with exit code $ret_code" >&2
  exit $ret_code
fi
result=$(( end - start ))
echo "RESULT,$BENCHMARK,$SEED,$result,${USER:-$(id -un)},$start_fmt"
echo "MLPerf log: $LOGFILE"
