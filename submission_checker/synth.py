"""Synthetic results folders, for the checker's tests and its benchmark (bench.py).

Logs follow a benchmark definition and the sequence common/timed_run.py writes, line for line as mlperf_logging's
mllog formats them; a second generator writes a real-MLCommons-style training results folder; a third writes
inference results (common/inference.py's layout) from real LoadGen runs of a trivial system under test. Everything
here but LoadGen's timings is deterministic in its arguments. Tampering (the failure fixtures) is done by editing
the event lists or files.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

TOKEN = ":::MLLOG "

# A realistic package listing (~90 entries, as common/provenance.py records it); versions are made up.
PACKAGES = {name: f"{1 + i % 4}.{i % 13}.{i % 7}" for i, name in enumerate(
    "absl-py aiohttp aiosignal annotated-types anyio attrs certifi charset-normalizer click contourpy cycler "
    "datasets dill filelock fonttools frozenlist fsspec grpcio h11 httpcore httpx huggingface-hub idna iniconfig "
    "invoke jinja2 jsonschema jsonschema-specifications kiwisolver markdown markupsafe matplotlib mlperf-logging "
    "mpmath multidict multiprocess networkx numpy nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc "
    "nvidia-cuda-runtime nvidia-cudnn nvidia-cufft nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-nccl "
    "nvidia-nvjitlink nvidia-nvtx packaging pandas pillow pip pluggy protobuf psutil pyarrow pydantic "
    "pydantic-core pygments pyparsing pytest python-dateutil pytz pyyaml referencing regex requests rpds-py "
    "safetensors scikit-learn scipy sentencepiece setuptools six sniffio sympy tensorboard threadpoolctl "
    "tokenizers torch torchvision tqdm transformers triton typing-extensions tzdata urllib3 werkzeug wheel xxhash "
    "yarl".split())}

CPU = {"cpu_model": "AMD EPYC 7763 64-Core Processor", "cpu_count": 32, "gpu_name": "NVIDIA A100-SXM4-40GB",
       "gpu_count": 1, "machine": "x86_64"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event(time_ms, event_type, key, value=None, metadata=None, lineno=100):
    return {"namespace": "", "time_ms": time_ms, "event_type": event_type, "key": key, "value": value,
            "metadata": {"file": "language/train.py", "lineno": lineno, **(metadata or {})}}


def provenance(definition: dict, hardware: dict | None = None, code: dict | None = None) -> dict:
    packages = dict(sorted(PACKAGES.items()))
    listing = "\n".join(f"{k}=={v}" for k, v in packages.items())
    return {
        "git": {"commit": sha("commit")[:40], "dirty": False},
        "code": code or dict(definition.get("reference_code") or
                             {"workload_sha256": sha(definition["name"]), "common_sha256": sha("common")}),
        "dataset_sha256": {f["path"]: f["sha256"] for f in definition["dataset"]["files"]},
        "packages": {"versions": packages, "sha256": sha(listing)},
        "python": "3.11.9", "torch": "2.5.1+cu124", "cuda": "12.4", "os": "Linux-6.8.0-x86_64-with-glibc2.39",
        "hardware": dict(hardware or CPU),
        "container": {"in_container": True, "image_id": "sha256:" + sha("image")},
    }


def eval_curve(quality: dict, evals_to_target: int, seed: int) -> list[float]:
    """Metric values at each eval: from far off to just past the target at eval number evals_to_target."""
    target, minimize = quality["target"], quality["direction"] == "minimize"
    start = target * 2.5 if minimize else target * 0.3
    values = []
    for i in range(1, evals_to_target + 1):
        progress = (i / evals_to_target) ** 0.7
        wobble = 0.002 * abs(target) * ((seed * 7 + i * 3) % 5 - 2)
        values.append(start + (target - start) * progress + wobble)
    values[-1] = target - 0.01 * abs(target) if minimize else target + 0.01 * abs(target)
    return values


def closed_value(spec):
    """A value the definition allows: the value itself, the first of an allowed set, the low end of a range."""
    if isinstance(spec, dict) and "one_of" in spec:
        return spec["one_of"][0]
    if isinstance(spec, dict) and set(spec) <= {"min", "max"}:
        return spec.get("min", spec.get("max"))
    if isinstance(spec, list) and spec:
        return spec[0]
    return spec


def typical_evals(definition: dict) -> int:
    """How many evals a synthetic run needs to reach the target (half the budget); seeds vary it by one.
    A definition without eval_every_steps evaluates once, at the end (micro_gcn)."""
    quality = definition["quality"]
    if not quality.get("eval_every_steps"):
        return 1
    return max(3, quality["max_steps"] // quality["eval_every_steps"] // 2)


def samples_per_eval(definition: dict) -> int:
    """Samples between two evals (one eval at the end: samples per step)."""
    return (definition["quality"].get("eval_every_steps") or 1) * \
        closed_value(definition["hyperparameters"]["global_batch_size"])


def final_eval_step(definition: dict, seed: int) -> int:
    """The step of the single eval of a definition without eval_every_steps (early stopping picks it)."""
    return min(definition["quality"]["max_steps"], definition["quality"]["max_steps"] // 2 + seed % 3 - 1)


def reference_convergence(definition: dict) -> list[float]:
    """Reference samples-to-target points (6 seeds) that synthetic runs of this definition agree with."""
    if not definition["quality"].get("eval_every_steps"):
        half = definition["quality"]["max_steps"] // 2
        return [float(samples_per_eval(definition) * (half + d)) for d in (0, -1, 1, 0, 2, -1)]
    return [float(samples_per_eval(definition) * (typical_evals(definition) + d)) for d in (0, -1, 1, 0, 2, -1)]


class Events(list):
    """The events of one synthetic log, from init_start on: each point() a millisecond (or dt) after the last."""

    def __init__(self, start_ms: int):
        super().__init__([event(start_ms, "INTERVAL_START", "init_start", lineno=30)])
        self.t = start_ms

    def point(self, key, value=None, metadata=None, event_type="POINT_IN_TIME", dt=1):
        self.t += dt
        self.append(event(int(self.t), event_type, key, value, metadata, lineno=40 + len(self)))

    def preamble(self, definition: dict, seed: int, *, org: str, division: str, platform: str, smoke: bool,
                 hardware: dict | None):
        """What every run logs before its workload starts (common/runlog.py): submission fields, cache clear,
        seed, the smoke flag, provenance."""
        for key, value in (("submission_benchmark", definition["name"]), ("submission_org", org),
                           ("submission_division", division), ("submission_status", "onprem"),
                           ("submission_platform", platform), ("cache_clear", True), ("seed", seed)):
            self.point(key, value)
        if smoke:
            self.point("smoke_configuration", True)
        self.point("provenance", provenance(definition, hardware), dt=250)


def run_events(definition: dict, seed: int, *, start_ms: int = 1_700_000_000_000, division: str = "closed",
               org: str = "acme", platform: str = "1xA100", smoke: bool = False, evals_to_target: int | None = None,
               converge: bool = True, hardware: dict | None = None, step_ms: float = 40.0) -> list[dict]:
    """The events of one run, as common/timed_run.py logs them. converge=False: the run hits max_steps, aborted."""
    quality = definition["quality"]
    hp = {key: closed_value(spec) for key, spec in definition["hyperparameters"].items()}
    every, max_steps = quality.get("eval_every_steps"), quality["max_steps"]
    batch = hp.get("global_batch_size", 1)
    if every:
        n_evals = max_steps // every
        reach = evals_to_target or min(n_evals, typical_evals(definition) + seed % 3 - 1)
        steps = [i * every for i in range(1, (reach if converge else n_evals) + 1)]
    else:  # one eval, at the step where training stopped (micro_gcn)
        steps = [final_eval_step(definition, seed) if converge else max_steps]
    values = eval_curve(quality, len(steps), seed)
    if not converge:
        values = [v + (quality["target"] * 0.05 if quality["direction"] == "minimize" else -0.05 * quality["target"])
                  for v in values]
    out = Events(start_ms)
    point = out.point
    out.preamble(definition, seed, org=org, division=division, platform=platform, smoke=smoke, hardware=hardware)
    for key, value in {**hp, "train_samples": 1_000_000, "eval_samples": 100_000}.items():
        point(key, value)
    point("init_stop", event_type="INTERVAL_END", dt=3000)
    point("run_start", event_type="INTERVAL_START")
    point("block_start", metadata={"first_epoch_num": 0, "epoch_count": 1, "samples_count": 0},
          event_type="INTERVAL_START")
    for i, (step, value) in enumerate(zip(steps, values), start=1):
        samples = step * batch
        meta = {"epoch_num": samples // 1_000_000, "samples_count": samples}
        point("block_stop", metadata={"first_epoch_num": meta["epoch_num"], "samples_count": samples},
              event_type="INTERVAL_END", dt=(step - (steps[i - 2] if i > 1 else 0)) * step_ms *
              (1 + 0.03 * ((seed + i) % 3)))
        point("eval_start", metadata=meta, event_type="INTERVAL_START")
        point("train_loss", value * 0.97, metadata={"samples_count": samples, "step": step})
        point(quality["log_key"], value, metadata={**meta, "step": step}, dt=800)
        point("eval_stop", metadata=meta, event_type="INTERVAL_END")
        if i < len(values):
            point("block_start", metadata={"first_epoch_num": meta["epoch_num"], "epoch_count": 1,
                                           "samples_count": samples}, event_type="INTERVAL_START")
    point("run_stop", metadata={"status": "success" if converge else "aborted", "steps": steps[-1],
                                "harness_overhead_ms": 12.5}, event_type="INTERVAL_END")
    return out


def write_log(path: Path, events: list[dict], noise: bool = False) -> Path:
    """One `:::MLLOG {json}` line per event (mllog's format). noise=True wraps lines as real MLCommons logs are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i, e in enumerate(events):
            line = TOKEN + json.dumps(e)
            if noise:
                f.write(f"+ echo step {i}\n" if i % 7 == 3 else "")
                line = (f"[1,0]<stdout>:{line}" if i % 2 else line)
            f.write(line + "\n")
    return path


def read_log(path: Path) -> list[dict]:
    """The events of a log written by write_log (without noise)."""
    return [json.loads(line[len(TOKEN):]) for line in path.read_text().splitlines()]


def each(key, change):
    """An edit (for edit_log) applying change(event) to every event with this key."""
    def edit(events):
        for e in events:
            if e["key"] == key:
                change(e)
    return edit


def edit_log(path: Path, edit) -> None:
    """Apply edit(events) to a log and write it back; the edit changes the list in place or returns a new one."""
    events = read_log(path)
    edited = edit(events)
    write_log(path, events if edited is None else edited)


def system_description(submitter: str = "acme", division: str = "closed", hardware: dict | None = None,
                       system_name: str = "dgx-a100") -> dict:
    hw = hardware or CPU
    return {
        "submitter": submitter, "division": division, "status": "available", "system_name": system_name,
        "number_of_nodes": "1", "host_processors_per_node": "2", "host_processor_model_name": hw["cpu_model"],
        "host_processor_core_count": "64", "accelerator_model_name": hw["gpu_name"] or "N/A",
        "accelerators_per_node": str(hw["gpu_count"]), "framework": "PyTorch 2.5.1",
        "operating_system": "Ubuntu 24.04", "host_memory_capacity": "1 TB", "sw_notes": "",
    }


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))
    return path


def write_result(root: Path, definition: dict, submitter: str = "acme", system: str = "dgx-a100",
                 division: str = "closed", seeds=(1, 2, 3, 4, 5), first_index: int = 1, smoke: bool = False,
                 hardware: dict | None = None, start_ms: int = 1_700_000_000_000, **run_kwargs) -> Path:
    """<root>/<submitter>/results/<system>/<benchmark>/result_<i>.txt for each seed, plus the system JSON."""
    write_json(root / submitter / "systems" / f"{system}.json",
               system_description(submitter, division, hardware, system))
    bench_dir = root / submitter / "results" / system / definition["name"]
    for i, seed in enumerate(seeds):
        events = run_events(definition, seed, start_ms=start_ms + i * 10_000_000, division=division, org=submitter,
                            smoke=smoke, hardware=hardware, **run_kwargs)
        write_log(bench_dir / f"result_{first_index + i}.txt", events)
    return bench_dir


# --- real-MLCommons-style folders (v4.x/v5.x layout) ---------------------------------------------------------------
MLCOMMONS_HYPERPARAMETERS = {
    "resnet": {"global_batch_size": 3264, "opt_name": "lars", "opt_base_learning_rate": 10.5,
               "opt_learning_rate_warmup_epochs": 2, "lars_opt_weight_decay": 5e-05, "gradient_accumulation_steps": 1},
    "bert": {"global_batch_size": 448, "opt_base_learning_rate": 0.00035, "opt_lamb_epsilon": 1e-06,
             "opt_learning_rate_training_steps": 7100, "opt_learning_rate_warmup_steps": 0,
             "num_warmup_steps": 0, "start_warmup_step": 0, "opt_lamb_beta_1": 0.9, "opt_lamb_beta_2": 0.999,
             "opt_lamb_weight_decay_rate": 0.01, "gradient_accumulation_steps": 1},
}


def mlcommons_run(benchmark: str, seed: int, start_ms: int, minutes: float, converge: bool = True,
                  division: str = "open") -> list[dict]:
    """A log shaped like an MLCommons v4.x training result (enough keys for its compliance checker)."""
    t = start_ms
    out = []

    def add(key, value=None, metadata=None, event_type="POINT_IN_TIME", dt=1):
        nonlocal t
        t += dt
        out.append(event(int(t), event_type, key, value, metadata, lineno=200 + len(out)))

    add("init_start", event_type="INTERVAL_START")
    for key, value in (("submission_benchmark", benchmark), ("submission_org", "Example"),
                       ("submission_division", division), ("submission_status", "onprem"),
                       ("submission_platform", "example_n8"), ("cache_clear", True), ("seed", seed)):
        add(key, value)
    for key, value in {**MLCOMMONS_HYPERPARAMETERS[benchmark], "train_samples": 1281167, "eval_samples": 50000}.items():
        add(key, value)
    add("init_stop", event_type="INTERVAL_END", dt=60_000)
    add("run_start", event_type="INTERVAL_START")
    n = 8
    for epoch in range(1, n + 1):
        meta = {"epoch_num": epoch, "samples_count": epoch * 1000}
        add("block_start", metadata={"first_epoch_num": epoch, "epoch_count": 1}, event_type="INTERVAL_START")
        add("block_stop", metadata={"first_epoch_num": epoch}, event_type="INTERVAL_END",
            dt=minutes * 60_000 / n - 2)
        add("eval_start", metadata=meta, event_type="INTERVAL_START")
        add("eval_accuracy", round(0.5 + 0.03 * epoch + 0.001 * (seed % 3), 4), metadata=meta)
        add("eval_stop", metadata=meta, event_type="INTERVAL_END")
    add("run_stop", metadata={"status": "success" if converge else "aborted"}, event_type="INTERVAL_END")
    return out


def write_mlcommons_org(root: Path, org: str = "Example", system: str = "example_n8",
                        minutes: dict | None = None, first_index: int = 1, scaling: dict | None = None,
                        division: str = "open") -> Path:
    """<root>/<org>/systems/<system>.json and results/<system>/{resnet (5 runs), bert (10 runs)}/result_*.txt."""
    minutes = minutes or {"resnet": [12.1, 11.8, 12.6, 12.0, 13.2],
                          "bert": [5.2, 5.0, 5.5, 5.1, 5.3, 4.9, 5.8, 5.2, 5.4, 5.0]}
    desc = system_description(org, division, {"cpu_model": "Intel Xeon Platinum 8480C", "gpu_name": "NVIDIA H100",
                                              "gpu_count": 8, "cpu_count": 224, "machine": "x86_64"}, system)
    desc["accelerators_per_node"] = "8"
    write_json(root / org / "systems" / f"{system}.json", desc)
    for benchmark, times in minutes.items():
        bench_dir = root / org / "results" / system / benchmark
        for i, m in enumerate(times):
            events = mlcommons_run(benchmark, seed=100 + i, start_ms=1_710_000_000_000 + i * 10_000_000,
                                   minutes=abs(m), converge=m > 0, division=division)
            write_log(bench_dir / f"result_{first_index + i}.txt", events, noise=True)
        if scaling and benchmark in scaling:
            write_json(bench_dir / "scaling.json", {"scaling_factor": scaling[benchmark]})
    return root / org


# --- inference results (kind: inference): real LoadGen runs of a trivial system under test --------------------------
# A variant folder as common/inference.py writes it: result_<i>.txt (our log) and loadgen_<i>/{performance,accuracy}/
# (LoadGen's files and the expected answers). LoadGen itself runs (mlperf_loadgen, imported only here); the system
# under test answers every sample with fixed int32 tokens, after `service_s` seconds, so a test decides whether LoadGen
# judges the run VALID (slow enough to fill min_duration_ms) or INVALID (an Offline SUT that answers at once).
CHECKPOINT_FILES = {"file": "checkpoints/nanogpt_seed1.pt", "sha256": sha("checkpoint"),
                    "model_code_sha256": sha("model.py"), "training_log_sha256": sha("training log")}


def expected_tokens(index: int, length: int = 4) -> list[int]:
    """The tokens the trivial SUT answers (and the reference expects) for sample `index`."""
    return [(index * 7 + k) % 65 for k in range(length)]


def run_loadgen(settings: dict, mode: str, outdir: Path, total: int, service_s: float = 0.0, answer=None) -> Path:
    """Run LoadGen with a definition variant's settings (common.loadgen.test_settings) in mode PerformanceOnly or
    AccuracyOnly; its files go to outdir. answer(index) -> tokens (default expected_tokens)."""
    import array
    import time

    import mlperf_loadgen as lg

    from common import loadgen

    answer = answer or expected_tokens
    token_latencies = bool(settings.get("use_token_latencies"))

    def issue(samples):
        for sample in samples:
            if service_s:
                time.sleep(service_s)
            data = array.array("i", answer(sample.index))
            address, n = data.buffer_info()
            if token_latencies:
                lg.FirstTokenComplete([lg.QuerySampleResponse(sample.id, address, 4, 1)])
            lg.QuerySamplesComplete([lg.QuerySampleResponse(sample.id, address, n * data.itemsize, n)])

    outdir.mkdir(parents=True, exist_ok=True)
    output = lg.LogOutputSettings()
    output.outdir, output.copy_summary_to_stdout = str(outdir), False
    log_settings = lg.LogSettings()
    log_settings.log_output, log_settings.enable_trace = output, False
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(total, total, lambda indices: None, lambda indices: None)
    try:
        lg.StartTestWithLogSettings(sut, qsl, loadgen.test_settings(settings, mode), log_settings)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    trace = outdir / "mlperf_log_trace.json"
    if trace.exists() and not trace.stat().st_size:
        trace.unlink()
    return outdir


def write_loadgen_runs(loadgen_dir: Path, settings: dict, total: int, service_s: float) -> None:
    """loadgen_<i>/accuracy/ (LoadGen's files and reference_outputs.json) and loadgen_<i>/performance/."""
    from common import loadgen

    accuracy = run_loadgen(settings, "AccuracyOnly", loadgen_dir / "accuracy", total)
    reference = {str(index): expected_tokens(index) for index in range(total)}
    (accuracy / loadgen.REFERENCE).write_text(json.dumps({"format": "int32 tokens", "samples": reference}) + "\n")
    run_loadgen(settings, "PerformanceOnly", loadgen_dir / "performance", total, service_s)


def loadgen_files(loadgen_dir: Path) -> dict:
    """{name relative to loadgen_<i>/: sha256}, as the log's loadgen_files records them."""
    from common import loadgen

    names = [f"performance/{n}" for n in loadgen.PERFORMANCE_FILES] + [f"accuracy/{n}" for n in loadgen.ACCURACY_FILES]
    return {name: hashlib.sha256((loadgen_dir / name).read_bytes()).hexdigest() for name in names}


def accuracy_of(loadgen_dir: Path) -> tuple[float, list[int]]:
    """The token agreement of the accuracy run's answers, recomputed as the harness does."""
    from common import loadgen

    responses = loadgen.read_accuracy(loadgen_dir / "accuracy" / loadgen.ACCURACY)
    samples = json.loads((loadgen_dir / "accuracy" / loadgen.REFERENCE).read_text())["samples"]
    return loadgen.token_agreement({i: loadgen.tokens_of(data) for i, data in responses.items()},
                                   {int(i): tokens for i, tokens in samples.items()})


def inference_events(definition: dict, variant_name: str, seed: int, loadgen_dir: Path, training: dict | None, *,
                     start_ms: int = 1_700_000_000_000, division: str = "closed", org: str = "acme",
                     platform: str = "1xA100", smoke: bool = False, total: int = 8, val_loss: float | None = None,
                     hardware: dict | None = None, scenario: str | None = None) -> list[dict]:
    """The events of one run of one variant, as common/inference.py logs them, from the LoadGen files already in
    loadgen_dir (its figures, verdict and sha256s). scenario: what the log claims (default: the variant's)."""
    from common import loadgen

    variant = definition["performance"][variant_name]
    quality = definition["quality"]
    detail = loadgen.read_detail(loadgen_dir / "performance" / loadgen.DETAIL)
    agreement, wrong = accuracy_of(loadgen_dir)
    out = Events(start_ms)
    point = out.point
    out.preamble(definition, seed, org=org, division=division, platform=platform, smoke=smoke, hardware=hardware)
    point("inference_variant", variant_name)
    point("loadgen_scenario", scenario or variant["scenario"])
    point("loadgen_settings", loadgen.loadgen_settings(variant))
    point("sut_config", loadgen.sut_config(definition, variant_name))
    gates_hold = True
    if training is not None:
        point("checkpoint", {**CHECKPOINT_FILES, "training_benchmark": training["name"],
                             "model_config": training["model"]}, dt=500)
    point("accuracy_samples", total)
    point("performance_sample_count", total)
    point("init_stop", event_type="INTERVAL_END", dt=100)
    point("eval_start", metadata={"samples_count": total}, event_type="INTERVAL_START")
    if training is not None:
        target = training["quality"]
        loss = val_loss if val_loss is not None else target["target"] * 0.98
        gates_hold = target_reached(loss, target)
        point("checkpoint_val_loss", loss, metadata={"target": target["target"], "direction": target["direction"]},
              dt=300)
    point(quality["log_key"], agreement, metadata={"samples": total, "wrong": wrong[:10], "samples_count": total},
          dt=200)
    point("eval_stop", metadata={"samples_count": total}, event_type="INTERVAL_END")
    point("run_start", event_type="INTERVAL_START")
    for key in loadgen.reported_keys(detail):
        point(key, detail[key], dt=0)
    point("loadgen_files", loadgen_files(loadgen_dir), dt=5)
    point("energy", {"measured": False, "reason": "synthetic run"})
    valid = detail.get("result_validity") == "VALID"
    accurate = target_reached(agreement, quality) and gates_hold
    point("run_stop", metadata={"status": "success" if valid and accurate else "aborted",
                                "validity": detail.get("result_validity"), "accuracy_gate": accurate},
          event_type="INTERVAL_END", dt=max(1, (detail.get("result_query_count") or 1)))
    return out


def target_reached(value: float, quality: dict) -> bool:
    return value <= quality["target"] if quality["direction"] == "minimize" else value >= quality["target"]


def write_inference_result(root: Path, definition: dict, variant_name: str, training: dict | None, *,
                           submitter: str = "acme", system: str = "dgx-a100", division: str = "closed",
                           seeds=(1, 2, 3), first_index: int = 1, total: int = 8, service_s: float = 0.0,
                           loadgen_settings: dict | None = None, **event_kwargs) -> Path:
    """<root>/<submitter>/results/<system>/<benchmark>/<variant>/result_<i>.txt and loadgen_<i>/ for each seed,
    plus the system JSON. loadgen_settings: the settings LoadGen actually ran (default: the variant's own)."""
    write_json(root / submitter / "systems" / f"{system}.json", system_description(submitter, division, None, system))
    variant_dir = root / submitter / "results" / system / definition["name"] / variant_name
    for i, seed in enumerate(seeds):
        index = first_index + i
        loadgen_dir = variant_dir / f"loadgen_{index}"
        write_loadgen_runs(loadgen_dir, loadgen_settings or definition["performance"][variant_name], total, service_s)
        events = inference_events(definition, variant_name, seed, loadgen_dir, training, start_ms=1_700_000_000_000 +
                                  i * 10_000_000, division=division, org=submitter, total=total, **event_kwargs)
        write_log(variant_dir / f"result_{index}.txt", events)
    return variant_dir
