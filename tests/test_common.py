"""common/: MLPerf log lines, dataset fetch/verify, provenance, benchmark definitions, the bench summary."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

from common import benchmark, fetch, provenance
from common.mlperf_log import MLPerfLogger
from conftest import REPO_ROOT, mirror_dir


def _entry(tmp_path: Path, content: bytes, name="sub/file.bin", sha=None) -> dict:
    return {"path": name, "url": "https://example.invalid/" + name, "bytes": len(content),
            "sha256": sha or hashlib.sha256(content).hexdigest()}


def _mirror_with(tmp_path: Path, entry: dict, content: bytes) -> Path:
    mirror = tmp_path / "mirror"
    (mirror / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
    (mirror / entry["path"]).write_bytes(content)
    return mirror


# --- MLPerf log lines -------------------------------------------------------------------------------------------

def test_log_lines_have_exactly_the_mlperf_logging_fields(tmp_path):
    log = MLPerfLogger(tmp_path / "log.txt", echo=False)
    log.start("init_start")
    log.event("seed", 3)
    log.end("run_stop", metadata={"status": "success"})
    log.close()
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert len(lines) == 3 and all(l.startswith(":::MLLOG {") for l in lines)
    events = [json.loads(l[len(":::MLLOG "):]) for l in lines]
    assert all(list(e) == ["namespace", "time_ms", "event_type", "key", "value", "metadata"] for e in events)
    assert [e["event_type"] for e in events] == ["INTERVAL_START", "POINT_IN_TIME", "INTERVAL_END"]
    assert all({"file", "lineno"} <= set(e["metadata"]) for e in events)
    assert events[1]["metadata"]["file"] == "tests/test_common.py"  # the caller's line, relative to the repo
    assert events[2]["metadata"]["status"] == "success"


def test_only_enabled_logger_writes(tmp_path):
    log = MLPerfLogger(tmp_path / "rank1.txt", enabled=False, echo=False)
    log.event("seed", 1)
    log.close()
    assert not (tmp_path / "rank1.txt").exists()


# --- dataset fetch / verify -------------------------------------------------------------------------------------

def test_fetch_from_local_mirror_is_verified_and_idempotent(tmp_path):
    content = b"hello dataset\n" * 100
    entry = _entry(tmp_path, content)
    mirror = _mirror_with(tmp_path, entry, content)
    data = tmp_path / "data"
    assert fetch.fetch_file(entry, data, str(mirror), progress=False) is True
    assert (data / entry["path"]).read_bytes() == content
    mtime = (data / entry["path"]).stat().st_mtime_ns
    (mirror / entry["path"]).unlink()  # a second fetch must not need the source at all
    assert fetch.fetch_file(entry, data, str(mirror), progress=False) is False
    assert (data / entry["path"]).stat().st_mtime_ns == mtime


def test_checksum_mismatch_names_the_file_and_leaves_nothing(tmp_path):
    content = b"tampered bytes"
    entry = _entry(tmp_path, content, sha="0" * 64)
    mirror = _mirror_with(tmp_path, entry, content)
    data = tmp_path / "data"
    with pytest.raises(fetch.DatasetError) as err:
        fetch.fetch_file(entry, data, str(mirror), progress=False)
    message = str(err.value)
    assert entry["path"] in message and "0" * 64 in message and hashlib.sha256(content).hexdigest() in message
    assert list((data / "sub").iterdir()) == []  # neither the file nor a partial download remains


def test_fetch_from_mirror_url(tmp_path):
    content = b"served over http\n" * 1000
    entry = _entry(tmp_path, content, name="dir with space/f.txt")
    mirror = _mirror_with(tmp_path, entry, content)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert fetch.source_for(entry, url) == url + "dir%20with%20space/f.txt"
        fetch.fetch_file(entry, tmp_path / "data", url, progress=False)
    finally:
        server.shutdown()
    assert (tmp_path / "data" / entry["path"]).read_bytes() == content


def test_without_mirror_the_canonical_url_is_used():
    entry = benchmark.load("nanogpt")["dataset"]["files"][0]
    assert fetch.source_for(entry, None) == entry["url"]
    assert entry["url"].startswith("https://raw.githubusercontent.com/karpathy/char-rnn/")


def test_missing_mirror_file_is_a_clear_error(tmp_path):
    entry = _entry(tmp_path, b"x")
    with pytest.raises(fetch.DatasetError, match="does not exist"):
        fetch.fetch_file(entry, tmp_path / "data", str(tmp_path / "nowhere"), progress=False)


def test_verify_reports_missing_and_corrupt_files(tmp_path):
    definition = benchmark.load("nanogpt")
    with pytest.raises(fetch.DatasetError, match="missing"):
        fetch.verify(definition, tmp_path)
    target = tmp_path / definition["dataset"]["files"][0]["path"]
    target.parent.mkdir(parents=True)
    target.write_text("not shakespeare")
    with pytest.raises(fetch.DatasetError, match="checksum mismatch"):
        fetch.verify(definition, tmp_path)


def test_download_and_verify_scripts_use_the_mirror(tmp_path):
    script_dir = REPO_ROOT / "language" / "nanogpt"
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(tmp_path), "DATASET_MIRROR": str(mirror_dir())}
    for script in ("download_dataset.sh", "verify_dataset.sh"):
        proc = subprocess.run(["bash", str(script_dir / script)], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    bad = subprocess.run([sys.executable, "-m", "common.fetch", "verify", "no_such_workload"],
                         env={**env, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: unknown workload 'no_such_workload'")
    assert "Traceback" not in bad.stderr


def test_run_and_time_refuses_a_missing_dataset(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(tmp_path / "empty"), "SMOKE": "1",
           "LOGFILE": str(tmp_path / "log.txt")}
    proc = subprocess.run(["bash", str(REPO_ROOT / "language" / "nanogpt" / "run_and_time.sh"), "1"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "download_dataset.sh" in proc.stderr
    assert "STARTING TIMING RUN" not in proc.stdout


# --- provenance ---------------------------------------------------------------------------------------------------

def test_provenance_record_fields():
    record = provenance.collect(REPO_ROOT / "language" / "nanogpt", {"tinyshakespeare/input.txt": "ab" * 32})
    assert set(record) >= {"git", "code", "dataset_sha256", "packages", "python", "torch", "cuda", "os",
                           "hardware", "container"}
    assert set(record["git"]) == {"commit", "dirty"}
    assert set(record["code"]) == {"workload_sha256", "common_sha256"}
    assert record["packages"]["versions"]["torch"].startswith("2.15.0")
    listing = "\n".join(f"{k}=={v}" for k, v in sorted(record["packages"]["versions"].items()))
    assert record["packages"]["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert set(record["hardware"]) >= {"cpu_model", "cpu_count", "gpu_name", "gpu_count"}
    assert set(record["container"]) == {"in_container", "image_id"}
    json.dumps(record)  # it must fit in one log line


def test_code_hash_ignores_docs_and_caches_but_not_code(tmp_path):
    (tmp_path / "train.py").write_text("print(1)\n")
    base = provenance.tree_hash(tmp_path)
    (tmp_path / "README.md").write_text("docs")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert provenance.tree_hash(tmp_path) == base
    (tmp_path / "train.py").write_text("print(2)\n")
    assert provenance.tree_hash(tmp_path) != base


# --- benchmark definitions and the bench summary ---------------------------------------------------------------------

def test_unknown_workload_is_one_clear_sentence():
    with pytest.raises(benchmark.UnknownWorkload, match="unknown workload 'nope' \\(known: .*nanogpt"):
        benchmark.load("nope")


def test_smoke_overrides_merge_into_the_definition():
    full, smoke = benchmark.load("nanogpt"), benchmark.load("nanogpt", smoke=True)
    assert smoke["quality"]["direction"] == full["quality"]["direction"]
    assert smoke["quality"]["max_steps"] < full["quality"]["max_steps"]
    assert smoke["hyperparameters"]["opt_name"] == full["hyperparameters"]["opt_name"]
    assert smoke["smoke"] and not full["smoke"]


@pytest.mark.parametrize("direction,value,reached", [("minimize", 1.5, True), ("minimize", 1.7, False),
                                                    ("maximize", 0.91, True), ("maximize", 0.89, False)])
def test_target_direction(direction, value, reached):
    target = 1.6 if direction == "minimize" else 0.9
    assert benchmark.target_reached(value, {"direction": direction, "target": target}) is reached
