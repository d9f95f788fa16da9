# CPU base of every workload image: Python 3.11 on Debian bookworm, the virtualenv /opt/venv, the non-root user
# `bench`, /data and /results (docker/README.md). Built by tasks.py (`invoke build`), tagged by content.
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
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
LABEL org.mlperf-teach.role=base org.mlperf-teach.flavour=cpu
