"""The workload contract, checked on every <suite>/<workload>/benchmark.yaml: file set, definition fields, and a
real smoke run through run_and_time.sh whose log is schema-valid, complete, accepted by MLCommons' own
compliance checker, and reproduced by a 2-process gloo DDP run at the same global batch size."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from common import benchmark
from conftest import REPO_ROOT, uses_synthetic_data

WORKLOADS = sorted(name for name in benchmark.workload_dirs() if benchmark.load(name)["kind"] == "training")
# (inference workloads have their own contract: tests/test_inference.py)
FILE_SET = ["Dockerfile", "download_dataset.sh", "verify_dataset.sh", "run_and_time.sh", "README.md",
            "requirements.txt", "benchmark.yaml", "model.py", "train.py"]
README_SECTIONS = ["Problem", "Directions", "Dataset", "Model", "Quality", "Calibration", "Approximate runtime"]
EXACTLY_ONE = ["submission_benchmark", "submission_org", "submission_division", "submission_status",
               "submission_platform", "init_stop", "run_start", "run_stop", "seed", "global_batch_size",
               "gradient_accumulation_steps", "train_samples", "eval_samples", "provenance"]
AT_LEAST_ONE = ["cache_clear", "init_start", "block_start", "block_stop", "eval_start", "eval_stop", "train_loss"]
PROVENANCE_FIELDS = ["git", "code", "dataset_sha256", "packages", "python", "torch", "cuda", "hardware", "container"]
LOG_SCHEMA = REPO_ROOT / "submission_checker" / "schemas" / "log_event.schema.json"


def test_every_suite_is_present_and_explained():
    for suite in ["language", "vision", "tiny", "recommender", "agent", "slm", "graph"]:
        assert (REPO_ROOT / suite / "README.md").is_file(), f"{suite}/README.md missing"
    assert "nanogpt" in WORKLOADS


@pytest.mark.parametrize("name", WORKLOADS)
def test_file_set_and_definition(name):
    directory = Path(benchmark.load(name)["directory"])
    for f in FILE_SET:
        assert (directory / f).is_file(), f"{directory}/{f} missing"
    for script in directory.glob("*.sh"):
        assert os.access(script, os.X_OK), f"{script} is not executable"
    d = benchmark.load(name)
    assert d["suite"] == directory.parent.name
    assert d["quality"]["direction"] in ("minimize", "maximize")
    assert d["required_runs"] == 5
    for entry in d["dataset"]["files"]:
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) and entry["url"].startswith("http")
    assert set(d["open_division_relaxes"]) <= set(d["hyperparameters"])
    readme = (directory / "README.md").read_text()
    headings = [h.lower() for h in re.findall(r"^#+\s*(?:\d+\.\s*)?(.+)$", readme, re.M)]
    for section in README_SECTIONS:
        assert any(h.startswith(section.lower()) for h in headings), f"{name} README lacks section {section}"
    smoke = benchmark.load(name, smoke=True)
    assert smoke["hyperparameters"] != d["hyperparameters"] or smoke["quality"] != d["quality"], \
        "the smoke config must differ from the benchmark config"


@pytest.mark.parametrize("name", WORKLOADS)
def test_smoke_run_log_is_complete_and_valid(name, smoke_logs):
    proc, log_file, events = smoke_logs(name)
    definition = benchmark.load(name, smoke=True)
    lines = proc.stdout.splitlines()
    assert any(l.startswith("STARTING TIMING RUN AT ") for l in lines)
    assert any(l.startswith("ENDING TIMING RUN AT ") for l in lines)
    assert any(re.fullmatch(rf"RESULT,{name},7,\d+,[^,]*,.+", l) for l in lines), proc.stdout[-2000:]

    schema = json.loads(LOG_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    raw = [l for l in log_file.read_text().splitlines() if l.startswith(":::MLLOG ")]
    assert len(raw) == len(events) > 0
    for lineno, line in enumerate(raw, 1):
        errors = list(validator.iter_errors(json.loads(line[len(":::MLLOG "):])))
        assert not errors, f"{log_file}:{lineno}: {errors[0].message}"

    counts = {}
    for e in events:
        counts[e["key"]] = counts.get(e["key"], 0) + 1
    for key in EXACTLY_ONE:
        assert counts.get(key) == 1, f"{key} logged {counts.get(key, 0)} times"
    for key in AT_LEAST_ONE + [definition["quality"]["log_key"]]:
        assert counts.get(key, 0) >= 1, f"{key} not logged"
    by_key = {e["key"]: e for e in events}
    assert by_key["run_stop"]["metadata"]["status"] == "success"
    assert by_key["run_start"]["time_ms"] <= by_key["run_stop"]["time_ms"]
    assert [e["time_ms"] for e in events] == sorted(e["time_ms"] for e in events)
    assert by_key["seed"]["value"] == 7
    for key, value in definition["hyperparameters"].items():
        assert by_key[key]["value"] == value, f"logged {key}={by_key[key]['value']!r}, definition says {value!r}"
    metric = [e for e in events if e["key"] == definition["quality"]["log_key"]]
    assert all({"epoch_num", "samples_count"} <= set(e["metadata"]) for e in metric)
    assert benchmark.target_reached(metric[-1]["value"], definition["quality"])
    assert not any(benchmark.target_reached(e["value"], definition["quality"]) for e in metric[:-1]), \
        "the run must stop at the first evaluation that reaches the target"
    prov = by_key["provenance"]["value"]
    for field in PROVENANCE_FIELDS:
        assert field in prov, f"provenance lacks {field}"
    if uses_synthetic_data(name):  # the stand-in corpus is the logged dataset, and the log says it is synthetic
        directory = definition["dataset"]["synthetic"]["directory"]
        assert list(prov["dataset_sha256"]) == [f"{directory}/SHA256SUMS"] and by_key["synthetic_dataset"]["value"] == directory
    else:
        assert prov["dataset_sha256"] == {f["path"]: f["sha256"] for f in definition["dataset"]["files"]}
        assert "synthetic_dataset" not in by_key
    assert re.fullmatch(r"[0-9a-f]{64}", prov["code"]["workload_sha256"])
    assert prov["packages"]["versions"]["torch"].startswith("2.15.0")
    assert prov["hardware"]["cpu_count"] >= 1


def _compliance_config(tmp_path: Path) -> Path:
    """MLCommons' training common rules as shipped by mlperf_logging, minus the two lines that only know
    MLCommons' own benchmark names (the division's follow-up config that lists them)."""
    import mlperf_logging.compliance_checker as cc

    rules = yaml.safe_load((Path(cc.__file__).parent / "training_5.1.0" / "common.yaml").read_text())
    for rule in rules:
        if rule.get("KEY", {}).get("NAME") == "submission_division":
            rule["KEY"]["POST"] = "s['compile_time_mins'] = 30"
    path = tmp_path / "common_rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    return path


@pytest.mark.parametrize("name", WORKLOADS)
def test_mlcommons_compliance_checker_accepts_the_log(name, smoke_logs, tmp_path):
    _, log_file, _ = smoke_logs(name)
    proc = subprocess.run(
        [sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training", "--ruleset", "5.1.0",
         "--config", str(_compliance_config(tmp_path)), "--log_output", str(tmp_path / "cc.log"), str(log_file)],
        capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", WORKLOADS)
def test_two_process_ddp_matches_one_process(name, smoke_logs):
    """2 gloo processes at the same global batch see the same samples, so the logged training loss and the
    evaluation metric must match the 1-process run up to floating-point reduction order (rel. 1e-3)."""
    _, _, single = smoke_logs(name, nproc=1)
    _, _, double = smoke_logs(name, nproc=2)
    key = benchmark.load(name)["quality"]["log_key"]
    for k in ("train_loss", key):
        a = [(e["metadata"]["samples_count"], e["value"]) for e in single if e["key"] == k]
        b = [(e["metadata"]["samples_count"], e["value"]) for e in double if e["key"] == k]
        assert [s for s, _ in a] == [s for s, _ in b]
        for (s, x), (_, y) in zip(a, b):
            assert y == pytest.approx(x, rel=1e-3, abs=1e-4), f"{k} at {s} samples: 1 process {x}, 2 processes {y}"
