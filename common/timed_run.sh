#!/bin/bash
# Shared body of every workload's run_and_time.sh (MLCommons conventions): the workload script sets BENCHMARK and
# WORKLOAD_DIR and sources this file. A training workload runs train.py once; an inference workload (serve.py,
# kind: inference) runs serve.py once per variant of its definition (VARIANT=<name> runs one), each with its own
# log and LoadGen files (see common/inference.py).
#
#   <suite>/<workload>/run_and_time.sh [SEED]
#
# Environment: DATA_DIR (datasets root, default <repo>/data), LOGFILE (default: the next
# <results>/<submitter>/results/<system>/<benchmark>/result_<i>.txt, see common/results.py; RESULTS_DIR sets
# <results>), SMOKE=1 (tiny test configuration), DEVICE (cuda|mps|cpu), NPROC (processes per node, default 1),
# NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT (multi-node torchrun), PYTHON (interpreter, default python3),
# SAVE_MODEL (training: save the trained model and its lineage there), SYNTHETIC_DATA=1 (training: the definition's
# synthetic stand-in dataset, for data this machine cannot reach; never a valid result), VARIANT (inference: run this variant only;
# LOGFILE needs it). train.py / serve.py verify the dataset (sha256 of every file) before the log file exists and
# refuse a log file that exists.
set -euo pipefail

SEED=${1:-${SEED:-$RANDOM}}
REPO_ROOT=$(cd "$WORKLOAD_DIR/../.." && pwd)
DATA_DIR=${DATA_DIR:-$REPO_ROOT/data}
NPROC=${NPROC:-1}
NNODES=${NNODES:-1}
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ ! -d "$DATA_DIR" ]; then
  echo "error: the datasets folder $DATA_DIR does not exist: run $WORKLOAD_DIR/download_dataset.sh first" >&2
  exit 1
fi

# Inference: serve.py once per variant (LoadGen's accuracy run, then its performance run), each variant into
# <results>/.../<benchmark>/<variant>/result_<i>.txt. Exit code: the first failing variant's, after all ran.
run_inference() {
  if [ "$NPROC" -gt 1 ] || [ "$NNODES" -gt 1 ]; then
    echo "error: $BENCHMARK is an inference benchmark: it runs in one process (unset NPROC and NNODES)" >&2
    return 2
  fi
  local variants variant log ret=0 code
  if [ -n "${VARIANT:-}" ]; then
    variants=("$VARIANT")
  else
    mapfile -t variants < <("$PYTHON" -m common.benchmark variants "$WORKLOAD_DIR")
    [ "${#variants[@]}" -gt 0 ] || { echo "error: $BENCHMARK defines no performance variants" >&2; return 1; }
  fi
  if [ -n "${LOGFILE:-}" ] && [ "${#variants[@]}" -gt 1 ]; then
    echo "error: LOGFILE names one log, but $BENCHMARK has ${#variants[@]} variants: set VARIANT too" >&2
    return 2
  fi
  for variant in "${variants[@]}"; do
    log=${LOGFILE:-$("$PYTHON" -m common.results next-log "$BENCHMARK" --variant "$variant" "${smoke_flag[@]}")}
    echo "STARTING $BENCHMARK $variant AT $(date +%Y-%m-%d\ %r)"
    args=(--variant "$variant" --seed "$SEED" --data-dir "$DATA_DIR" --log-file "$log" "${smoke_flag[@]}")
    [ -n "${DEVICE:-}" ] && args+=(--device "$DEVICE")
    set +e
    "$PYTHON" "$WORKLOAD_DIR/serve.py" "${args[@]}"
    code=$?
    set -e
    echo "ENDING $BENCHMARK $variant AT $(date +%Y-%m-%d\ %r): exit code $code"
    echo "MLPerf log: $log"
    [ $code -ne 0 ] && [ $ret -eq 0 ] && ret=$code
  done
  return $ret
}

smoke_flag=()
[ "${SMOKE:-0}" = 1 ] && smoke_flag=(--smoke)
if [ -f "$WORKLOAD_DIR/serve.py" ]; then
  run_inference
  exit $?
fi
if [ -z "${LOGFILE:-}" ]; then
  LOGFILE=$("$PYTHON" -m common.results next-log "$BENCHMARK" "${smoke_flag[@]}")
fi
start=$(date +%s)
start_fmt=$(date +%Y-%m-%d\ %r)
echo "STARTING TIMING RUN AT $start_fmt"

# The cache clear of MLCommons references happens in train.py, for the dataset's files only (posix_fadvise):
# dropping every cache would also evict the Python and torch libraries and slow every start.

args=(--seed "$SEED" --data-dir "$DATA_DIR" --log-file "$LOGFILE" "${smoke_flag[@]}")
[ -n "${DEVICE:-}" ] && args+=(--device "$DEVICE")
[ "${SYNTHETIC_DATA:-0}" = 1 ] && args+=(--synthetic-data)

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
