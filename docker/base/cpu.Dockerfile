# CPU base of every workload image: Python 3.11 on Debian bookworm, the virtualenv /opt/venv, the non-root user
# `bench`, /data, /results, the working directory /opt/suite, the run environment and the build arguments every
# workload image uses (docker/README.md). Built by `invoke build` (common/containers/), tagged by content.
#
# BASE_IMAGE: any Debian/Ubuntu image with CPython 3.11, its venv module and CA certificates:
#   python:3.11-slim-bookworm (default; official image, pulled from Docker Hub; pin it as
#     python:3.11-slim-bookworm@sha256:<digest> to freeze it for a term), or
#   mlperf-teach/bookworm-offline:py3.11, built from Debian packages alone by docker/offline_base.sh (air-gapped
#     sites, CI).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
COPY docker/base/setup.sh /opt/suite-setup/setup.sh
COPY docker/base/install-locked.sh /usr/local/bin/install-locked
RUN sh /opt/suite-setup/setup.sh && rm -rf /opt/suite-setup
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data RESULTS_DIR=/results PYTHON=python
WORKDIR /opt/suite
# The start of every workload image's build (ONBUILD runs these right after its FROM): the build arguments
# `invoke build` passes (LOCK: requirements.lock, or requirements-<flavour>.lock where a flavour needs its own;
# WHEELS_URL: the host-side wheel cache; PIP_INDEX_URL with --from-index) and the extra CA bundle for pip.
ONBUILD ARG LOCK=requirements.lock
ONBUILD ARG WHEELS_URL=
ONBUILD ARG PIP_INDEX_URL=https://pypi.org/simple
ONBUILD COPY docker/build-ca/ /tmp/build-ca/
LABEL org.mlperf-teach.role=base org.mlperf-teach.flavour=cpu
