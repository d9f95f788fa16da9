"""The inference harness (common/inference.py, common/loadgen.py) and its first workload, language/nanogpt_infer:
the KV-cache decode equals full recompute, smoke runs of every scenario through run_and_time.sh are LoadGen-VALID
on a tiny checkpoint made by the nanogpt training benchmark, the accuracy gate fails for a SUT that corrupts its
cache, and the submission checker passes the real smoke results and fails tampered copies."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common import benchmark, loadgen
from common.bench import read_log
from conftest import REPO_ROOT, workload_modules

INFERENCE = sorted(name for name in benchmark.workload_dirs() if benchmark.load(name)["kind"] == "inference")
FILE_SET = ["Dockerfile", "download_dataset.sh", "verify_dataset.sh", "run_and_time.sh", "README.md",
            "requirements.txt", "benchmark.yaml", "serve.py"]
README_SECTIONS = ["Problem", "Directions", "Dataset", "Model", "Quality", "Performance", "Measurements"]
WORKLOAD = REPO_ROOT / "language" / "nanogpt_infer"


# --- the contract of every inference workload ------------------------------------------------------------------
def test_nanogpt_infer_is_an_inference_workload():
    assert "nanogpt_infer" in INFERENCE


@pytest.mark.parametrize("name", INFERENCE)
def test_file_set_and_definition(name):
    definition = benchmark.load(name)
    directory = Path(definition["directory"])
    for f in FILE_SET:
        assert (directory / f).is_file(), f"{directory}/{f} missing"
    for script in directory.glob("*.sh"):
        assert os.access(script, os.X_OK), f"{script} is not executable"
    assert definition["required_runs"] == 5 and definition["performance"]
    assert "mlcommons-loadgen==" in (directory / "requirements.txt").read_text()
    readme = (directory / "README.md").read_text()
    headings = [h.lower() for h in re.findall(r"^#+\s*(?:\d+\.\s*)?(.+)$", readme, re.M)]
    for section in README_SECTIONS:
        assert any(h.startswith(section.lower()) for h in headings), f"{name} README lacks section {section}"
    smoke = benchmark.load(name, smoke=True)
    for variant, settings in definition["performance"].items():
        assert smoke["performance"][variant]["min_duration_ms"] < settings["min_duration_ms"]
        for config in (settings, smoke["performance"][variant]):
            # LoadGen's SingleStream p90 needs at least 64 queries to be VALID (a smoke p50, 16: the smoke test runs it)
            if config["scenario"] == "SingleStream" and config.get("target_latency_percentile", 90) >= 90:
                assert config["min_query_count"] >= 64


def test_settings_are_set_field_by_field_in_loadgen_units():
    variant = benchmark.load("nanogpt_infer")["performance"]["decode_server"]
    settings = loadgen.loadgen_settings(variant)
    assert settings["server_target_qps"] == variant["target_qps"]
    assert settings["server_target_latency_ns"] == variant["target_latency_ms"] * 1_000_000
    assert settings["server_target_latency_percentile"] == variant["target_latency_percentile"] / 100
    assert settings["ttft_latency"] == variant["ttft_latency_ms"] * 1_000_000 and settings["use_token_latencies"]
    lg_settings = loadgen.test_settings(variant, "PerformanceOnly")
    assert lg_settings.min_duration_ms == variant["min_duration_ms"]  # not mlperf.conf's 10 minutes
    assert loadgen.metric_key("SingleStream", "p90_latency_ms") == ("result_90.00_percentile_latency_ns", 1e-6)
    assert loadgen.metric_key("Offline", "tokens_per_second")[0] == "result_tokens_per_second"
    assert loadgen.metric_key("Server", "tokens_per_second")[0] == "result_completed_tokens_per_second"


# --- the KV cache -----------------------------------------------------------------------------------------------
def _model(seed=0, **overrides):
    (model_module,) = workload_modules("nanogpt", "model")
    torch.manual_seed(seed)
    config = dict(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=32, **overrides)
    return model_module.GPT(model_module.GPTConfig(**config)).eval()


def _generate():
    (generate,) = workload_modules("nanogpt_infer", "generate")
    return generate


def test_cached_decode_equals_full_recompute_token_for_token():
    generate, model = _generate(), _model()
    prompts = torch.randint(0, 65, (4, 12), generator=torch.Generator().manual_seed(1))
    cached = generate.generate_cached(model, prompts, 16)
    for row in range(4):
        assert cached[row].tolist() == generate.generate_full_recompute(model, prompts[row], 16).tolist()


def test_cached_logits_match_the_model_and_several_new_tokens_see_no_future():
    generate, model = _generate(), _model()
    tokens = torch.randint(0, 65, (2, 20), generator=torch.Generator().manual_seed(2))
    full, _ = model(tokens)
    cache = generate.KVCache(2)
    first = generate.forward_cached(model, tokens[:, :8], cache)       # prefill
    rest = generate.forward_cached(model, tokens[:, 8:], cache)        # 12 new positions after a cached past
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="exceed the block size"):
        generate.forward_cached(model, tokens[:, :13], cache)


def test_first_token_is_reported_before_the_rest_is_generated():
    generate, model = _generate(), _model()
    seen = []
    out = generate.generate_cached(model, torch.zeros(3, 4, dtype=torch.long), 5, on_first_token=seen.append)
    assert len(seen) == 1 and seen[0].tolist() == out[:, 0].tolist()


# --- real smoke runs through run_and_time.sh ------------------------------------------------------------------------
def _env(data_dir: Path, results: Path, **extra) -> dict:
    return {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir), "RESULTS_DIR": str(results),
            "SMOKE": "1", "OMP_NUM_THREADS": "1", "LOGFILE": "", **extra}


@pytest.fixture(scope="session")
def smoke_results(data_dir, smoke_checkpoint, tmp_path_factory):
    """required_runs (smoke) runs of every variant through run_and_time.sh, into one results folder."""
    results = tmp_path_factory.mktemp("infer_results")
    runs = benchmark.load("nanogpt_infer", smoke=True)["required_runs"]
    procs = []
    for seed in range(1, runs + 1):
        proc = subprocess.run(["bash", str(WORKLOAD / "run_and_time.sh"), str(seed)], env=_env(data_dir, results),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        procs.append(proc)
    return results, procs


def _variant_dir(results: Path, variant: str) -> Path:
    return results / "reference" / "results" / "local_cpu" / "nanogpt_infer" / variant


def test_every_scenario_is_loadgen_valid_and_passes_its_gate(smoke_results):
    results, procs = smoke_results
    definition = benchmark.load("nanogpt_infer", smoke=True)
    for variant, settings in definition["performance"].items():
        assert f"{variant}: {settings['scenario']} VALID" in procs[0].stdout
        events, problems = read_log(_variant_dir(results, variant) / "result_0.txt")
        assert not problems, problems
        by_key = {e["key"]: e for e in events}
        assert by_key["inference_variant"]["value"] == variant
        assert by_key["loadgen_scenario"]["value"] == settings["scenario"]
        assert by_key["result_validity"]["value"] == "VALID"
        assert by_key["accuracy"]["value"] == 1.0 and by_key["checkpoint_val_loss"]["value"] <= 3.05
        assert by_key["run_stop"]["metadata"]["status"] == "success"
        assert by_key["checkpoint"]["value"]["training_benchmark"] == "nanogpt"
        keys = [e["key"] for e in events]
        assert keys.index("accuracy") < keys.index("run_start") < keys.index("result_validity") < \
            keys.index("run_stop")
        if settings.get("use_token_latencies") and settings["sut"]["task"] == "decode":
            assert "result_first_token_90.00_percentile_latency_ns" in by_key
            assert "result_time_per_output_token_90.00_percentile_ns" in by_key
        loadgen_dir = _variant_dir(results, variant) / "loadgen_0"
        for name, sha256 in by_key["loadgen_files"]["value"].items():
            assert loadgen.read_detail  # the files are LoadGen's own, kept beside the log
            assert (loadgen_dir / name).is_file(), name
        detail = loadgen.read_detail(loadgen_dir / "performance" / loadgen.DETAIL)
        for key, value in loadgen.expected_detail(settings).items():
            assert detail[key] == value or float(detail[key]) == float(value), key


def test_checker_passes_the_real_smoke_results(smoke_results):
    from submission_checker import checker

    results, _ = smoke_results
    report = checker.check(results, smoke=True)
    problems = report.errors + [e for r in report.results for e in r.errors]
    assert report.valid, problems
    assert len(report.results) == len(benchmark.load("nanogpt_infer")["performance"])


def _tampered(results: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    return copy


def _check_fails(folder: Path, fragment: str):
    from submission_checker import checker

    report = checker.check(folder, smoke=True)
    problems = " | ".join(report.errors + [e for r in report.results for e in r.errors])
    assert not report.valid and fragment in problems, problems


def test_checker_fails_an_edited_throughput(smoke_results, tmp_path):
    copy = _tampered(smoke_results[0], tmp_path)
    summary = _variant_dir(copy, "prefill_offline") / "loadgen_0" / "performance" / loadgen.SUMMARY
    text = summary.read_text()
    summary.write_text(re.sub(r"Tokens per second: ([0-9.]+)", lambda m: f"Tokens per second: {float(m.group(1)) * 2}",
                              text, count=1))
    _check_fails(copy, "Tokens per second")


def test_checker_fails_a_removed_accuracy_log(smoke_results, tmp_path):
    copy = _tampered(smoke_results[0], tmp_path)
    (_variant_dir(copy, "decode_server") / "loadgen_0" / "accuracy" / loadgen.ACCURACY).unlink()
    _check_fails(copy, "mlperf_log_accuracy.json")


# --- the accuracy gate ------------------------------------------------------------------------------------------
BROKEN_CACHE = """
import sys
sys.path.insert(0, {workload!r})
import generate
append = generate.KVCache.append
def forgetful_append(self, layer, k, v):   # keeps only the newest 4 positions: a corrupted cache
    k, v = append(self, layer, k, v)
    self.keys[layer], self.values[layer] = k[:, :, -4:], v[:, :, -4:]
    return self.keys[layer], self.values[layer]
generate.KVCache.append = forgetful_append
sys.argv = ["serve.py"] + sys.argv[1:]
import serve
sys.exit(serve.main())
"""


def test_accuracy_gate_fails_for_a_sut_that_corrupts_its_cache(data_dir, smoke_checkpoint, tmp_path):
    log = tmp_path / "result_0.txt"
    script = tmp_path / "broken_serve.py"
    script.write_text(BROKEN_CACHE.format(workload=str(WORKLOAD)))
    proc = subprocess.run([sys.executable, str(script), "--variant", "decode_singlestream", "--seed", "1",
                           "--smoke", "--data-dir", str(data_dir), "--log-file", str(log)],
                          env={**_env(data_dir, tmp_path), "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    events, _ = read_log(log)
    by_key = {e["key"]: e for e in events}
    assert by_key["accuracy"]["value"] < 1.0 and by_key["accuracy"]["metadata"]["wrong"]
    assert by_key["run_stop"]["metadata"]["status"] == "aborted"
    assert "accuracy gate FAILED" in proc.stdout


def test_a_changed_checkpoint_is_refused_in_one_sentence(data_dir, smoke_checkpoint, tmp_path):
    changed = tmp_path / "changed.pt"
    shutil.copy(smoke_checkpoint, changed)
    with open(changed, "ab") as f:
        f.write(b"\0")
    shutil.copy(smoke_checkpoint.with_name(smoke_checkpoint.name + ".json"), tmp_path / "changed.pt.json")
    proc = subprocess.run([sys.executable, str(WORKLOAD / "serve.py"), "--variant", "decode_server", "--seed", "1",
                           "--smoke", "--data-dir", str(data_dir), "--log-file", str(tmp_path / "r.txt")],
                          env={**_env(data_dir, tmp_path), "CHECKPOINT": str(changed)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: checkpoint ") and "recorded" in proc.stderr
