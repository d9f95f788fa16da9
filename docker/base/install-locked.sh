#!/bin/sh
# install-locked <lock>: pip-install a hash-locked requirements file into /opt/venv. Every file is checked against
# the lock's sha256 (--require-hashes), binary wheels only, nothing outside the lock (a missing pin is an error).
#   WHEELS_URL set:  from that wheel server only, no index (tasks.py serves its host-side wheel cache there);
#   otherwise:       from PIP_INDEX_URL (default PyPI), through the build's proxy settings, trusting the system
#                    CA bundle plus any extra bundle that tasks.py put in /tmp/build-ca/*.pem.
set -eu
lock=$1
set -- --no-cache-dir --disable-pip-version-check --no-input --require-hashes --only-binary=:all: -r "$lock"
if [ -n "${WHEELS_URL:-}" ]; then
  /opt/venv/bin/pip install --no-index --find-links "$WHEELS_URL" "$@"
else
  cert=/etc/ssl/certs/ca-certificates.crt
  if ls /tmp/build-ca/*.pem >/dev/null 2>&1; then
    cat /etc/ssl/certs/ca-certificates.crt /tmp/build-ca/*.pem > /tmp/pip-ca.pem
    cert=/tmp/pip-ca.pem
  fi
  /opt/venv/bin/pip install --index-url "${PIP_INDEX_URL:-https://pypi.org/simple}" --cert "$cert" "$@"
fi
rm -rf /tmp/build-ca /tmp/pip-ca.pem
