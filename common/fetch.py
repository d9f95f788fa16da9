"""Dataset download and verification, used by every workload's download_dataset.sh and verify_dataset.sh.

Files, canonical URLs and sha256 sums come from the workload's benchmark.yaml. A mirror replaces the canonical
host: DATASET_MIRROR is either a local directory or a base URL (http://, https://, file://) under which each
file sits at the same relative path as under $DATA_DIR (that is also how air-gapped clusters use it).

Downloads are atomic (temporary file, verify, rename: a checksum failure leaves no partial file behind and
names the file, the expected and the actual hash) and idempotent (a file already present with the right
sha256 is not fetched again).

    python -m common.fetch download <workload> [--data-dir DIR]
    python -m common.fetch verify <workload> [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from common import benchmark

CHUNK = 1 << 20
MIRROR_ENV = "DATASET_MIRROR"
DATA_DIR_ENV = "DATA_DIR"


class DatasetError(Exception):
    """An expected dataset failure; its message is one sentence meant for the user."""


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, benchmark.REPO_ROOT / "data"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_for(entry: dict, mirror: str | None) -> str:
    """Where to read one file from: the mirror when one is set, the canonical URL otherwise."""
    if not mirror:
        return entry["url"]
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + urllib.parse.quote(entry["path"])
    return str(Path(mirror) / entry["path"])


def _open_source(source: str):
    if "://" not in source:
        if not Path(source).is_file():
            raise DatasetError(f"mirror file {source} does not exist")
        return open(source, "rb"), os.path.getsize(source)
    try:
        response = urllib.request.urlopen(source, timeout=60)
    except OSError as error:
        raise DatasetError(f"cannot download {source}: {error}") from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length else None


def _progress(total: int | None, name: str, enabled: bool):
    from tqdm import tqdm  # imported here so that `verify` and the checker never need it

    return tqdm(total=total, desc=name, unit="B", unit_scale=True, disable=not enabled, leave=False)


def fetch_file(entry: dict, data_dir: Path, mirror: str | None = None, progress: bool = True) -> bool:
    """Make data_dir/entry['path'] exist with the expected sha256. Returns True if it was downloaded."""
    dest = data_dir / entry["path"]
    if dest.is_file() and sha256_of(dest) == entry["sha256"]:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = source_for(entry, mirror)
    stream, total = _open_source(source)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600; datasets are read by other users (e.g. a container's)
    try:
        with stream, os.fdopen(fd, "wb") as out, _progress(total, dest.name, progress) as bar:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
        actual = digest.hexdigest()
        if actual != entry["sha256"]:
            raise DatasetError(
                f"checksum mismatch for {entry['path']} from {source}: expected sha256 {entry['sha256']}, "
                f"got {actual}; the partial file was deleted"
            )
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return True


def verify_file(entry: dict, data_dir: Path) -> str:
    """Return the file's sha256, or raise DatasetError saying which file is missing or wrong."""
    path = data_dir / entry["path"]
    if not path.is_file():
        raise DatasetError(f"dataset file {path} is missing; run download_dataset.sh first")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise DatasetError(f"checksum mismatch for {path}: expected sha256 {entry['sha256']}, got {actual}")
    return actual


def download(definition: dict, data_dir: Path | None = None, mirror: str | None = None, progress: bool = True):
    data_dir = Path(data_dir or default_data_dir())
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    return [fetch_file(entry, data_dir, mirror, progress) for entry in definition["dataset"]["files"]]


def verify(definition: dict, data_dir: Path | None = None) -> dict[str, str]:
    """Check every dataset file of a definition; returns {relative path: sha256}."""
    data_dir = Path(data_dir or default_data_dir())
    return {entry["path"]: verify_file(entry, data_dir) for entry in definition["dataset"]["files"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Download or verify a workload's dataset files.")
    parser.add_argument("action", choices=["download", "verify"])
    parser.add_argument("workload", help="benchmark name or workload directory")
    parser.add_argument("--data-dir", type=Path, default=None, help=f"default: ${DATA_DIR_ENV} or <repo>/data")
    args = parser.parse_args(argv)
    try:
        definition = benchmark.load(args.workload)
        data_dir = Path(args.data_dir or default_data_dir())
        if args.action == "download":
            fetched = download(definition, data_dir, progress=sys.stderr.isatty())
            print(f"{definition['name']}: {sum(fetched)} file(s) downloaded, "
                  f"{len(fetched) - sum(fetched)} already present, all verified in {data_dir}")
        else:
            sums = verify(definition, data_dir)
            print(f"{definition['name']}: {len(sums)} file(s) verified in {data_dir}")
    except (DatasetError, benchmark.UnknownWorkload) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
