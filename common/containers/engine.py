"""The Docker engine and the names every part of the machinery shares: labels, flavours, base images, errors.

The Docker SDK is imported inside the functions that need it, never at module import time: importing
common.containers (tasks.py does, for every task) works without the SDK installed and without an engine.
"""
from __future__ import annotations

import os

from common.benchmark import REPO_ROOT

ROOT = REPO_ROOT
NAMESPACE = "mlperf-teach"
LABEL = "org.mlperf-teach"
FLAVOURS = ("cpu", "cuda")
DEFAULT_BASE_IMAGES = {"cpu": "python:3.11-slim-bookworm", "cuda": "nvidia/cuda:13.0.2-base-ubuntu22.04"}
OFFLINE_BASE_IMAGE = f"{NAMESPACE}/bookworm-offline:py3.11"   # docker/offline_base.sh's default tag
BENCH_UID = 10001                                              # the image's user `bench` (docker/base/setup.sh)


class DockerError(Exception):
    """A problem the user has to fix; the message is one sentence."""


def log(message: str = "") -> None:
    print(message, flush=True)


def client():
    """The Docker engine named by the environment (DOCKER_HOST, else the local socket), or DockerError."""
    import docker

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        engine = docker.from_env(timeout=3600)  # a large layer commits for minutes without output
        engine.ping()
        return engine
    except Exception as error:  # DockerException, requests' ConnectionError, OSError: all mean "no engine"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise DockerError(f"no Docker engine is reachable at {where} ({reason}); start one (dockerd, Docker "
                          "Desktop) or run without --docker") from None


def find_image(engine, reference: str):
    """The image named reference, or None."""
    import docker

    try:
        return engine.images.get(reference)
    except docker.errors.ImageNotFound:
        return None


def newest(engine, *labels: str):
    """The most recently created image carrying every label (`key=value`), or None."""
    found = engine.images.list(filters={"label": list(labels)})
    return max(found, key=lambda image: image.attrs["Created"], default=None)
