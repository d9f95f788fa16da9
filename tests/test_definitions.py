"""Benchmark definitions are validated data: common/benchmark.schema.json, the defaults load sets, the one-line
DefinitionError, suite discovery, and the keys of the four workloads' benchmark.yaml."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from common import benchmark, loadgen

REPO_ROOT = Path(__file__).resolve().parents[1]
NANOGPT = REPO_ROOT / "language" / "nanogpt" / "benchmark.yaml"
WORKLOADS = sorted(name for name in benchmark.workload_dirs() if benchmark.load(name)["kind"] == "training")


def nanogpt_raw() -> dict:
    return yaml.safe_load(NANOGPT.read_text())


def write_definition(root: Path, definition: dict, suite: str = "language", workload: str = "nanogpt") -> Path:
    """A definitions root holding one definition; returns the file."""
    path = root / suite / workload / benchmark.DEFINITION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def load_error(tmp_path: Path, definition: dict, smoke: bool = False) -> str:
    path = write_definition(tmp_path, definition)
    with pytest.raises(benchmark.DefinitionError) as error:
        benchmark.load(path.parent, smoke=smoke)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return message[len(f"{path}: "):]


def inference_definition() -> dict:
    """nanogpt's definition turned into an inference one: two variants (a Server throughput, a SingleStream latency),
    the checkpoint of the training benchmark it serves, the SUT parameters, an accuracy gate."""
    definition = nanogpt_raw()
    for key in ("reference_convergence", "smoke", "model", "hyperparameters", "open_division_relaxes"):
        definition.pop(key)
    definition.update(kind="inference", sut={"prompts": 64, "output_tokens": 64},
                      checkpoint={"training_benchmark": "nanogpt", "reference_seed": 1,
                                  "file": "checkpoints/nanogpt_seed1.pt"},
                      performance={
                          "decode_server": {"scenario": "Server", "metric": "tokens_per_second",
                                            "direction": "maximize", "min_duration_ms": 60000, "min_query_count": 100,
                                            "target_qps": 2.0, "target_latency_ms": 2000, "sut": {"task": "decode"}},
                          "decode_singlestream": {"scenario": "SingleStream", "metric": "p90_latency_ms",
                                                  "direction": "minimize", "target_latency_ms": 50,
                                                  "use_token_latencies": True}})
    definition["quality"] = {"metric": "exact_match", "description": "exact match on a fixed subset",
                             "target": 0.5, "direction": "maximize"}
    return definition


# --- the schema and the four definitions ---------------------------------------------------------------------------

def test_schema_is_draft_2020_12_and_states_the_defaults_load_sets():
    schema = json.loads(benchmark.SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for key, value in benchmark.DEFAULTS.items():
        assert schema["properties"][key]["default"] == value, key
    for key, value in benchmark.QUALITY_DEFAULTS.items():
        assert schema["properties"]["quality"]["properties"][key]["default"] == value, key


@pytest.mark.parametrize("name", WORKLOADS)
def test_every_definition_validates_with_and_without_smoke(name):
    for smoke in (False, True):
        definition = benchmark.load(name, smoke=smoke)
        assert definition["kind"] in ("training", "inference") and definition["smoke"] is smoke
        assert definition["required_runs"] == 5
        if definition["kind"] == "training":
            assert definition["quality"]["log_key"] == "eval_accuracy"
            assert set(definition["open_division_relaxes"]) <= set(definition["hyperparameters"])
            assert "performance" not in definition
        else:  # each variant gives LoadGen settings that common/loadgen.py can set and the checker can compare
            assert definition["performance"]
            for variant in definition["performance"].values():
                assert loadgen.expected_detail(variant)["requested_scenario"] == variant["scenario"]
                assert loadgen.metric_key(variant["scenario"], variant["metric"])[0].startswith("result_")


def test_the_four_workloads_are_discovered():
    assert {"nanogpt", "resnet18", "micro_dlrm", "micro_gcn"} <= set(WORKLOADS)
    assert not hasattr(benchmark, "SUITES")  # discovered, not listed by hand


def test_micro_gcn_scores_its_test_split_once_and_has_no_unread_keys():
    raw = yaml.safe_load((REPO_ROOT / "graph" / "micro_gcn" / "benchmark.yaml").read_text())
    assert raw["quality"]["max_evaluations"] == 1
    assert not {"val_every_steps", "test_evaluations", "eval_every_steps"} & set(raw["quality"])
    assert "split" not in raw["dataset"]


def test_defaults_are_set_once_by_load(tmp_path):
    definition = nanogpt_raw()
    for key in ("kind", "required_runs", "open_division_relaxes"):
        definition.pop(key, None)
    definition["quality"].pop("log_key")
    loaded = benchmark.load(write_definition(tmp_path, definition).parent)
    assert (loaded["kind"], loaded["required_runs"], loaded["open_division_relaxes"]) == ("training", 5, [])
    assert loaded["quality"]["log_key"] == "eval_accuracy"
    other = benchmark.load(write_definition(tmp_path, definition).parent)
    other["open_division_relaxes"].append("opt_name")  # each load gets its own default list
    assert benchmark.load(write_definition(tmp_path, definition).parent)["open_division_relaxes"] == []


def test_what_the_checker_reads_validates(tmp_path):
    """The hyperparameter entries, log_rules and smoke overrides that submission_checker/README.md documents."""
    definition = nanogpt_raw()
    hp = definition["hyperparameters"]
    hp["global_batch_size"] = [32, 64, 128]
    hp["opt_base_learning_rate"] = {"min": 0.001, "max": 0.004}
    hp["opt_end_learning_rate"] = {"max": 0.001}
    hp["opt_lr_decay_boundaries"] = {"one_of": [[30, 60], [40, 80]]}
    hp["opt_name"] = "adamw"
    definition["log_rules"] = {"eval_samples": {"occurs": "exactly_one", "where": "init", "values": [10000]}}
    definition["smoke"].update(required_runs=3, reference_convergence={"epochs_to_target": [1, 2, 3]})
    loaded = benchmark.load(write_definition(tmp_path, definition).parent, smoke=True)
    assert loaded["required_runs"] == 3
    assert loaded["hyperparameters"]["opt_lr_decay_boundaries"] == {"one_of": [[30, 60], [40, 80]]}
    definition["log_rules"]["eval_samples"]["occurs"] = "once"
    assert load_error(tmp_path, definition).startswith(
        "log_rules.eval_samples.occurs: 'once' is not one of ['exactly_one', 'at_least_one', 'at_most_one']")


# --- one clear error naming the file and the field -----------------------------------------------------------------

def test_the_error_names_the_file_and_the_field(tmp_path):
    definition = nanogpt_raw()
    definition["quality"]["target"] = "abc"
    path = write_definition(tmp_path, definition)
    with pytest.raises(benchmark.DefinitionError) as error:
        benchmark.load(path.parent)
    assert str(error.value) == f"{path}: quality.target: 'abc' is not of type 'number'"
    assert isinstance(error.value, ValueError)


def test_an_error_in_the_repository_names_the_file_relative_to_it():
    assert benchmark._label(NANOGPT) == "language/nanogpt/benchmark.yaml"


def _set(path, value):
    def change(d):
        *parents, last = path
        for key in parents:
            d = d[key]
        d[last] = value
    return change


def _drop(path):
    def change(d):
        *parents, last = path
        for key in parents:
            d = d[key]
        del d[last]
    return change


BAD = {
    "typo at the top level": (_set(["qualty"], {}), "Additional properties are not allowed ('qualty' was unexpected)"),
    "typo in quality": (_set(["quality", "eval_evry_steps"], 5),
                        "quality: Additional properties are not allowed ('eval_evry_steps' was unexpected)"),
    "typo in a file entry": (_set(["dataset", "files", 0, "sha"], "0" * 64),
                             "dataset.files[0]: Additional properties are not allowed ('sha' was unexpected)"),
    "bad sha256": (_set(["dataset", "files", 0, "sha256"], "ABC"), "dataset.files[0].sha256: 'ABC' does not match"),
    "bad direction": (_set(["quality", "direction"], "maximise"),
                      "quality.direction: 'maximise' is not one of ['minimize', 'maximize']"),
    "bad kind": (_set(["kind"], "train"), "kind: 'train' is not one of ['training', 'inference']"),
    "no max_steps": (_drop(["quality", "max_steps"]), "quality: 'max_steps' is a required property"),
    "no cadence": (_drop(["quality", "eval_every_steps"]),
                   "quality: a training definition needs an evaluation cadence: quality.eval_every_steps or "
                   "quality.max_evaluations"),
    "performance without kind inference": (
        _set(["performance"], {"offline": {"scenario": "Offline", "metric": "samples_per_second",
                                           "direction": "maximize"}}),
        "performance: a performance section needs kind: inference"),
    "bad hyperparameter value": (_set(["hyperparameters", "opt_name"], {"mn": 1}),
                                 "hyperparameters.opt_name: {'mn': 1} is not a hyperparameter value"),
    "open division relaxes an unknown key": (_set(["open_division_relaxes"], ["opt_name", "opt_nope"]),
                                             "open_division_relaxes[1]: 'opt_nope' is not a key of hyperparameters"),
    "required_runs zero": (_set(["required_runs"], 0), "required_runs: 0 is less than the minimum of 1"),
    "a name with a space": (_set(["name"], "nano gpt"), "name: 'nano gpt' is not a name"),
    "smoke overrides the name": (_set(["smoke", "name"], "x"),
                                 "smoke: Additional properties are not allowed ('name' was unexpected)"),
    "smoke value of the wrong type": (_set(["smoke", "quality", "target"], "abc"),
                                      "smoke.quality.target: 'abc' is not of type 'number'"),
    "smoke typo": (_set(["smoke", "quality", "max_step"], 3),
                   "smoke.quality: Additional properties are not allowed ('max_step' was unexpected)"),
    "smoke relaxes an unknown key": (_set(["smoke", "open_division_relaxes"], ["opt_nope"]),
                                     "smoke.open_division_relaxes[0]: 'opt_nope' is not a key of hyperparameters"),
}


@pytest.mark.parametrize("case", BAD)
def test_each_bad_definition_is_one_sentence(case, tmp_path):
    change, expected = BAD[case]
    definition = nanogpt_raw()
    change(definition)
    # the smoke overrides are checked on every load, so a broken smoke section fails the full configuration too
    message = load_error(tmp_path, definition)
    assert message.startswith(expected), message


def test_not_yaml_and_not_a_mapping(tmp_path):
    path = tmp_path / "language" / "nanogpt" / benchmark.DEFINITION_FILE
    path.parent.mkdir(parents=True)
    path.write_text("name: nanogpt\nquality: [1, 2\n")
    with pytest.raises(benchmark.DefinitionError, match=r"benchmark.yaml: not valid YAML: .*\(line \d+, column \d+\)"):
        benchmark.load(path.parent)
    path.write_text("- a list\n")
    with pytest.raises(benchmark.DefinitionError, match="a definition is a mapping of fields, not list"):
        benchmark.load(path.parent)


# --- inference definitions ---------------------------------------------------------------------------------------

def test_an_inference_definition_validates(tmp_path):
    definition = inference_definition()
    definition["smoke"] = {"sut": {"prompts": 8},
                           "performance": {"decode_server": {"min_duration_ms": 300, "target_qps": 50}}}
    directory = write_definition(tmp_path, definition).parent
    loaded = benchmark.load(directory)
    assert loaded["kind"] == "inference" and loaded["quality"]["log_key"] == "eval_accuracy"
    assert list(loaded["performance"]) == ["decode_server", "decode_singlestream"]
    assert loaded["performance"]["decode_server"]["min_duration_ms"] == 60000
    assert loaded["checkpoint"]["training_benchmark"] == "nanogpt" and loaded["sut"]["prompts"] == 64
    assert "model" not in loaded and "hyperparameters" not in loaded  # an inference definition needs neither
    smoke = benchmark.load(directory, smoke=True)  # the smoke overrides reach into one variant, key by key
    server = smoke["performance"]["decode_server"]
    assert (server["min_duration_ms"], server["target_qps"], server["target_latency_ms"]) == (300, 50, 2000)
    assert smoke["performance"]["decode_singlestream"] == loaded["performance"]["decode_singlestream"]
    assert smoke["sut"] == {"prompts": 8, "output_tokens": 64}


def test_every_loadgen_setting_of_the_schema_is_mapped():
    """A variant key the schema accepts is one common/loadgen.py knows how to set (and the checker how to compare)
    or one it knows is not a setting: a new key in the schema alone would break loadgen_settings()."""
    schema = json.loads(benchmark.SCHEMA_FILE.read_text())
    assert set(schema["$defs"]["performance"]["properties"]) == set(loadgen.SETTINGS) | loadgen.NOT_SETTINGS


SERVER, SINGLE = ("performance", "decode_server"), ("performance", "decode_singlestream")


@pytest.mark.parametrize("change,expected", [
    (_drop(["performance"]), "'performance' is a required property"),
    (_set(["performance"], {}), "performance: {} should be non-empty"),
    (_set(["performance", "decode server"], {"scenario": "Offline", "metric": "samples_per_second",
                                             "direction": "maximize"}), "performance: 'decode server' is not a name"),
    # (the schema's errorMessage "is not a LoadGen scenario" is not reached through a bare $ref: jsonschema's own
    # "is not one of [...]" is shown; both start like this)
    (_set([*SERVER, "scenario"], "Servr"), "performance.decode_server.scenario: 'Servr' is not "),
    (_set([*SERVER, "scenario"], ["Offline", "Server"]),
     "performance.decode_server.scenario: ['Offline', 'Server'] is not "),
    (_set(["performance"], {"scenario": "Offline", "metric": "samples_per_second", "direction": "maximize"}),
     "performance.scenario: 'Offline' is not of type 'object'"),
    (_drop([*SERVER, "target_qps"]), "performance.decode_server: 'target_qps' is a required property"),
    (_drop([*SERVER, "target_latency_ms"]), "performance.decode_server: 'target_latency_ms' is a required property"),
    (_drop([*SERVER, "direction"]), "performance.decode_server: 'direction' is a required property"),
    (_set([*SERVER, "direction"], "minimize"),
     "performance.decode_server.direction: a throughput metric is maximized, not 'minimize'"),
    (_set([*SINGLE, "direction"], "maximize"),
     "performance.decode_singlestream.direction: a latency metric is minimized, not 'maximize'"),
    (_set([*SERVER, "metric"], "fps"), "performance.decode_server.metric: 'fps' is not a performance metric"),
    (_set([*SERVER, "min_duration_s"], 60),
     "performance.decode_server: Additional properties are not allowed ('min_duration_s' was unexpected)"),
    (_set([*SERVER, "target_latency_percentile"], 100),
     "performance.decode_server.target_latency_percentile: 100 is greater than or equal to the maximum of 100"),
    (_set(["checkpoint", "seed"], 1), "checkpoint: Additional properties are not allowed ('seed' was unexpected)"),
    (_drop(["checkpoint", "training_benchmark"]), "checkpoint: 'training_benchmark' is a required property"),
    (_set(["sut"], [64]), "sut: [64] is not of type 'object'"),
    (_set(["smoke"], {"performance": {"decode_server": {"target_qps": "fast"}}}),
     "smoke.performance.decode_server.target_qps: 'fast' is not of type 'number'"),
    (_set(["reference_convergence"], {"samples_to_target": [1, 2, 3]}),
     "reference_convergence: reference_convergence is for training"),
], ids=["no performance", "no variant", "a variant name with a space", "bad scenario", "a list of scenarios",
        "the old flat performance section", "Server without target_qps", "Server without target_latency_ms",
        "no direction", "throughput minimized", "latency maximized", "unknown metric", "typo in a LoadGen setting",
        "percentile out of range", "typo in checkpoint", "checkpoint without its training benchmark",
        "sut not a mapping", "bad smoke override of a variant", "reference convergence"])
def test_bad_inference_definitions(change, expected, tmp_path):
    definition = inference_definition()
    change(definition)
    message = load_error(tmp_path, definition)
    assert message.startswith(expected), message


@pytest.mark.parametrize("key,value", [("sut", {"prompts": 8}),
                                       ("checkpoint", {"training_benchmark": "nanogpt"})])
def test_a_training_definition_refuses_inference_sections(key, value, tmp_path):
    definition = nanogpt_raw()
    definition[key] = value
    assert load_error(tmp_path, definition) == f"{key}: {key}: is for kind: inference"


# --- discovery ---------------------------------------------------------------------------------------------------

def test_suites_are_discovered_and_tooling_directories_skipped(tmp_path):
    definition = nanogpt_raw()
    for suite, workload in [("alpha", "one"), ("beta", "two"), (".hidden", "three"), ("tests", "four"),
                            ("docker", "five"), ("common", "six"), ("submission_checker", "seven"),
                            ("_private", "eight"), ("results", "nine"), ("x.egg-info", "ten")]:
        write_definition(tmp_path, {**copy.deepcopy(definition), "name": workload, "suite": suite}, suite, workload)
    (tmp_path / "alpha" / "not_a_workload").mkdir()
    (tmp_path / "README.md").write_text("a file, not a suite")
    found = benchmark.workload_dirs(tmp_path)
    assert found == {"one": tmp_path / "alpha" / "one", "two": tmp_path / "beta" / "two"}


def test_two_definitions_with_the_same_name_name_both_files(tmp_path):
    first = write_definition(tmp_path, nanogpt_raw(), "alpha", "gpt")
    second = write_definition(tmp_path, nanogpt_raw(), "beta", "gpt2")
    with pytest.raises(benchmark.DefinitionError) as error:
        benchmark.workload_dirs(tmp_path)
    assert str(error.value) == f"two benchmark definitions are named 'nanogpt': {first} and {second}"


def test_a_definition_without_a_name_is_named_by_its_file(tmp_path):
    definition = nanogpt_raw()
    del definition["name"]
    path = write_definition(tmp_path, definition)
    with pytest.raises(benchmark.DefinitionError, match=f"^{path}: name: "):
        benchmark.workload_dirs(tmp_path)


def test_import_needs_neither_torch_nor_jsonschema():
    code = ("import sys; from common import benchmark; "
            "assert 'torch' not in sys.modules and 'jsonschema' not in sys.modules, sorted(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_fetch_command_prints_a_bad_definition_as_one_line(tmp_path):
    definition = nanogpt_raw()
    definition["quality"]["target"] = "abc"
    path = write_definition(tmp_path, definition)
    proc = subprocess.run([sys.executable, "-m", "common.fetch", "verify", str(path.parent), "--data-dir",
                           str(tmp_path / "data")], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == f"error: {path}: quality.target: 'abc' is not of type 'number'\n"
