"""Docker images of the workloads, driven through the Docker SDK by tasks.py (`invoke build`, `invoke run --docker`,
`invoke lock`, `invoke clean`); docker/README.md explains the design and how course staff pin and verify.

    engine.py    the engine (client), DockerError, labels, flavours and default base images
    locks.py     requirements and hash-locked closures (read_pins, compile_locks), the host-side wheel cache
    images.py    build contexts, content-hash tags, base and workload images: build, verify
    runs.py      runs in containers (container_options, run: one per inference variant), written in
                 common/results.py's layout with LoadGen's files beside an inference log
    cleanup.py   clean

This is an ordinary package of the harness (the repository root on sys.path, as for all of common/). The Docker
SDK, which is also imported as `docker`, is imported inside the functions that use it, and docker/ (Dockerfiles
and shell scripts) has no __init__.py, so it never shadows the SDK.
"""
from common.containers.cleanup import clean
from common.containers.engine import DockerError, client
from common.containers.images import build, verify
from common.containers.locks import canonical, compile_locks, read_pins, requirement_pins
from common.containers.runs import RunResult, run

__all__ = ["DockerError", "RunResult", "build", "canonical", "clean", "client", "compile_locks", "read_pins",
           "requirement_pins", "run", "verify"]
