"""common/fetch.py hardening: paths that would write outside DATA_DIR, stale partial downloads, unwritable data
directories (one sentence, nothing lost), the definition's byte count, and a download killed mid-way."""
from __future__ import annotations

import errno
import hashlib
import http.server
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from common import benchmark, fetch

REPO_ROOT = Path(__file__).resolve().parents[1]
BAD_PATHS = ["../escape.bin", "sub/../../escape.bin", "/tmp/escape.bin", "sub\\..\\escape.bin", "sub//file.bin",
             "sub/", "./file.bin", "sub/./file.bin", "..", ""]


def entry_for(content: bytes, path: str = "sub/file.bin") -> dict:
    return {"path": path, "url": "https://example.invalid/" + path.lstrip("/"), "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest()}


def mirror_with(root: Path, files: dict[str, bytes]) -> Path:
    mirror = root / "mirror"
    for path, content in files.items():
        (mirror / path).parent.mkdir(parents=True, exist_ok=True)
        (mirror / path).write_bytes(content)
    return mirror


def definition_dir(root: Path, entries: list[dict]) -> Path:
    """A workload directory whose benchmark.yaml is nanogpt's with these dataset files."""
    definition = yaml.safe_load((REPO_ROOT / "language" / "nanogpt" / "benchmark.yaml").read_text())
    definition["dataset"]["files"] = entries
    directory = root / "defs" / "language" / "nanogpt"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "benchmark.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    return directory


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- paths outside DATA_DIR --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", BAD_PATHS)
def test_fetch_refuses_paths_outside_the_data_dir(bad, tmp_path):
    content = b"payload"
    entry = entry_for(content, bad)
    mirror = mirror_with(tmp_path, {"escape.bin": content})
    data = tmp_path / "work" / "data"
    data.mkdir(parents=True)
    before = tree(tmp_path)
    with pytest.raises(fetch.DatasetError, match="is not a relative path inside the data directory") as error:
        fetch.fetch_file(entry, data, str(mirror), progress=False)
    assert "\n" not in str(error.value)
    with pytest.raises(fetch.DatasetError, match="is not a relative path"):
        fetch.verify_file(entry, data)
    assert tree(tmp_path) == before  # nothing written anywhere


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_the_schema_refuses_the_same_paths(bad, tmp_path):
    directory = definition_dir(tmp_path, [entry_for(b"x", bad)])
    with pytest.raises(benchmark.DefinitionError) as error:
        benchmark.load(directory)
    assert f"dataset.files[0].path: {bad!r} is not a relative path inside DATA_DIR" in str(error.value)


def test_fetch_refuses_a_symlink_that_leads_out_of_the_data_dir(tmp_path):
    content = b"payload"
    mirror = mirror_with(tmp_path, {"sub/file.bin": content, "inner/file.bin": content})
    outside, data = tmp_path / "outside", tmp_path / "data"
    outside.mkdir()
    data.mkdir()
    (data / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(fetch.DatasetError, match=r"would be written to .*outside.*, outside the data directory"):
        fetch.fetch_file(entry_for(content), data, str(mirror), progress=False)
    assert list(outside.iterdir()) == []
    # a file that is itself a link out of the data directory is refused too (it would be read and replaced)
    (data / "inner").mkdir()
    (data / "inner" / "file.bin").symlink_to(outside / "target.bin")
    with pytest.raises(fetch.DatasetError, match="outside the data directory"):
        fetch.fetch_file(entry_for(content, "inner/file.bin"), data, str(mirror), progress=False)
    assert list(outside.iterdir()) == []
    # links that stay inside the data directory are fine, and so is a data directory that is itself a link
    (data / "real").mkdir()
    (data / "alias").symlink_to(data / "real", target_is_directory=True)
    linked = tmp_path / "data_link"
    linked.symlink_to(data, target_is_directory=True)
    assert fetch.fetch_file(entry_for(content, "alias/file.bin"), linked, str(mirror_with(
        tmp_path, {"alias/file.bin": content})), progress=False)
    assert (data / "real" / "file.bin").read_bytes() == content


# --- stale partial downloads -------------------------------------------------------------------------------------

def _partial(directory: Path, name: str, age_s: float = 600) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"half a download")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_a_stale_partial_is_deleted_by_the_next_download_of_its_file(tmp_path):
    content = b"dataset bytes\n" * 50
    entry = entry_for(content)
    mirror = mirror_with(tmp_path, {entry["path"]: content})
    data = tmp_path / "data"
    stale = _partial(data / "sub", ".file.bin.k3x_9abc.part")
    others = [_partial(data / "sub", name) for name in (
        ".other.bin.k3x_9abc.part",    # another file's partial: not this download's business
        ".file.bin.short.part",        # not mkstemp's 8 random characters
        "file.bin.k3x_9abc.part",      # no leading dot
        ".file.bin.k3x_9abc.part.bak",  # not the pattern's end
    )]
    _partial(data / "sub", ".file.bin.young123.part", age_s=0)  # may belong to a download starting right now
    assert fetch.fetch_file(entry, data, str(mirror), progress=False) is True
    assert (data / entry["path"]).read_bytes() == content
    assert not stale.exists()
    assert all(p.exists() for p in others)
    assert (data / "sub" / ".file.bin.young123.part").exists()
    # a file already present: its stale partials go all the same
    again = _partial(data / "sub", ".file.bin.abcdefgh.part")
    assert fetch.fetch_file(entry, data, str(mirror), progress=False) is False
    assert not again.exists()


@pytest.mark.skipif(fetch.fcntl is None, reason="no flock on this platform")
def test_a_partial_held_by_a_live_download_is_kept(tmp_path):
    import fcntl

    content = b"dataset bytes"
    entry = entry_for(content)
    data = tmp_path / "data"
    live = _partial(data / "sub", ".file.bin.live1234.part")
    with open(live, "rb+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a running download holds on its partial
        fetch.fetch_file(entry, data, str(mirror_with(tmp_path, {entry["path"]: content})), progress=False)
        assert live.exists()
    fetch.fetch_file(entry, data, str(tmp_path / "mirror"), progress=False)
    assert not live.exists()


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Serves 64 KiB of a 1 MiB file, then stalls: a download that is still running when it is killed
    (fetch reads 1 MiB chunks, so it is blocked in that read, its partial file open and still empty)."""
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        self.wfile.write(b"x" * (1 << 16))
        self.wfile.flush()
        self.server.stall.wait(30)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_download_leaves_no_partial_behind(sig, tmp_path):
    """SIGTERM: the command deletes its partial and exits 143. SIGKILL: the partial stays until the next
    download of that file, which deletes it."""
    content = b"x" * (1 << 20)
    entry = entry_for(content)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.stall = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DATASET_MIRROR": f"http://127.0.0.1:{server.server_port}/"}
    proc = subprocess.Popen([sys.executable, "-m", "common.fetch", "download", str(definition_dir(tmp_path, [entry])),
                             "--data-dir", str(data)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        partials = []
        while not partials and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            partials = list((data / "sub").glob(".file.bin.*.part")) if (data / "sub").is_dir() else []
        assert partials, proc.stderr.read().decode() if proc.poll() is not None else "no partial file appeared"
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        server.stall.set()
        server.shutdown()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert list((data / "sub").iterdir()) == []
        return
    assert proc.returncode == -signal.SIGKILL and len(list((data / "sub").iterdir())) == 1
    for partial in partials:  # what an hour-old leftover looks like (a younger one might still be starting)
        os.utime(partial, (time.time() - 3600, time.time() - 3600))
    fetch.fetch_file(entry, data, str(mirror_with(tmp_path, {entry["path"]: content})), progress=False)
    assert [p.name for p in (data / "sub").iterdir()] == ["file.bin"]


# --- unwritable data directories ---------------------------------------------------------------------------------

def test_a_data_dir_under_a_regular_file_is_one_sentence(tmp_path):
    content = b"payload"
    entry = entry_for(content)
    mirror = mirror_with(tmp_path, {entry["path"]: content})
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(fetch.DatasetError, match=r"^cannot write dataset file .*not_a_directory/data/sub/file.bin "
                                                 r"\(creating .*\): Not a directory$"):
        fetch.fetch_file(entry, blocker / "data", str(mirror), progress=False)
    proc = subprocess.run([sys.executable, "-m", "common.fetch", "download", str(definition_dir(tmp_path, [entry])),
                           "--data-dir", str(blocker / "data")], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, "DATASET_MIRROR": str(mirror)})
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot write dataset file ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert blocker.read_text() == "a file where a directory should be"


def _chmod_stops_us(tmp: Path) -> bool:
    """False for root (or any process with CAP_DAC_OVERRIDE): a read-only directory does not stop it."""
    probe = tmp / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "f").touch()
        return False
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)
        (probe / "f").unlink(missing_ok=True)
        probe.rmdir()


@pytest.fixture
def read_only(monkeypatch, tmp_path_factory):
    """Make a directory unwritable: chmod where that stops this process (a normal user); where it does not (root),
    the same refusal from the operating system is simulated where fetch creates its temporary file."""
    made, simulate = [], not _chmod_stops_us(tmp_path_factory.mktemp("probe"))

    def apply(directory: Path):
        if simulate:
            real = fetch.tempfile.mkstemp

            def mkstemp(*args, dir=None, **kwargs):
                if Path(dir) == directory:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(directory))
                return real(*args, dir=dir, **kwargs)
            monkeypatch.setattr(fetch.tempfile, "mkstemp", mkstemp)
        else:
            directory.chmod(0o555)
            made.append(directory)

    yield apply
    for directory in made:
        directory.chmod(0o755)


def test_a_read_only_data_dir_is_one_sentence_exit_1_and_loses_nothing(tmp_path, read_only, capsys, monkeypatch):
    first, second = b"first file\n" * 10, b"second file\n" * 10
    entries = [entry_for(first, "sub/a.bin"), entry_for(second, "sub/b.bin")]
    mirror = mirror_with(tmp_path, {"sub/a.bin": first, "sub/b.bin": second})
    data = tmp_path / "data"
    fetch.fetch_file(entries[0], data, str(mirror), progress=False)  # one file is already there
    before = tree(data)
    mtime = (data / "sub" / "a.bin").stat().st_mtime_ns
    read_only(data / "sub")
    with pytest.raises(fetch.DatasetError) as error:
        fetch.download({"dataset": {"files": entries}}, data, str(mirror), progress=False)
    assert str(error.value) == f"cannot write dataset file {data / 'sub' / 'b.bin'}: Permission denied"
    monkeypatch.setenv("DATASET_MIRROR", str(mirror))
    assert fetch.main(["download", str(definition_dir(tmp_path, entries)), "--data-dir", str(data)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: cannot write dataset file {data / 'sub' / 'b.bin'}: Permission denied\n"
    assert tree(data) == before and (data / "sub" / "a.bin").stat().st_mtime_ns == mtime  # nothing lost or left


def test_a_failed_rename_keeps_the_old_file_and_deletes_the_partial(tmp_path, monkeypatch):
    content = b"new version"
    entry = entry_for(content)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "file.bin").write_bytes(b"old version")  # wrong sha256: will be replaced

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))
    monkeypatch.setattr(fetch.os, "replace", refuse)
    with pytest.raises(fetch.DatasetError, match=r"^cannot write dataset file .*file.bin: Permission denied$"):
        fetch.fetch_file(entry, data, str(mirror_with(tmp_path, {entry["path"]: content})), progress=False)
    assert [p.name for p in (data / "sub").iterdir()] == ["file.bin"]
    assert (data / "sub" / "file.bin").read_bytes() == b"old version"


def test_a_full_disk_is_one_sentence(tmp_path, monkeypatch):
    content = b"payload"
    entry = entry_for(content)
    real_fdopen = os.fdopen

    class Full(io.RawIOBase):
        def __init__(self, fd):
            self.inner = real_fdopen(fd, "wb")

        def write(self, chunk):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):
            self.inner.close()
    monkeypatch.setattr(fetch.os, "fdopen", lambda fd, mode: Full(fd))
    data = tmp_path / "data"
    with pytest.raises(fetch.DatasetError, match=r"^cannot write dataset file .*: No space left on device$"):
        fetch.fetch_file(entry, data, str(mirror_with(tmp_path, {entry["path"]: content})), progress=False)
    assert list((data / "sub").iterdir()) == []


# --- the definition's byte count ---------------------------------------------------------------------------------

def test_a_source_larger_than_the_definition_says_is_refused(tmp_path, monkeypatch):
    content = b"0123456789"
    entry = {**entry_for(content), "bytes": 4}
    data = tmp_path / "data"
    with pytest.raises(fetch.DatasetError, match="size mismatch .*the definition says 4 bytes, the source has 10"):
        fetch.fetch_file(entry, data, str(mirror_with(tmp_path, {entry["path"]: content})), progress=False)
    # a source that does not announce its length (or lies) is read no further than the definition's bytes + 1
    class Endless(io.RawIOBase):
        served = 0

        def read(self, size=-1):
            Endless.served += size
            return b"y" * size
    monkeypatch.setattr(fetch, "_open_source", lambda source: (Endless(), None))
    with pytest.raises(fetch.DatasetError, match="more than the 4 bytes of the definition"):
        fetch.fetch_file(entry, data, "https://mirror.invalid/", progress=False)
    assert Endless.served == fetch.CHUNK and list((data / "sub").iterdir()) == []


# --- synthetic stand-in datasets (dataset.synthetic) ------------------------------------------------------------
GENERATOR = '''
import argparse, hashlib, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--data-dir", type=pathlib.Path, required=True)
parser.add_argument("--smoke", action="store_true")
args = parser.parse_args()
root = args.data_dir / "corpus_synthetic"
(root / "yes").mkdir(parents=True, exist_ok=True)
count = 2 if args.smoke else 5
for i in range(count):
    (root / "yes" / f"clip_{i}.txt").write_text(f"clip {i}")
lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}"
         for p in sorted((root / "yes").iterdir())]
(root / "SHA256SUMS").write_text("\\n".join(lines) + "\\n")
'''


def _synthetic_definition(tmp_path: Path) -> dict:
    workload = tmp_path / "workload"
    workload.mkdir()
    (workload / "make_corpus.py").write_text(GENERATOR)
    return {"name": "kws_like", "directory": str(workload),
            "dataset": {"name": "real-corpus", "files": [{"path": "corpus/real.tar.gz", "sha256": "0" * 64}],
                        "synthetic": {"directory": "corpus_synthetic", "generator": "make_corpus.py",
                                      "description": "a stand-in"}}}


def test_a_synthetic_corpus_is_generated_verified_and_logged_as_itself(tmp_path):
    definition, data = _synthetic_definition(tmp_path), tmp_path / "data"
    root = fetch.generate_synthetic(definition, data, smoke=True)
    assert sorted(p.name for p in (root / "yes").iterdir()) == ["clip_0.txt", "clip_1.txt"]
    logged = fetch.verify(definition, data, synthetic=True)
    sums = root / "SHA256SUMS"
    assert logged == {"corpus_synthetic/SHA256SUMS": hashlib.sha256(sums.read_bytes()).hexdigest()}
    with pytest.raises(fetch.DatasetError, match="real.tar.gz is missing"):
        fetch.verify(definition, data)  # without the flag, the real dataset is what is verified

    (root / "yes" / "clip_1.txt").write_text("changed")
    with pytest.raises(fetch.DatasetError, match=r"checksum mismatch for .*clip_1.txt"):
        fetch.verify(definition, data, synthetic=True)


@pytest.mark.parametrize("line", ["0" * 64 + "  ../../etc/passwd", "0" * 64 + "  /etc/passwd", "not a line"])
def test_a_synthetic_sums_file_cannot_name_a_file_outside_its_corpus(tmp_path, line):
    definition, data = _synthetic_definition(tmp_path), tmp_path / "data"
    (data / "corpus_synthetic").mkdir(parents=True)
    (data / "corpus_synthetic" / "SHA256SUMS").write_text(line + "\n")
    with pytest.raises(fetch.DatasetError, match="not a relative path|not a '<sha256>  <path>' line"):
        fetch.verify(definition, data, synthetic=True)


def test_synthetic_data_without_a_stand_in_is_one_sentence(tmp_path):
    definition = _synthetic_definition(tmp_path)
    del definition["dataset"]["synthetic"]
    with pytest.raises(fetch.DatasetError, match="has no synthetic stand-in dataset"):
        fetch.verify(definition, tmp_path, synthetic=True)
