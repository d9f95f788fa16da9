#!/bin/bash
# Build the suite's base OS image from Debian packages alone: debootstrap bookworm (minbase + python3,
# python3-venv, ca-certificates) and `docker import`. No registry is involved, so it works where Docker Hub is
# unreachable (CI, air-gapped clusters with a Debian mirror). Either flavour builds on it:
#   invoke build <workload> --base-image mlperf-teach/bookworm-offline:py3.11 [--flavour cuda]
#
#   docker/offline_base.sh [TAG]          default TAG: mlperf-teach/bookworm-offline:py3.11
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian; a local mirror, or a dated snapshot such as
# http://snapshot.debian.org/archive/debian/20250520T000000Z/ to get the same package versions a term later),
# FORCE=1 to rebuild when TAG exists (by default an existing TAG is kept: the image is cached across runs).
# Needs root (debootstrap), debootstrap (installed from Debian's packages when missing) and a Docker engine.
set -euo pipefail

TAG=${1:-mlperf-teach/bookworm-offline:py3.11}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "offline base $TAG exists ($(docker image inspect -f '{{.Id}}' "$TAG")); FORCE=1 rebuilds it"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: debootstrap needs root; run docker/offline_base.sh as root" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "== installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
fi

target=$(mktemp -d /var/tmp/offline-base.XXXXXX)
trap 'rm -rf "$target"' EXIT
start=$(date +%s)
echo "== debootstrap bookworm from $MIRROR into $target"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$target" "$MIRROR" \
  > "$target.log" 2>&1 || { tail -n 30 "$target.log" >&2; rm -f "$target.log"; exit 1; }
rm -f "$target.log"
# Package caches and lists are not needed at run time; the mirror stays configured for derived images.
rm -rf "$target"/var/cache/apt/archives/*.deb "$target"/var/lib/apt/lists/* "$target"/var/log/* "$target"/tmp/*
echo "deb $MIRROR bookworm main" > "$target/etc/apt/sources.list"
packages=$(chroot "$target" dpkg-query -W -f '${Package}=${Version}\n' | sha256sum | cut -c1-16)
python=$(chroot "$target" python3 --version)

echo "== docker import $TAG"
tar --numeric-owner -C "$target" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --change "LABEL org.mlperf-teach.role=offline-base org.mlperf-teach.debian-mirror=$MIRROR" \
  --change "LABEL org.mlperf-teach.dpkg-sha256=$packages" \
  - "$TAG" >/dev/null
echo "offline base $TAG: $(docker image inspect -f '{{.Id}}' "$TAG"), $python, dpkg list sha256 $packages," \
     "$(( $(date +%s) - start )) s"
