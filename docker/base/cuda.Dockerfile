# CUDA base of every workload image: as cpu.Dockerfile, on an NVIDIA CUDA image. PyPI's torch wheel for Linux
# x86_64 carries its own CUDA 13 user-space libraries (the nvidia-* wheels in the lock), so the image needs from
# the host only the NVIDIA driver, which the NVIDIA Container Toolkit mounts in at `docker run --gpus` time
# (driver >= 580 for CUDA 13). The lock is the CPU flavour's lock (docker/README.md).
#
# BASE_IMAGE: any Debian/Ubuntu image with CPython 3.11, its venv module and CA certificates, or an Ubuntu image
# whose packages provide them:
#   nvidia/cuda:13.0.2-base-ubuntu22.04 (default; official NVIDIA image; Ubuntu 22.04's python3.11 package is
#     installed at build time, which needs an Ubuntu mirror; pin the image by digest to freeze it), or
#   mlperf-teach/bookworm-offline:py3.11 from docker/offline_base.sh (air-gapped sites: nothing to download).
ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu22.04
FROM ${BASE_IMAGE}
COPY docker/base/setup.sh /opt/suite-setup/setup.sh
COPY docker/base/install-locked.sh /usr/local/bin/install-locked
RUN sh /opt/suite-setup/setup.sh && rm -rf /opt/suite-setup
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data RESULTS_DIR=/results PYTHON=python \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /opt/suite
# The start of every workload image's build (ONBUILD runs these right after its FROM): the build arguments
# `invoke build` passes (LOCK: requirements.lock, or requirements-<flavour>.lock where a flavour needs its own;
# WHEELS_URL: the host-side wheel cache; PIP_INDEX_URL with --from-index) and the extra CA bundle for pip.
ONBUILD ARG LOCK=requirements.lock
ONBUILD ARG WHEELS_URL=
ONBUILD ARG PIP_INDEX_URL=https://pypi.org/simple
ONBUILD COPY docker/build-ca/ /tmp/build-ca/
LABEL org.mlperf-teach.role=base org.mlperf-teach.flavour=cuda
