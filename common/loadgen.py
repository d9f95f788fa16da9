"""MLPerf LoadGen, as this suite uses it: a definition's performance settings set field by field on
mlperf_loadgen.TestSettings (never through LoadGen's bundled mlperf.conf, whose 10-minute minimum duration would
make every run long), and the files a run reads back (mlperf_log_detail.txt, mlperf_log_accuracy.json). Reading
the human summary (mlperf_log_summary.txt) is the checker's alone: submission_checker/loadgen_summary.py.

No torch and no mlperf_loadgen at import time: the submission checker reads results with this module too.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

SUMMARY, DETAIL, ACCURACY = "mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"
REFERENCE = "reference_outputs.json"  # the accuracy run's expected answers, written by our harness beside LoadGen's
PERFORMANCE_FILES = (SUMMARY, DETAIL)
ACCURACY_FILES = (SUMMARY, DETAIL, ACCURACY, REFERENCE)
MAX_DETAIL_BYTES = 64 << 20        # a detail log is ~40 KB; the checker refuses absurd files instead of reading them
MAX_ACCURACY_BYTES = 256 << 20

NS_PER_MS = 1_000_000
PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")


def _ms_to_ns(value):
    return int(round(value * NS_PER_MS))


def _percent_to_fraction(value):
    return value / 100.0


# definition key -> {scenario or "*": TestSettings attribute}, the conversion to LoadGen's unit, and the key of
# mlperf_log_detail.txt that records what was requested (the checker compares it with the definition).
SETTINGS = {
    "min_duration_ms": ({"*": "min_duration_ms"}, int, "requested_min_duration_ms"),
    "max_duration_ms": ({"*": "max_duration_ms"}, int, "requested_max_duration_ms"),
    "min_query_count": ({"*": "min_query_count"}, int, "requested_min_query_count"),
    "max_query_count": ({"*": "max_query_count"}, int, "requested_max_query_count"),
    "target_qps": ({"Server": "server_target_qps", "Offline": "offline_expected_qps"}, float,
                   {"Server": "requested_server_target_qps", "Offline": "requested_offline_expected_qps"}),
    "target_latency_ms": ({"Server": "server_target_latency_ns", "SingleStream": "single_stream_expected_latency_ns",
                           "MultiStream": "multi_stream_expected_latency_ns"}, _ms_to_ns,
                          {"Server": "requested_server_target_latency_ns",
                           "SingleStream": "requested_single_stream_expected_latency_ns",
                           "MultiStream": "requested_multi_stream_expected_latency_ns"}),
    "target_latency_percentile": ({"Server": "server_target_latency_percentile",
                                   "SingleStream": "single_stream_target_latency_percentile",
                                   "MultiStream": "multi_stream_target_latency_percentile"}, _percent_to_fraction,
                                  {"Server": "requested_server_target_latency_percentile",
                                   "SingleStream": "requested_single_stream_target_latency_percentile",
                                   "MultiStream": "requested_multi_stream_target_latency_percentile"}),
    "samples_per_query": ({"MultiStream": "multi_stream_samples_per_query"}, int,
                          {"MultiStream": "requested_multi_stream_samples_per_query"}),
    "max_async_queries": ({"Server": "server_max_async_queries"}, int, {"Server": "requested_server_max_async_queries"}),
    "performance_sample_count": ({"*": "performance_sample_count_override"}, int,
                                 "requested_performance_sample_count_override"),
    "use_token_latencies": ({"*": "use_token_latencies"}, bool, "requested_use_token_latencies"),
    "ttft_latency_ms": ({"*": "ttft_latency"}, _ms_to_ns, "requested_server_ttft_latency"),
    "tpot_latency_ms": ({"*": "tpot_latency"}, _ms_to_ns, "requested_server_tpot_latency"),
}
NOT_SETTINGS = {"scenario", "metric", "direction", "sut", "loadgen_overrides", "description", "quality"}
# What a submitter tunes to their system in either division, as MLPerf's user.conf does: the Server arrival rate
# (which sets the Server result), the Offline query size and the SingleStream/MultiStream latency estimate
# LoadGen plans with. Everything else (scenario, bounds, minimum duration and queries) is the benchmark's.
USER_TUNABLE = frozenset({"target_qps", "target_latency_ms"})
USER_TUNABLE_BY_SCENARIO = {"Server": {"target_qps"}, "Offline": {"target_qps"},
                            "SingleStream": {"target_latency_ms"}, "MultiStream": {"target_latency_ms"}}


def tunable_attributes(scenario: str) -> set[str]:
    """The TestSettings attributes a submitter may tune in this scenario (USER_TUNABLE_BY_SCENARIO)."""
    return {SETTINGS[key][0].get(scenario) or SETTINGS[key][0].get("*") for key in
            USER_TUNABLE_BY_SCENARIO.get(scenario, ())} - {None}


def sut_config(definition: dict, variant_name: str) -> dict:
    """serve.py's parameters of a variant: the definition's sut: with the variant's own sut: merged over it."""
    return {**(definition.get("sut") or {}), **(definition["performance"][variant_name].get("sut") or {})}


def variant_quality(definition: dict, variant_name: str) -> dict:
    """The quality a variant is held to: the definition's quality: with the variant's own quality: (its target,
    its gates) merged over it; `gates` is always present ({log key: {target, direction}})."""
    quality = dict(definition["quality"])
    own = definition["performance"][variant_name].get("quality") or {}
    gates = {**(quality.get("gates") or {}), **(own.get("gates") or {})}
    quality.update({key: value for key, value in own.items() if key != "gates"})
    quality["gates"] = gates
    return quality


def loadgen_settings(variant: dict) -> dict:
    """{TestSettings attribute: value in LoadGen's unit} for one performance variant of a definition, in the order
    they are set; loadgen_overrides (any other attribute, by LoadGen's name) come last."""
    scenario = variant["scenario"]
    settings = {}
    for key, value in variant.items():
        if key in NOT_SETTINGS:
            continue
        attributes, convert, _ = SETTINGS[key]
        attribute = attributes.get(scenario) or attributes.get("*")
        if attribute:  # a setting that does not apply to this scenario (target_qps in SingleStream) is not set
            settings[attribute] = convert(value)
    settings.update(variant.get("loadgen_overrides") or {})
    return settings


def expected_detail(variant: dict, tunable: bool = True) -> dict:
    """{mlperf_log_detail.txt key: value} that a run of this variant must show: the scenario and every setting
    (tunable=False leaves out what a submitter may tune, USER_TUNABLE_BY_SCENARIO)."""
    scenario = variant["scenario"]
    expected = {"requested_scenario": scenario, "effective_scenario": scenario}
    for key, value in variant.items():
        if key in NOT_SETTINGS or (not tunable and key in USER_TUNABLE_BY_SCENARIO.get(scenario, ())):
            continue
        attributes, convert, detail = SETTINGS[key]
        detail = detail.get(scenario) if isinstance(detail, dict) else detail
        if detail and (attributes.get(scenario) or attributes.get("*")):
            expected[detail] = convert(value)
    for attribute, value in (variant.get("loadgen_overrides") or {}).items():
        expected[f"requested_{attribute}"] = value
    return expected


def apply_user_conf(variant_name: str, variant: dict, user_conf: dict) -> dict:
    """The variant with a submitter's tuning applied: user_conf is {variant name: {setting: value}} (a YAML file
    named by USER_CONF); only USER_TUNABLE_BY_SCENARIO settings may appear. Raises ValueError in one sentence."""
    if user_conf is not None and not isinstance(user_conf, dict):
        raise ValueError("USER_CONF: expected {variant name: {setting: value}}")
    tuning = (user_conf or {}).get(variant_name) or {}
    if not isinstance(tuning, dict):
        raise ValueError(f"USER_CONF: {variant_name}: expected settings (a mapping), not {tuning!r}")
    allowed = USER_TUNABLE_BY_SCENARIO.get(variant["scenario"], set())
    for key, value in tuning.items():
        if key not in allowed:
            raise ValueError(f"USER_CONF: {variant_name}.{key} is not tunable in {variant['scenario']} "
                             f"(tunable: {', '.join(sorted(allowed)) or 'nothing'})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"USER_CONF: {variant_name}.{key} must be a positive number, not {value!r}")
    return {**variant, **tuning}


def test_settings(variant: dict, mode: str):
    """An mlperf_loadgen.TestSettings for this variant, mode 'PerformanceOnly' or 'AccuracyOnly'."""
    import mlperf_loadgen as lg

    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, variant["scenario"])
    settings.mode = getattr(lg.TestMode, mode)
    for attribute, value in loadgen_settings(variant).items():
        if not hasattr(settings, attribute):
            raise ValueError(f"mlperf_loadgen.TestSettings has no setting {attribute!r}")
        setattr(settings, attribute, value)
    return settings


# --- what a run reports --------------------------------------------------------------------------------------------
def metric_key(scenario: str, metric: str) -> tuple[str, float]:
    """(mlperf_log_detail.txt key, factor) that gives a definition's performance metric in its unit:
    tokens_per_second, samples_per_second, queries_per_second, or a latency percentile pNN[.N]_latency_ms|ns."""
    match = re.fullmatch(r"p([0-9]{2}(?:\.[0-9]+)?)_latency_(ms|ns)", metric)
    if match:
        return f"result_{float(match.group(1)):.2f}_percentile_latency_ns", 1e-6 if match.group(2) == "ms" else 1.0
    if metric == "tokens_per_second":
        return ("result_tokens_per_second" if scenario == "Offline" else "result_completed_tokens_per_second"), 1.0
    if metric in ("samples_per_second", "queries_per_second"):
        return {"Offline": "result_samples_per_second", "Server": "result_scheduled_samples_per_sec"}.get(
            scenario, "result_qps_with_loadgen_overhead"), 1.0
    raise ValueError(f"unknown performance metric {metric!r}")


# The result keys of a detail log that our log repeats: validity, throughputs, latency percentiles, and the
# time-to-first-token / time-per-output-token percentiles when LoadGen measured token latencies.
REPORTED_KEYS = tuple(
    ["result_validity", "result_samples_per_second", "result_tokens_per_second", "result_scheduled_samples_per_sec",
     "result_completed_samples_per_sec", "result_completed_tokens_per_second", "result_qps_with_loadgen_overhead",
     "result_qps_without_loadgen_overhead", "result_mean_latency_ns", "result_query_count"]
    + [key for p in PERCENTILES for key in (f"result_{p}_percentile_latency_ns",
                                            f"result_first_token_{p}_percentile_latency_ns",
                                            f"result_time_per_output_token_{p}_percentile_ns")])


def reported_keys(detail: dict) -> list[str]:
    """The REPORTED_KEYS this detail log has, in REPORTED_KEYS' order."""
    return [key for key in REPORTED_KEYS if key in detail]


class LoadGenFileError(ValueError):
    """A LoadGen output file that cannot be read; the message is one sentence naming the file (and line)."""


def read_detail(path: Path, shown: str | None = None) -> dict:
    """{key: value} of the first occurrence of each key of an mlperf_log_detail.txt (':::MLLOG {json}' lines).
    Errors LoadGen logged (metadata is_error) are collected under the key 'errors' as 'line: key: value'."""
    shown = shown or str(path)
    if path.stat().st_size > MAX_DETAIL_BYTES:
        raise LoadGenFileError(f"{shown}: larger than {MAX_DETAIL_BYTES} bytes; not a LoadGen detail log")
    values, errors = {}, []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise LoadGenFileError(f"{shown}:{lineno}: not valid UTF-8") from None
            if not line:
                continue
            if not line.startswith(":::MLLOG "):
                raise LoadGenFileError(f"{shown}:{lineno}: not an ':::MLLOG' line")
            try:
                event = json.loads(line[len(":::MLLOG "):])
                key, value = event["key"], event["value"]
            except (ValueError, KeyError, TypeError):
                raise LoadGenFileError(f"{shown}:{lineno}: not an MLLOG event (JSON with key and value)") from None
            if not isinstance(key, str):
                raise LoadGenFileError(f"{shown}:{lineno}: the key is not a string")
            values.setdefault(key, value)
            if isinstance(event.get("metadata"), dict) and event["metadata"].get("is_error"):
                errors.append(f"{lineno}: {key}: {value}")
    values["errors"] = errors
    return values


def read_accuracy(path: Path, shown: str | None = None) -> dict[int, bytes]:
    """{qsl_idx: response bytes} of an mlperf_log_accuracy.json (LoadGen writes each response as hex)."""
    shown = shown or str(path)
    if path.stat().st_size > MAX_ACCURACY_BYTES:
        raise LoadGenFileError(f"{shown}: larger than {MAX_ACCURACY_BYTES} bytes")
    try:
        entries = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise LoadGenFileError(f"{shown}: not LoadGen's accuracy JSON ({error})") from None
    if not isinstance(entries, list):
        raise LoadGenFileError(f"{shown}: not LoadGen's accuracy JSON (a list of responses)")
    responses = {}
    for n, entry in enumerate(entries):
        try:
            index, data = entry["qsl_idx"], bytes.fromhex(entry["data"])
        except (TypeError, KeyError, ValueError):
            raise LoadGenFileError(f"{shown}: response {n} has no integer qsl_idx and hex data") from None
        if not isinstance(index, int) or isinstance(index, bool):
            raise LoadGenFileError(f"{shown}: response {n} has no integer qsl_idx and hex data")
        responses.setdefault(index, data)
    return responses


def tokens_of(data: bytes) -> list[int]:
    """A response's tokens: little-endian int32, as the harness sends them to LoadGen."""
    if len(data) % 4:
        raise ValueError(f"{len(data)} bytes is not a whole number of int32 tokens")
    return [int.from_bytes(data[i:i + 4], "little", signed=True) for i in range(0, len(data), 4)]


def token_agreement(responses: dict[int, list[int]], reference: dict[int, list[int]]) -> tuple[float, list[int]]:
    """(fraction of reference samples answered with exactly the reference tokens, the indices that were not)."""
    wrong = sorted(index for index, tokens in reference.items() if responses.get(index) != tokens)
    return (1.0 - len(wrong) / len(reference) if reference else 0.0), wrong
