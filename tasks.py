"""Project tasks (invoke). Run from the repository root with the project's virtualenv:

    .venv/bin/invoke list                       workloads with suite, metric and target
    .venv/bin/invoke download nanogpt           fetch + verify the dataset (DATASET_MIRROR for a mirror)
    .venv/bin/invoke verify nanogpt             verify the dataset's sha256 sums
    .venv/bin/invoke run nanogpt --seed 1       one timed run (--smoke: seconds; --nproc 2: DDP)
    .venv/bin/invoke build nanogpt              its Docker image (content tag; nothing to do when unchanged)
    .venv/bin/invoke run nanogpt --docker       one timed run in that image (--gpus all: on NVIDIA GPUs)
    .venv/bin/invoke lock nanogpt               re-lock its requirements (exact versions with hashes)
    .venv/bin/invoke clean                      remove the suite's images and stopped containers
    .venv/bin/invoke bench nanogpt              the full benchmark over the required seeds, time-to-target
    .venv/bin/invoke check <results folder>     the submission checker
    .venv/bin/invoke doctor                     can this machine run the suite? what is missing, and the fix
    .venv/bin/invoke validate smoke             every workload's smoke run, checked, in one table (+ dashboard)
    .venv/bin/invoke dashboard <results folder> the static HTML dashboard of a results folder
    .venv/bin/invoke test                       the test suite (what CI runs)
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from invoke import Exit, task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # the repository is used from a checkout (see common/__init__.py)

from common import benchmark, fetch, results  # noqa: E402


def _definition(workload: str, smoke: bool = False) -> dict:
    try:
        return benchmark.load(workload, smoke=smoke)
    except (benchmark.UnknownWorkload, ValueError) as error:
        raise Exit(f"error: {error}", code=2)


def _seed(value) -> int:
    """A seed from the command line, checked as train.py checks it, or one sentence saying why it is not one."""
    from argparse import ArgumentTypeError

    from common.runtime import seed_value  # imports torch: only the tasks that start a run need it

    try:
        return seed_value(str(value))
    except ArgumentTypeError as error:
        raise Exit(f"error: {error}", code=2) from None


def _count(value, what: str) -> int:
    try:
        number = int(str(value), 10)
    except ValueError:
        number = 0
    if number < 1:
        raise Exit(f"error: {what} must be a whole number of at least 1, not {value!r}", code=2)
    return number


def _images():
    """The Docker machinery (common/containers), imported only by the tasks that use Docker."""
    from common import containers

    return containers


def _env() -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHON": os.environ.get("PYTHON", sys.executable)}


def _call(args: list[str], env: dict | None = None) -> int:
    """Run a command given as an argument list (never a shell string), inheriting the terminal."""
    return subprocess.run(args, env=env or _env(), check=False).returncode


def _workload_script(definition: dict, script: str, data_dir=None) -> None:
    """Run one of a workload's own scripts (download_dataset.sh, verify_dataset.sh) with DATA_DIR."""
    env = {**_env(), **({"DATA_DIR": str(Path(data_dir).resolve())} if data_dir else {})}
    code = _call(["bash", str(Path(definition["directory"]) / script)], env)
    if code != 0:
        raise Exit(f"error: {definition['name']}: {script} failed (exit code {code})", code=code)


@task(name="list")
def list_workloads(c):
    """List the workloads: suite, dataset, metric, target and required runs."""
    print(f"{'workload':<14} {'suite':<12} {'kind':<10} {'dataset':<16} {'metric':<24} {'target':<10} runs")
    for name in sorted(benchmark.workload_dirs()):
        d = benchmark.load(name)
        q = d["quality"]
        target = f"{'<=' if q['direction'] == 'minimize' else '>='} {q['target']}"
        print(f"{name:<14} {d['suite']:<12} {d['kind']:<10} {d['dataset']['name']:<16} {q['metric']:<24} {target:<10} "
              f"{d['required_runs']}")
        for variant, settings in (d.get("performance") or {}).items():  # inference: each variant is scored
            print(f"{'':<14} {variant:<23} {settings['scenario']:<16} {settings['metric']} ({settings['direction']})")


@task(help={"workload": "benchmark name, see `invoke list`", "data_dir": "datasets root (default $DATA_DIR or ./data)"})
def download(c, workload, data_dir=None):
    """Download a workload's dataset (canonical URLs or $DATASET_MIRROR) and verify every sha256; an inference
    workload serving a checkpoint also gets it (its download_dataset.sh makes the reference one if needed)."""
    definition = _definition(workload)
    if definition.get("checkpoint") or definition.get("model"):  # data + checkpoint or weights: the workload's script
        return _workload_script(definition, "download_dataset.sh", data_dir)
    try:
        fetched = fetch.download(definition, data_dir and Path(data_dir), progress=sys.stderr.isatty())
    except fetch.DatasetError as error:
        raise Exit(f"error: {error}", code=1)
    print(f"{workload}: {sum(fetched)} downloaded, {len(fetched) - sum(fetched)} already present; all verified")


@task(help={"workload": "benchmark name", "data_dir": "datasets root (default $DATA_DIR or ./data)"})
def verify(c, workload, data_dir=None):
    """Verify the sha256 of every dataset file of a workload (and of the checkpoint an inference workload serves)."""
    definition = _definition(workload)
    if definition.get("checkpoint") or definition.get("model"):  # data + checkpoint or weights: the workload's script
        return _workload_script(definition, "verify_dataset.sh", data_dir)
    try:
        sums = fetch.verify(definition, data_dir and Path(data_dir))
    except fetch.DatasetError as error:
        raise Exit(f"error: {error}", code=1)
    print(f"{workload}: {len(sums)} file(s) verified")


@task(help={"workload": "benchmark name", "seed": "random seed", "smoke": "tiny test configuration (seconds)",
            "nproc": "processes (torchrun DDP, gloo on CPU / nccl on GPU)", "logfile": "MLLOG output path",
            "docker": "run in the workload's image (--network none; the log goes into the same results layout)",
            "gpus": "with --docker: all, a count or device ids (NVIDIA Container Toolkit; CUDA image)",
            "variant": "inference: run this variant only (default: every variant of the definition)"})
# Numbers arrive as text (string defaults), so a bad value gets our one-sentence message, not invoke's traceback.
def run(c, workload, seed="1", smoke=False, nproc="1", logfile=None, docker=False, gpus=None, variant=None):
    """One timed run through the workload's run_and_time.sh, on this machine or (--docker) in its container."""
    definition = _definition(workload, smoke)
    if variant and variant not in (definition.get("performance") or {}):
        known = ", ".join(definition.get("performance") or {}) or "none: it is a training benchmark"
        raise Exit(f"error: {workload} has no variant {variant!r} (its variants: {known})", code=2)
    seed, nproc = _seed(seed), _count(nproc, "--nproc")
    if docker or gpus:
        if logfile:
            raise Exit("error: --logfile does not apply with --docker (the log goes into the results layout)", code=2)
        images = _images()
        try:
            containers = images.run(workload, seed=seed, smoke=smoke, nproc=nproc, gpus=gpus, variant=variant)
        except images.DockerError as error:
            raise Exit(f"error: {error}", code=1)
        failed = [each for each in containers if each.exit_code != 0]  # one per container: per variant
        messages = [f"error: {workload}{f' {each.variant}' if each.variant else ''} run with seed {seed} failed in "
                    f"its container (exit code {each.exit_code}); output in {each.output_file}" for each in failed]
        for message in messages[:-1]:  # every failed variant is named; the exit code is the first one's
            print(message, file=sys.stderr)
        if failed:
            raise Exit(messages[-1], code=failed[0].exit_code)
        return
    env = {**_env(), "SMOKE": "1" if smoke else "0", "NPROC": str(nproc)}
    if variant:
        env["VARIANT"] = variant
    if logfile:
        env["LOGFILE"] = str(Path(logfile).resolve())
    code = _call(["bash", str(Path(definition["directory"]) / "run_and_time.sh"), str(seed)], env)
    if code != 0:
        raise Exit(f"error: {workload} run with seed {seed} failed (exit code {code}); see the output above", code=code)


@task(help={"workload": "benchmark name", "flavour": "cpu (default) or cuda",
            "base_image": "image to build the base on (default: the official one; offline: "
                          "mlperf-teach/bookworm-offline:py3.11 from docker/offline_base.sh)",
            "no_cache": "rebuild every layer", "from_index": "pip in the build downloads from the index (host CA "
            "bundle and proxies handed in) instead of the host-side wheel cache",
            "ca_bundle": "with --from-index: CA bundle for pip (default $PIP_CERT / $REQUESTS_CA_BUNDLE / "
                         "$SSL_CERT_FILE)",
            "verify": "also check an existing image: its packages are exactly the lock's pins"})
def build(c, workload, flavour="cpu", base_image=None, no_cache=False, from_index=False, ca_bundle=None,
          verify=False):
    """Build a workload's Docker image (Docker SDK): tag = content hash, nothing rebuilt when nothing changed."""
    _definition(workload)
    images = _images()
    try:
        built = images.build(workload, flavour=flavour, base=base_image, no_cache=no_cache, from_index=from_index,
                             ca_bundle=ca_bundle)
        if verify and not built.built:
            images.verify(built.tag)
    except images.DockerError as error:
        raise Exit(f"error: {error}", code=1)


@task(help={"workload": "benchmark name", "upgrade": "let unpinned dependencies move to their newest versions",
            "index_url": "package index (default https://pypi.org/simple)"})
def lock(c, workload, upgrade=False, index_url=None):
    """Lock a workload's requirements.txt: exact versions with sha256 hashes (uv pip compile) -> requirements.lock."""
    _definition(workload)
    images = _images()
    try:
        for path in images.compile_locks(workload, upgrade=upgrade, index_url=index_url):
            print(f"{path.relative_to(ROOT)}: {len(images.read_pins(path))} pinned packages with hashes")
    except images.DockerError as error:
        raise Exit(f"error: {error}", code=1)


@task(help={"workload": "only this workload's images", "everything": "all images, not only outdated ones; with no "
            "workload, also the base images, the offline base and the host-side wheel cache"})
def clean(c, workload=None, everything=False):
    """Remove the suite's stopped run containers and outdated Docker images (--everything: all of them)."""
    if workload:
        _definition(workload)
    images = _images()
    try:
        images.clean(workload, everything=everything)
    except images.DockerError as error:
        raise Exit(f"error: {error}", code=1)


@task(help={"workload": "benchmark name", "seeds": "number of seeds (default: the definition's required_runs)",
            "smoke": "bench the smoke config instead (for trying the task out)", "nproc": "processes per run",
            "out": "results folder (default results/, or results-smoke/ with --smoke)",
            "flops": "also count model FLOPs per step and measure the matmul peak (default on)",
            "variants": "inference: comma-separated variants to bench (default: every variant)"})
def bench(c, workload, seeds="0", smoke=False, nproc="1", out=None, flops=True, variants=""):
    """The full benchmark over seeds 1..N: time to target, its spread, the olympic score, the time outside the
    scored region, and model FLOP/s against this machine's measured matmul peak. Figures: <out>/bench/."""
    from common.bench import BenchError, count_flops, format_report, matmul_peak, run_seeds, write_figures

    definition = _definition(workload, smoke)
    n = _count(seeds, "--seeds") if str(seeds) != "0" else definition["required_runs"]
    root = Path(out).resolve() if out else results.default_root(smoke)
    env = _env()
    if definition["kind"] == "inference":  # every variant n times; LoadGen's figures and their spread
        from common.bench_inference import bench as bench_inference

        try:
            print(bench_inference(workload, n, root, smoke=smoke, env=env,
                                  variants=[v for v in variants.split(",") if v] or None))
        except BenchError as error:
            raise Exit(f"error: {error}", code=1)
        print(f"check them: invoke check {root}" + (" --smoke" if smoke else ""))
        return
    try:
        figures, bench_dir = run_seeds(workload, list(range(1, n + 1)), root, smoke=smoke,
                                       nproc=_count(nproc, "--nproc"), env=env)
    except BenchError as error:
        raise Exit(f"error: {error}", code=1)
    probe = count_flops(workload, smoke=smoke, env=env) if flops else None
    peaks = matmul_peak(os.environ.get("DEVICE")) if flops else None
    report = format_report(workload, definition, figures, probe, peaks)
    print(report)
    written = write_figures(root, workload, bench_dir.parent.name, definition, figures, probe, peaks, report)
    print(f"logs: {bench_dir}; figures: {', '.join(str(p) for p in written)}")
    print(f"check them: invoke check {root}" + (" --smoke" if smoke else ""))


@task(help={"folder": "results folder (<submitter>/systems, <submitter>/results/...)",
            "smoke": "apply the definitions' smoke overrides", "out": "report directory (outside the folder)"})
def check(c, folder, smoke=False, out=None):
    """Check a results folder with the submission checker: verdict, reasons, score table."""
    args = [sys.executable, "-m", "submission_checker", str(folder)] + (["--smoke"] if smoke else [])
    args += ["--out", str(out)] if out else []
    code = _call(args)
    if code != 0:
        raise Exit(code=code)


@task(name="bench-checker")
def bench_checker(c):
    """Time the submission checker over a generated tree of 1,500+ logs."""
    code = _call([sys.executable, "-m", "submission_checker.bench"])
    if code != 0:
        raise Exit(code=code)


@task(help={"k": "pytest -k expression"})
def test(c, k=None):
    """Run the test suite (the same command CI runs)."""
    code = _call([sys.executable, "-m", "pytest", "-q"] + (["-k", str(k)] if k else []))
    if code != 0:
        raise Exit(code=code)


@task(help={"workload": "benchmark name (default: every workload)"})
def rehash(c, workload=None):
    """Record the current code hashes as the released reference (benchmark.yaml `reference_code`)."""
    from common.provenance import code_hashes

    names = [workload] if workload else sorted(benchmark.workload_dirs())
    for name in names:
        directory = Path(_definition(name)["directory"])
        hashes = code_hashes(directory)
        block = ("reference_code:  # released reference code (closed division must match); `invoke rehash` writes it\n"
                 f"  workload_sha256: {hashes['workload_sha256']}\n  common_sha256: {hashes['common_sha256']}\n")
        path = directory / benchmark.DEFINITION_FILE
        text = path.read_text()
        old = re.search(r"^reference_code:.*\n(?:  .*\n)*", text, re.M)
        text = text[:old.start()] + block + text[old.end():] if old else text.rstrip("\n") + "\n\n" + block
        path.write_text(text)
        print(f"{name}: workload {hashes['workload_sha256'][:12]}, common {hashes['common_sha256'][:12]}")


@task(iterable=["workload", "suite"],
      help={"workload": "only this workload (repeatable; default: every workload)",
            "suite": "only this suite's workloads (repeatable)", "data_dir": "datasets root (default $DATA_DIR or ./data)",
            "smoke": "check what the smoke configurations need", "offline": "do not probe the URLs of missing data"})
def doctor(c, workload=None, suite=None, data_dir=None, smoke=False, offline=False):
    """Can this machine run the suite? One line per requirement: OK / MISSING / WARN, with the fix."""
    args = [sys.executable, "-m", "common.doctor"] + [x for w in workload or [] for x in ("--workload", w)]
    args += [x for s in suite or [] for x in ("--suite", s)] + (["--data-dir", str(data_dir)] if data_dir else [])
    args += (["--smoke"] if smoke else []) + (["--offline"] if offline else [])
    code = _call(args)
    if code != 0:
        raise Exit(code=code)


@task(iterable=["workload", "suite"],
      help={"config": "smoke (seconds per workload) or full (the benchmark configuration; hours for the suite)",
            "workload": "only this workload (repeatable; default: every workload)",
            "suite": "only this suite's workloads (repeatable)",
            "keep_going": "run every workload even after one fails", "out": "output folder (default "
            "validate/<config>-<UTC time>/)", "seed": "the seed of every run", "data_dir": "datasets root (default "
            "$DATA_DIR or ./data)", "download": "run a workload's download_dataset.sh first when its data is missing"})
def validate(c, config, workload=None, suite=None, keep_going=False, out=None, seed="1", data_dir=None,
             download=False):
    """Run the smoke or full configuration of every workload (run_and_time.sh), check the results, print one table
    (CSV, JSON and the HTML dashboard beside it)."""
    from common import doctor as checks
    from common import validate as runner

    try:
        names = checks.select(workload, suite)
    except benchmark.UnknownWorkload as error:
        raise Exit(f"error: {error.args[0]}", code=2)
    try:
        rows, folder = runner.validate(config, names, Path(out) if out else runner.default_out(config),
                                       seed=_seed(seed), keep_going=keep_going, data_dir=data_dir, download=download)
    except runner.ValidateError as error:
        raise Exit(f"error: {error}", code=2)
    print(runner.format_table(rows), end="")
    print(f"table: {folder / 'validate.csv'}, {folder / 'validate.json'}; checker: {folder / 'checker'}; "
          f"dashboard: {folder / 'dashboard' / 'index.html'}")
    if any(row.status != runner.PASS for row in rows):
        raise Exit(code=1)


@task(help={"folder": "results folder (<submitter>/results/<system>/<benchmark>/...)",
            "out": "output folder (default: beside the results folder, dashboard/)",
            "smoke": "the runs are smoke runs", "validate": "the validate.json of the run that wrote the folder"})
def dashboard(c, folder, out=None, smoke=False, validate=None):
    """Build the static HTML dashboard of a results folder: table, curves, latencies, verdicts, provenance."""
    args = [sys.executable, "-m", "common.dashboard", str(folder)] + (["--out", str(out)] if out else [])
    args += (["--smoke"] if smoke else []) + (["--validate", str(validate)] if validate else [])
    code = _call(args)
    if code != 0:
        raise Exit(code=code)
