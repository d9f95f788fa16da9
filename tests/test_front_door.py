"""The suite's front door: `invoke doctor`, `invoke validate` and the dashboard, tested end to end (real smoke runs
through run_and_time.sh, the real checker, the page loaded in headless Chromium)."""
from __future__ import annotations

import csv
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from common import benchmark, dashboard, doctor, fetch, validate

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"  # ignored by git; the dashboard screenshot lands here too


def _copy_dataset(name: str, source: Path, target: Path) -> None:
    """One workload's dataset, fetched from the session's data folder used as a mirror (verified on the way)."""
    fetch.download(benchmark.load(name), target, mirror=str(source), progress=False)


def _by_name(checks, name):
    return next(c for c in checks if c.name == name)


# --- doctor ---------------------------------------------------------------------------------------------------------
def test_doctor_verifies_a_dataset_once_then_trusts_its_cache(data_dir, tmp_path):
    _copy_dataset("micro_gcn", data_dir, tmp_path)
    first = _by_name(doctor.run_checks(["micro_gcn"], tmp_path, offline=True), "data micro_gcn")
    assert first.status == doctor.OK and "8 hashed now" in first.detail
    second = _by_name(doctor.run_checks(["micro_gcn"], tmp_path, offline=True), "data micro_gcn")
    assert second.status == doctor.OK and "0 hashed now, 8 from the cache" in second.detail
    # A changed file (size and mtime differ) is hashed again and named with both hashes.
    victim = tmp_path / "cora" / "planetoid" / "ind.cora.y"
    victim.write_bytes(victim.read_bytes() + b"x")
    third = _by_name(doctor.run_checks(["micro_gcn"], tmp_path, offline=True), "data micro_gcn")
    assert third.status == doctor.MISSING and third.needed_by == {"micro_gcn"}
    assert str(victim) in third.detail and "94465c14eb53e04c" in third.detail and "has sha256" in third.detail


def test_doctor_exit_status_counts_only_what_the_requested_workloads_need(data_dir, tmp_path, capsys):
    _copy_dataset("micro_gcn", data_dir, tmp_path)
    assert doctor.main(["--workload", "micro_gcn", "--data-dir", str(tmp_path), "--offline"]) == 0
    assert "ready: all 1 requested workloads" in capsys.readouterr().out
    # micro_dlrm's MovieLens files are not in this folder: MISSING, with the mirror named as the way to get them.
    assert doctor.main(["--workload", "micro_dlrm", "--workload", "micro_gcn", "--data-dir", str(tmp_path),
                        "--offline"]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "data micro_dlrm" in line)
    assert line.startswith("MISSING") and "fix: invoke download micro_dlrm" in line
    assert "cannot run yet: micro_dlrm (1 of 2 requested workloads ready)" in out
    for requirement in ("python", "torch", "torchvision", "threads", "disk", "memory", "loadgen", "docker",
                        "energy", "packages", "accelerator"):
        assert any(line.split()[1:2] == [requirement] for line in out.splitlines() if line[:1] in "OMW"), requirement


def test_doctor_says_why_a_dataset_cannot_be_reached(data_dir, tmp_path, monkeypatch):
    """A missing file the mirror lacks: doctor probes its canonical URL (here a local server answering 404 and a
    closed port) and says it cannot be reached and why; with --offline it says it did not probe."""
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 (the stdlib's name)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert doctor.probe_url(f"http://127.0.0.1:{server.server_port}/vww.tar.gz").startswith("HTTP 404")
    finally:
        server.shutdown()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert "refused" in doctor.probe_url(f"http://127.0.0.1:{port}/x").lower()

    monkeypatch.setenv("DATASET_MIRROR", str(tmp_path / "empty-mirror"))
    definition = benchmark.load("micronet_vww")
    url = definition["dataset"]["files"][0]["url"]
    check = doctor.dataset_check("micronet_vww", definition, tmp_path, doctor.VerifiedCache(tmp_path), offline=False,
                                 probes={url: "HTTP 404 Not Found"})
    assert check.status == doctor.MISSING
    assert f"cannot be reached from this machine: {url} (HTTP 404 Not Found)" in check.detail
    assert "synthetic stand-in exists for pipeline tests only" in check.detail
    offline = doctor.dataset_check("micronet_vww", definition, tmp_path, doctor.VerifiedCache(tmp_path),
                                   offline=True, probes={})
    assert "its URL was not probed (offline)" in offline.detail


def test_doctor_checks_weights_checkpoints_and_tools(data_dir, tmp_path, monkeypatch):
    checks = doctor.run_checks(["codegen", "nanogpt_infer", "rag"], tmp_path, offline=True)
    weights = _by_name(checks, "weights SmolLM2-135M-Instruct (offline)")
    assert weights.status == doctor.MISSING and weights.needed_by >= {"codegen", "rag"}
    assert _by_name(checks, "checkpoint nanogpt_infer").status == doctor.MISSING
    assert _by_name(checks, "weights MiniLM").status == doctor.OK
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    (tmp_path / "no-tools").mkdir()
    tools = doctor.package_checks({"codegen": benchmark.load("codegen")})
    bwrap = _by_name(tools, "tool bwrap")
    assert bwrap.status == doctor.MISSING and bwrap.fix == "sudo apt-get install bubblewrap"


def test_doctor_refuses_an_unknown_workload_in_one_sentence(capsys):
    assert doctor.main(["--workload", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown workload 'nope'; `invoke list` shows them"


# --- validate and the dashboard -------------------------------------------------------------------------------------
VALIDATED = ("micro_dlrm", "micro_gcn", "nanogpt_infer")


@pytest.fixture(scope="module")
def validated(data_dir, smoke_checkpoint, tmp_path_factory):
    """`invoke validate smoke` over two training workloads and one inference workload, as a user runs it."""
    out = tmp_path_factory.mktemp("validate") / "run"
    args = [sys.executable, "-m", "invoke", "validate", "smoke", "--out", str(out), "--data-dir", str(data_dir)]
    for name in VALIDATED:
        args += ["--workload", name]
    proc = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc


def test_validate_runs_each_workload_and_tabulates_it(validated):
    out, proc = validated
    rows = json.loads((out / "validate.json").read_text())["rows"]
    assert [r["workload"] for r in rows] == list(VALIDATED)
    assert all(r["status"] == "PASS" for r in rows), rows
    with open(out / "validate.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["workload"] for r in table] == list(VALIDATED) and list(table[0]) == list(validate.COLUMNS)
    for row in rows:
        assert row["wall_s"] > row["scored_s"] > 0 and row["outside_scored_s"] > 0
        assert row["peak_memory_mb"] > 100  # torch alone is resident well above that
        assert row["energy"].startswith("unmeasured") or row["energy"].endswith(" J")
        assert Path(row["log"]).is_file() and row["result_files"]
    gcn = rows[1]
    assert gcn["metric_vs_target"].startswith("test_accuracy ") and "(target >= 0.5)" in gcn["metric_vs_target"]
    assert gcn["score"].endswith(" s to target") and gcn["checker"] == "run valid; a score needs 5 runs"
    infer = rows[2]
    variants = benchmark.load("nanogpt_infer", smoke=True)["performance"]
    assert infer["score"].count(":") == len(variants) and all(v in infer["score"] for v in variants)
    # the printed table names every workload, with the status
    for name in VALIDATED:
        assert any(line.startswith(name) and " PASS " in line for line in proc.stdout.splitlines()), proc.stdout
    report = json.loads((out / "checker" / "report.json").read_text())
    assert {r["benchmark"] for r in report["results"]} == set(VALIDATED)


def test_validate_keep_going_and_failures(data_dir, tmp_path):
    """A workload without its data is NO DATA (with the fix) and, without --keep-going, stops the rest; a run that
    fails is FAIL with its own error sentence; with --keep-going every workload runs."""
    partial = tmp_path / "data"
    _copy_dataset("micro_gcn", data_dir, partial)
    rows, _ = validate.validate("smoke", ["micro_dlrm", "micro_gcn"], tmp_path / "stop", data_dir=partial)
    assert [r.status for r in rows] == ["NO DATA", "NOT RUN"]
    assert "fix: invoke download micro_dlrm" in rows[0].reason
    rows, out = validate.validate("smoke", ["micro_dlrm", "micro_gcn"], tmp_path / "go", data_dir=partial,
                                  keep_going=True)
    assert [r.status for r in rows] == ["NO DATA", "PASS"]
    assert (out / "dashboard" / "index.html").is_file()
    rows, _ = validate.validate("smoke", ["micro_gcn"], tmp_path / "bad", data_dir=partial, env={"DEVICE": "tpu"})
    assert rows[0].status == "FAIL" and rows[0].exit_code != 0 and "tpu" in rows[0].reason
    with pytest.raises(validate.ValidateError, match="already holds a validate run"):
        validate.validate("smoke", ["micro_gcn"], tmp_path / "go", data_dir=partial)


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def test_dashboard_loads_in_headless_chromium_without_console_errors(validated):
    """The page a user opens: every workload of the validate run has its section, its plot and its provenance; the
    browser logs no error (a missing resource or a script error would be one); a screenshot is written."""
    found = _chromium()
    if not found:
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are not installed (.ci/run installs them)")
        pytest.skip("chromium and chromium-driver are not installed (Debian: apt-get install chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    out, _ = validated
    index = out / "dashboard" / "index.html"
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    try:
        driver.get(index.as_uri())
        assert driver.title.startswith("Suite dashboard")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        table_rows = driver.find_elements(By.CSS_SELECTOR, "#suite tr")
        assert len(table_rows) == 1 + len(VALIDATED)
        for name in VALIDATED:
            section = driver.find_element(By.ID, f"workload-{name}")
            assert section.is_displayed() and "Provenance" in section.text and "PASS" in section.text
            kind = benchmark.load(name)["kind"]
            selector = "svg" if kind == "training" else "img"
            figures = section.find_elements(By.CSS_SELECTOR, selector)
            assert figures and all(f.size["width"] > 100 for f in figures), name
            if kind == "inference":  # the images decoded (a broken data URI has no natural width)
                assert all(driver.execute_script("return arguments[0].naturalWidth", f) > 100 for f in figures)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(height + 100, 12000))
        shot = out / "dashboard.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "dashboard.png")


def test_dashboard_never_reads_outside_its_folder(validated, tmp_path):
    """A report whose run file points outside the results folder (../) is not followed."""
    out, _ = validated
    assert dashboard._inside(out / "results", "../validate.json") is None
    assert dashboard._inside(out / "results", "/etc/passwd") is None
    index = dashboard.build(out / "results", tmp_path / "dash", smoke=True)
    page = index.read_text()
    assert all(f"id='workload-{name}'" in page for name in VALIDATED)


def test_invoke_list_shows_the_front_door_commands():
    proc = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ") and line.split()}
    for command in ("doctor", "validate", "dashboard"):
        assert command in lines and len(lines[command].split()) > 3, proc.stdout
