"""Dataset download and verification, used by every workload's download_dataset.sh and verify_dataset.sh.

Files, canonical URLs and sha256 sums come from the workload's benchmark.yaml. A mirror replaces the canonical
host: DATASET_MIRROR is either a local directory or a base URL (http://, https://, file://) under which each
file sits at the same relative path as under $DATA_DIR (that is also how air-gapped clusters use it).

Downloads are atomic (temporary file, verify, rename: a checksum failure leaves no partial file behind and
names the file, the expected and the actual hash) and idempotent (a file already present with the right
sha256 is not fetched again). A download reads at most the definition's `bytes` (a source that sends more is
refused). Every expected failure is a DatasetError whose message is one sentence: a bad source, a checksum or
size mismatch, a destination that cannot be written (read-only DATA_DIR, full disk), or a path that would
write outside DATA_DIR (`..`, an absolute path, a backslash, an empty component, or a symbolic link inside
DATA_DIR that leads out of it). Nothing already in DATA_DIR is lost on failure. A download killed before it
could clean up (SIGKILL, power loss) leaves a `.<name>.XXXXXXXX.part` file beside the destination; the next
fetch of that file deletes such partials unless a live download holds them (an flock on the partial).

    python -m common.fetch download <workload> [--data-dir DIR]
    python -m common.fetch verify <workload> [--data-dir DIR]

Synthetic stand-ins. A dataset that cannot be reached from a machine (Speech Commands and Visual Wake Words
from ours) may declare `dataset.synthetic: {directory, generator, description}`: the workload's generator script
writes a corpus in the real dataset's on-disk layout under DATA_DIR/<directory>, with a `SHA256SUMS` file
(`<sha256>  <relative path>` per file). With SYNTHETIC_DATA=1 (or --synthetic) `download` runs the generator and
`verify` checks every file SHA256SUMS lists; a run then logs `<directory>/SHA256SUMS` as its dataset, which is
never the benchmark's dataset, so the checker refuses the result in every division.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import signal
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from common import benchmark

try:
    import fcntl
except ImportError:  # not POSIX: stale partials are recognised by their age alone
    fcntl = None

CHUNK = 1 << 20
MIRROR_ENV = "DATASET_MIRROR"
SYNTHETIC_ENV = "SYNTHETIC_DATA"
SYNTHETIC_SUMS = "SHA256SUMS"
DATA_DIR_ENV = "DATA_DIR"
PARTIAL_SUFFIX = ".part"
PARTIAL_MIN_AGE_S = 2.0  # a partial this young may belong to a download that has not locked it yet, or just closed it
PARTIAL_NO_LOCK_AGE_S = 3600.0  # where flock is unavailable: a partial untouched this long is stale


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
        try:
            return open(source, "rb"), os.path.getsize(source)
        except OSError as error:
            raise DatasetError(f"cannot read mirror file {source}: {error.strerror or error}") from None
    try:
        response = urllib.request.urlopen(source, timeout=60)
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DatasetError(f"cannot download {source}: {error}") from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def _progress(total: int | None, name: str, enabled: bool):
    from tqdm import tqdm  # imported here so that `verify` and the checker never need it

    return tqdm(total=total, desc=name, unit="B", unit_scale=True, disable=not enabled, leave=False)


def relative_parts(entry: dict) -> list[str]:
    """The components of a dataset file's path, refused (DatasetError) unless it is a plain relative path: no
    `..` or `.` component, no empty component (`a//b`, a trailing `/`), no leading `/`, no backslash, no NUL
    (the schema refuses the same paths in benchmark.yaml; this guards every other caller)."""
    path = entry.get("path")
    parts = path.split("/") if isinstance(path, str) else []
    if not parts or "\\" in path or "\0" in path or any(part in ("", ".", "..") for part in parts):
        raise DatasetError(f"dataset file path {path!r} is not a relative path inside the data directory (no '..' "
                           f"or '.' component, no empty component, no leading '/', no backslash); refusing it")
    return parts


def destination(entry: dict, data_dir: Path) -> Path:
    """Where a download of entry may write: data_dir/<path>, refused (DatasetError) when the path is not a plain
    relative path or when it resolves outside data_dir, e.g. through a symbolic link inside data_dir."""
    dest = Path(data_dir).joinpath(*relative_parts(entry))
    try:
        root, resolved = Path(data_dir).resolve(), dest.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise DatasetError(f"cannot resolve dataset file {dest}: {error}") from None
    if not resolved.is_relative_to(root):
        raise DatasetError(f"dataset file {entry['path']} would be written to {resolved}, outside the data directory "
                           f"{root}, through a symbolic link; refusing (point {DATA_DIR_ENV} at the real directory)")
    return dest


def _write_error(dest: Path, error: OSError, during: str = "") -> DatasetError:
    return DatasetError(f"cannot write dataset file {dest}{during}: {error.strerror or error}")


def _partial_name(dest: Path) -> re.Pattern:
    """The names tempfile.mkstemp gives this file's partial downloads: .<name>.<8 random characters>.part"""
    return re.compile(re.escape(f".{dest.name}.") + r"[a-z0-9_]{8}" + re.escape(PARTIAL_SUFFIX))


def _held_by_a_live_download(path: Path) -> bool:
    """True while the download that made this partial may still be running (it holds an flock on it)."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return True
    if age < PARTIAL_MIN_AGE_S:
        return True
    if fcntl is None:
        return age < PARTIAL_NO_LOCK_AGE_S
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return True  # not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False  # nobody holds it: its download is gone
    except BlockingIOError:
        return True
    except OSError:  # flock unsupported on this file system
        return age < PARTIAL_NO_LOCK_AGE_S
    finally:
        os.close(fd)


def remove_stale_partials(dest: Path) -> list[Path]:
    """Delete the partial downloads of dest (exactly `.<name>.XXXXXXXX.part` in its directory) that no live
    download holds: what a download killed by SIGKILL (or a crash) leaves behind. Returns the deleted paths."""
    pattern, removed = _partial_name(dest), []
    try:
        names = os.listdir(dest.parent)
    except OSError:
        return removed
    for name in sorted(names):
        path = dest.parent / name
        if not pattern.fullmatch(name) or path.is_symlink() or not path.is_file():
            continue
        if not _held_by_a_live_download(path):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass  # best effort: a partial we cannot delete harms nothing
    return removed


def _has_sha256(path: Path, expected: str) -> bool:
    try:
        return path.is_file() and sha256_of(path) == expected
    except OSError as error:
        raise DatasetError(f"cannot read dataset file {path}: {error.strerror or error}") from None


def fetch_file(entry: dict, data_dir: Path, mirror: str | None = None, progress: bool = True) -> bool:
    """Make data_dir/entry['path'] exist with the expected sha256. Returns True if it was downloaded."""
    dest = destination(entry, data_dir)
    if _has_sha256(dest, entry["sha256"]):
        remove_stale_partials(dest)
        return False
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _write_error(dest, error, f" (creating {error.filename or dest.parent})") from None
    remove_stale_partials(dest)
    source = source_for(entry, mirror)
    stream, total = _open_source(source)
    expected_bytes = entry.get("bytes")
    with stream:
        if expected_bytes is not None and total is not None and total != expected_bytes:
            raise DatasetError(f"size mismatch for {entry['path']} from {source}: the definition says "
                               f"{expected_bytes} bytes, the source has {total}")
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=PARTIAL_SUFFIX, dir=dest.parent)
        except OSError as error:
            raise _write_error(dest, error) from None
        try:
            if fcntl is not None:  # tells remove_stale_partials that this download is alive; released at close
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    pass
            os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600; datasets are read by other users (e.g. a container's)
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out, _progress(total, dest.name, progress) as bar:
                while True:
                    try:
                        chunk = stream.read(CHUNK)
                    except (OSError, http.client.HTTPException) as error:
                        raise DatasetError(f"download of {entry['path']} from {source} failed: {error}; "
                                           f"the partial file was deleted") from None
                    if not chunk:
                        break
                    size += len(chunk)
                    if expected_bytes is not None and size > expected_bytes:
                        raise DatasetError(f"size mismatch for {entry['path']} from {source}: more than the "
                                           f"{expected_bytes} bytes of the definition; the partial file was deleted")
                    digest.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as error:
                        raise _write_error(dest, error) from None
                    bar.update(len(chunk))
            actual = digest.hexdigest()
            if actual != entry["sha256"]:
                got = (f" ({size} bytes, the definition says {expected_bytes})"
                       if expected_bytes is not None and size != expected_bytes else "")
                raise DatasetError(
                    f"checksum mismatch for {entry['path']} from {source}: expected sha256 {entry['sha256']}, "
                    f"got {actual}{got}; the partial file was deleted"
                )
            try:
                os.replace(tmp_name, dest)
            except OSError as error:
                raise _write_error(dest, error) from None
        except OSError as error:  # closing (flushing) the partial file, or chmod
            Path(tmp_name).unlink(missing_ok=True)
            raise _write_error(dest, error) from None
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    return True


def verify_file(entry: dict, data_dir: Path) -> str:
    """Return the file's sha256, or raise DatasetError saying which file is missing or wrong."""
    path = Path(data_dir).joinpath(*relative_parts(entry))
    if not path.is_file():
        raise DatasetError(f"dataset file {path} is missing; run download_dataset.sh first")
    try:
        actual = sha256_of(path)
    except OSError as error:
        raise DatasetError(f"cannot read dataset file {path}: {error.strerror or error}") from None
    if actual != entry["sha256"]:
        raise DatasetError(f"checksum mismatch for {path}: expected sha256 {entry['sha256']}, got {actual}")
    return actual


def synthetic_requested() -> bool:
    """SYNTHETIC_DATA=1 in the environment: use the definition's synthetic stand-in instead of its dataset."""
    return os.environ.get(SYNTHETIC_ENV, "0") == "1"


def synthetic_spec(definition: dict) -> dict:
    """The definition's dataset.synthetic block, or one sentence saying the benchmark has none."""
    spec = definition["dataset"].get("synthetic")
    if not spec:
        raise DatasetError(f"{definition['name']} has no synthetic stand-in dataset (dataset.synthetic); unset "
                           f"{SYNTHETIC_ENV}")
    return spec


def generate_synthetic(definition: dict, data_dir: Path, smoke: bool = False) -> Path:
    """Run the workload's generator (an argument list, no shell): it writes DATA_DIR/<directory> and its
    SHA256SUMS. Returns the corpus directory, verified."""
    import subprocess

    spec = synthetic_spec(definition)
    script = Path(definition["directory"]) / spec["generator"]
    command = [sys.executable, str(script), "--data-dir", str(data_dir)] + (["--smoke"] if smoke else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(benchmark.REPO_ROOT),
                                                                       os.environ.get("PYTHONPATH")]))}
    if subprocess.run(command, env=env).returncode != 0:
        raise DatasetError(f"the synthetic-data generator {script} failed (its message is above)")
    verify_synthetic(definition, data_dir)
    return Path(data_dir) / spec["directory"]


def verify_synthetic(definition: dict, data_dir: Path) -> dict[str, str]:
    """Check every file the synthetic corpus's SHA256SUMS lists; returns {<directory>/SHA256SUMS: its sha256}
    (what a run logs as its dataset)."""
    spec = synthetic_spec(definition)
    root = Path(data_dir).joinpath(*relative_parts({"path": spec["directory"]}))
    sums = root / SYNTHETIC_SUMS
    if not sums.is_file():
        raise DatasetError(f"synthetic dataset {root} has no {SYNTHETIC_SUMS}: run download_dataset.sh with "
                           f"{SYNTHETIC_ENV}=1 (it runs {spec['generator']}) first")
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {sums}: {getattr(error, 'strerror', None) or error}") from None
    for lineno, line in enumerate(lines, 1):
        match = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        if not match:
            raise DatasetError(f"{sums}:{lineno}: not a '<sha256>  <path>' line")
        verify_file({"path": f"{spec['directory']}/{match[2]}", "sha256": match[1]}, data_dir)
    if not lines:
        raise DatasetError(f"{sums} lists no file")
    return {f"{spec['directory']}/{SYNTHETIC_SUMS}": sha256_of(sums)}


def download(definition: dict, data_dir: Path | None = None, mirror: str | None = None, progress: bool = True):
    data_dir = Path(data_dir or default_data_dir())
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    return [fetch_file(entry, data_dir, mirror, progress) for entry in definition["dataset"]["files"]]


def verify(definition: dict, data_dir: Path | None = None, synthetic: bool = False) -> dict[str, str]:
    """Check every dataset file of a definition (or, with synthetic=True, its synthetic stand-in); returns
    {relative path: sha256}."""
    data_dir = Path(data_dir or default_data_dir())
    if synthetic:
        return verify_synthetic(definition, data_dir)
    return {entry["path"]: verify_file(entry, data_dir) for entry in definition["dataset"]["files"]}


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: the partial file of the current download is deleted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Download or verify a workload's dataset files.")
    parser.add_argument("action", choices=["download", "verify"])
    parser.add_argument("workload", help="benchmark name or workload directory")
    parser.add_argument("--data-dir", type=Path, default=None, help=f"default: ${DATA_DIR_ENV} or <repo>/data")
    parser.add_argument("--synthetic", action="store_true", default=synthetic_requested(),
                        help=f"the definition's synthetic stand-in dataset (default: ${SYNTHETIC_ENV}=1)")
    parser.add_argument("--smoke", action="store_true", help="with --synthetic: the small corpus the tests use")
    args = parser.parse_args(argv)
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        definition = benchmark.load(args.workload)
        data_dir = Path(args.data_dir or default_data_dir())
        if args.synthetic and args.action == "download":
            root = generate_synthetic(definition, data_dir, smoke=args.smoke)
            print(f"{definition['name']}: synthetic stand-in dataset written and verified in {root} (never valid "
                  f"for a submission)")
        elif args.synthetic:
            verify_synthetic(definition, data_dir)
            print(f"{definition['name']}: synthetic stand-in dataset verified in "
                  f"{data_dir / synthetic_spec(definition)['directory']} (never valid for a submission)")
        elif args.action == "download":
            fetched = download(definition, data_dir, progress=sys.stderr.isatty())
            print(f"{definition['name']}: {sum(fetched)} file(s) downloaded, "
                  f"{len(fetched) - sum(fetched)} already present, all verified in {data_dir}")
        else:
            sums = verify(definition, data_dir)
            print(f"{definition['name']}: {len(sums)} file(s) verified in {data_dir}")
    except (DatasetError, benchmark.UnknownWorkload, benchmark.DefinitionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
