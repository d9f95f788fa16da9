#!/bin/sh
# Shared by cpu.Dockerfile and cuda.Dockerfile (run once, as root, while the base image builds):
#   - Python 3.11 with venv: taken from the image when it has it (the python image, the offline base), otherwise
#     installed from the distribution's packages (Ubuntu 22.04 CUDA images; needs the distribution's mirror);
#   - the virtualenv /opt/venv that every workload installs its locked requirements into;
#   - the non-root user `bench` (uid/gid 10001) that containers run as;
#   - /data (mount point of the read-only datasets) and /results (logs).
set -eu

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

python=$(find_python || true)
if [ -z "$python" ] && command -v apt-get >/dev/null 2>&1; then
  echo "base image has no Python 3.11 with venv: installing it from the distribution's packages"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates
  rm -rf /var/lib/apt/lists/*
  python=$(find_python || true)
fi
if [ -z "$python" ]; then
  echo "error: BASE_IMAGE has no Python 3.11 with the venv module (the locks are for CPython 3.11)" >&2
  exit 1
fi
if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then
  echo "error: BASE_IMAGE has no CA certificates (/etc/ssl/certs/ca-certificates.crt)" >&2
  exit 1
fi

"$python" -m venv /opt/venv
echo "virtualenv /opt/venv: $(/opt/venv/bin/python --version) from $python"

# The user is written directly: minimal images (debootstrap minbase) have no useradd.
if ! grep -q '^bench:' /etc/passwd; then
  echo 'bench:x:10001:10001:benchmark runner:/home/bench:/bin/sh' >> /etc/passwd
  echo 'bench:x:10001:' >> /etc/group
fi
mkdir -p /home/bench /data /results
chown 10001:10001 /home/bench /results
chmod 0755 /data
