#!/bin/bash
# CI's container end-to-end step (.ci/run calls it after the test suite):
#   1. a Docker engine: the running one, else Debian's docker.io is installed and dockerd started as root;
#   2. the offline base image (docker/offline_base.sh: debootstrap + docker import; kept between runs);
#   3. the images the end-to-end tests run, nanogpt and nanogpt_infer (invoke build: the Docker SDK, wheels from
#      the host-side cache, kept between runs);
#   4. tests/test_docker.py -m docker with REQUIRE_DOCKER=1: the smoke configs in their containers with
#      --network none (nanogpt: the log checked against the submission checker's schemas; nanogpt_infer: every
#      variant, its logs and LoadGen's files passed by the checker), the container's isolation probed.
# Exit status: 0 when the test passed (CONTAINER_TEST_STATUS=PASSED), and also 0 when no engine could be started,
# after a loud banner (CONTAINER_TEST_STATUS=NOT_RUN: .ci/run decides); 1 when the engine ran and a step failed
# (CONTAINER_TEST_STATUS=FAILED). A dockerd started here is stopped on exit; images and caches stay on disk.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
OFFLINE_BASE=mlperf-teach/bookworm-offline:py3.11
WORKLOADS=(nanogpt nanogpt_infer)  # the images tests/test_docker.py -m docker runs
DOCKERD_LOG=/var/log/dockerd-ci.log
start=$(date +%s)
started_dockerd=

banner() {
  local rule="################################################################################"
  printf '\n%s\n### %s\n%s\n\n' "$rule" "$*" "$rule"
}
finish() {  # finish PASSED|NOT_RUN|FAILED MESSAGE
  local verdict=$1 code=0
  [ "$1" = NOT_RUN ] && verdict="DID NOT RUN"
  [ "$1" = FAILED ] && code=1
  banner "CONTAINER TEST $verdict: $2 ($(( $(date +%s) - start )) s)"
  echo "CONTAINER_TEST_STATUS=$1"
  exit "$code"
}
stop_dockerd() {
  if [ -n "$started_dockerd" ] && kill -0 "$started_dockerd" 2>/dev/null; then
    kill "$started_dockerd" && wait "$started_dockerd" 2>/dev/null
  fi
}
trap stop_dockerd EXIT
engine_up() { "$PYTHON" -c 'import docker; docker.from_env(timeout=10).ping()' >/dev/null 2>&1; }
step() { echo "== [$(( $(date +%s) - start )) s] $*"; }

# 1. engine
if ! engine_up; then
  if [ "$(id -u)" != 0 ]; then
    finish NOT_RUN "no Docker engine is reachable, and starting one needs root"
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    step "installing docker.io (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q docker.io || { apt-get update -q && apt-get install -y -q docker.io; }; } >/dev/null 2>&1 ||
      finish NOT_RUN "no Docker engine, and apt-get install docker.io failed"
  fi
  step "starting dockerd (log: $DOCKERD_LOG)"
  setsid dockerd </dev/null >"$DOCKERD_LOG" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 60); do engine_up && break; kill -0 "$started_dockerd" 2>/dev/null || break; sleep 1; done
  if ! engine_up; then
    tail -n 5 "$DOCKERD_LOG" 2>/dev/null | sed 's/^/    dockerd: /'
    finish NOT_RUN "dockerd did not start (see $DOCKERD_LOG)"
  fi
fi
driver=$("$PYTHON" -c 'import docker; print(docker.from_env().info()["Driver"])')
step "Docker engine up (storage driver $driver)"
[ "$driver" = vfs ] && echo "warning: the vfs storage driver copies every layer: builds are slow and disk hungry"

# 2. offline base (Docker Hub is not reachable from CI)
step "offline base image: bash docker/offline_base.sh"
bash docker/offline_base.sh "$OFFLINE_BASE" || finish FAILED "the offline base image did not build"

# 3. the workload images (nothing to do when unchanged; a code change rebuilds only the code layers)
for workload in "${WORKLOADS[@]}"; do
  step "invoke build $workload --base-image $OFFLINE_BASE"
  "$PYTHON" -m invoke build "$workload" --base-image "$OFFLINE_BASE" ||
    finish FAILED "the $workload image did not build"
done

# 4. the smoke runs in the containers, their results validated
step "REQUIRE_DOCKER=1 pytest -m docker tests/test_docker.py"
REQUIRE_DOCKER=1 "$PYTHON" -m pytest -v -p no:cacheprovider -m docker -rfEs tests/test_docker.py ||
  finish FAILED "the container end-to-end test failed"
finish PASSED "the smoke runs of ${WORKLOADS[*]} in their containers (--network none) produced valid results"
