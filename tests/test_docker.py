"""Docker images: static checks over every workload's Dockerfile, requirements and lock, the machinery in
common/containers/ (content hashes, container options, where a containerised run's log and an inference run's
LoadGen files go and what they may touch, with a stand-in engine), and (marked `docker`) the end-to-end tests:
the nanogpt image's smoke run with --network none, its log validated, and nanogpt_infer's smoke runs, every
variant in its own container, passed by the submission checker.

The end-to-end tests are skipped, with the reason shown, where no Docker engine is reachable or the image of the
current files is not built; docker/ci_container_test.sh builds the images and sets REQUIRE_DOCKER=1, which turns
either skip into a failure, so CI never counts a container test as passed that did not run.
"""
from __future__ import annotations

import ast
import errno
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from common import benchmark, containers, provenance, results
from common.containers import engine as engine_module
from common.containers import images, runs
from conftest import REPO_ROOT, mirror_dir

WORKLOADS = sorted(benchmark.workload_dirs())
DOCKER_DIR = REPO_ROOT / "docker"
REQUIRED_SCRIPTS = ["run_and_time.sh", "download_dataset.sh", "verify_dataset.sh"]
SUITE_SCRIPTS = ["offline_base.sh", "ci_container_test.sh", "base/setup.sh", "base/install-locked.sh"]
COMMON_REQUIREMENTS = REPO_ROOT / "common" / "requirements.txt"
INCLUDE_COMMON = "-r ../../common/requirements.txt"
# Import names of the harness's third-party modules -> their distributions on PyPI.
DISTRIBUTION = {"yaml": "pyyaml", "mlperf_logging": "mlperf-logging", "pynvml": "nvidia-ml-py",
                "mlperf_loadgen": "mlcommons-loadgen"}
WORKLOAD_DOCKERFILE_MAX_INSTRUCTIONS = 9  # plus one COPY per training workload whose checkpoint it serves


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuation lines joined."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), (line.split(None, 1) + [""])[1].strip())
            for line in text.splitlines() if line.strip()]


def image_reference_ok(reference: str) -> bool:
    """An explicit tag other than `latest`, or a digest."""
    if "@sha256:" in reference:
        return True
    name = reference.rsplit("/", 1)[-1]
    return ":" in name and name.split(":", 1)[1] not in ("", "latest")


def base_steps(flavour: str) -> list[tuple[str, str]]:
    return instructions(DOCKER_DIR / "base" / f"{flavour}.Dockerfile")


def served_copies(directory: Path) -> list[tuple[str, str]]:
    """The COPY of each training workload whose checkpoint an inference workload serves (its definition's
    checkpoint.training_benchmark): its image runs that workload's model and evaluation."""
    served = [d.relative_to(REPO_ROOT).as_posix() for d in images.served_training_dirs(directory)]
    return [("COPY", f"{rel}/ {rel}/") for rel in served]


def third_party_imports(sources) -> set[str]:
    """The PyPI distributions (canonical names) of the third-party modules the Python files import (neither the
    repository's packages nor a workload's own modules beside the file, such as model.py)."""
    found = set()
    for source in map(Path, sources):
        imported = set()
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        local = {m for m in imported for folder in (REPO_ROOT, source.parent)
                 if (folder / m).is_dir() or (folder / f"{m}.py").is_file()}
        found |= {containers.canonical(DISTRIBUTION.get(m, m)) for m in imported - local
                  if m not in sys.stdlib_module_names}
    return found


# --- every workload -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", WORKLOADS)
def test_dockerfile_says_only_what_differs_from_the_shared_base(name):
    directory = Path(benchmark.load(name)["directory"])
    rel = directory.relative_to(REPO_ROOT).as_posix()
    dockerfile = directory / "Dockerfile"
    assert dockerfile.is_file(), f"{rel}/Dockerfile missing"
    steps = instructions(dockerfile)
    assert steps[:2] == [("ARG", "BASE_IMAGE"), ("FROM", "${BASE_IMAGE}")], \
        f"{rel}/Dockerfile starts with `ARG BASE_IMAGE` (no default) and `FROM ${{BASE_IMAGE}}`, the shared base"
    assert [kind for kind, _ in steps].count("FROM") == 1, f"{rel}/Dockerfile: one stage, on the shared base"
    served = served_copies(directory)
    assert steps[2:6 + len(served)] == [("COPY", f"{rel}/${{LOCK}} requirements.lock"),
                                        ("RUN", "install-locked requirements.lock"), ("COPY", "common/ common/"),
                                        ("COPY", f"{rel}/ {rel}/"), *served], \
        f"{rel}/Dockerfile: its lock, installed with hash checking (the slow layer), then common/, its own code " \
        f"and the code of the training workload it serves ({served or 'none'})"
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{rel}/Dockerfile: the last USER must be non-root"
    assert ("ENTRYPOINT", f'["{rel}/run_and_time.sh"]') in steps, f"{rel}/Dockerfile: ENTRYPOINT its run_and_time.sh"
    assert len(steps) <= WORKLOAD_DOCKERFILE_MAX_INSTRUCTIONS + len(served), \
        f"{rel}/Dockerfile: {len(steps)} instructions; what every workload shares belongs in docker/base/"
    shared = [kind for kind, _ in steps if kind in ("ENV", "WORKDIR", "ONBUILD", "LABEL")]
    assert not shared, f"{rel}/Dockerfile: {shared[0]} is the base image's (docker/base/), not a workload's"


@pytest.mark.parametrize("name", WORKLOADS)
def test_workload_build_arguments_are_declared(name):
    """Every ${VAR} of a workload's Dockerfile is declared, by its own ARG or by the base's ONBUILD ARGs, and the
    base declares every build argument `invoke build` passes (a build argument nobody declares is ignored)."""
    steps = instructions(Path(benchmark.load(name)["directory"]) / "Dockerfile")
    for flavour in images.FLAVOURS:
        declared = {args.split("=")[0] for kind, args in steps if kind == "ARG"}
        declared |= {args.split()[1].split("=")[0] for kind, args in base_steps(flavour)
                     if kind == "ONBUILD" and args.split()[0].upper() == "ARG"}
        used = {var for _, args in steps for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", args)}
        assert used <= declared, f"{name}: {sorted(used - declared)} not declared ({flavour} base)"
        assert {"BASE_IMAGE", "LOCK", "WHEELS_URL", "PIP_INDEX_URL"} <= declared


@pytest.mark.parametrize("name", WORKLOADS)
def test_requirements_are_locked_with_hashes(name):
    directory = Path(benchmark.load(name)["directory"])
    rel = directory.relative_to(REPO_ROOT).as_posix()
    lock = directory / "requirements.lock"
    assert lock.is_file(), f"{rel}/requirements.lock missing: invoke lock {name}"
    text = lock.read_text()
    assert f"invoke lock {name}" in text.splitlines()[1], f"{rel}/requirements.lock is written by `invoke lock {name}`"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    for block in blocks:
        head = block.splitlines()[0]
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+ \\$", head), f"{rel}/requirements.lock: not exact: {head}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), f"{rel}/requirements.lock: {head} has no hash"
    pins = containers.read_pins(lock)
    for package, version in containers.requirement_pins(directory / "requirements.txt").items():
        assert pins.get(package) == version, \
            f"{rel}/requirements.lock disagrees with requirements.txt on {package}=={version}: invoke lock {name}"


@pytest.mark.parametrize("name", WORKLOADS)
def test_requirements_include_the_harness_pins(name):
    directory = Path(benchmark.load(name)["directory"])
    rel = directory.relative_to(REPO_ROOT).as_posix()
    lines = [line.split("#")[0].strip() for line in (directory / "requirements.txt").read_text().splitlines()]
    assert INCLUDE_COMMON in lines, f"{rel}/requirements.txt: `{INCLUDE_COMMON}` (the harness's shared pins)"
    own = {name for line in lines if line and not line.startswith("-r")
           for name in [containers.canonical(line.split("==")[0])]}
    common = containers.requirement_pins(COMMON_REQUIREMENTS)
    assert not own & set(common), f"{rel}/requirements.txt repeats shared pins: {sorted(own & set(common))}"
    assert containers.requirement_pins(directory / "requirements.txt").items() >= common.items()


def test_harness_pins_cover_its_imports_and_agree_with_pyproject():
    """common/requirements.txt pins every third-party module that the harness files of every training run import;
    each workload's requirements pin every one that the harness files its own runs execute import (an inference
    workload adds LoadGen, a tiny workload torchao for common/model_size.py); every third-party module common/*.py imports is a pinned dependency of pyproject.toml
    (tooling such as bench.py runs from that environment); and every pin of every workload's requirements (the
    shared list included) is the version pyproject.toml installs."""
    common = containers.requirement_pins(COMMON_REQUIREMENTS)
    every_training_run = None  # the third-party modules that the harness files of every training run import
    for name in WORKLOADS:
        directory = Path(benchmark.load(name)["directory"])
        needed = third_party_imports(p for p in provenance.harness_files(directory) if p.suffix == ".py")
        pinned = containers.requirement_pins(directory / "requirements.txt")
        assert needed <= set(pinned), f"{name}: its requirements.txt lacks {sorted(needed - set(pinned))}"
        if benchmark.load(name)["kind"] == "training":
            every_training_run = needed if every_training_run is None else every_training_run & needed
    # a harness module only some workloads import (common/model_size.py: torchao, the tiny suite) is pinned by them
    assert every_training_run <= set(common), \
        f"common/requirements.txt lacks {sorted(every_training_run - set(common))}"

    pyproject = {}
    for requirement in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", requirement.strip())
        assert match, f"pyproject.toml: {requirement} is not an exact pin"
        pyproject[containers.canonical(match.group(1))] = match.group(2)
    tooling = third_party_imports((REPO_ROOT / "common").glob("*.py"))
    assert tooling <= set(pyproject), f"pyproject.toml lacks {sorted(tooling - set(pyproject))}"
    union = dict(common)
    for name in WORKLOADS:
        union.update(containers.requirement_pins(Path(benchmark.load(name)["directory"]) / "requirements.txt"))
    disagree = {p: (v, pyproject.get(p, "missing")) for p, v in union.items() if pyproject.get(p) != v}
    assert not disagree, f"workload pins vs pyproject.toml's dependencies (pin, pyproject): {disagree}"


def test_requirement_pins_follow_includes_and_refuse_loose_lines(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "requirements.txt").write_text("numpy==2.4.6  # comment\nPyYAML==6.0.4\n")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "requirements.txt").write_text("-r ../shared/requirements.txt\ntorchvision==0.29.2\n")
    assert containers.requirement_pins(tmp_path / "w" / "requirements.txt") == \
        {"numpy": "2.4.6", "pyyaml": "6.0.4", "torchvision": "0.29.2"}
    (tmp_path / "w" / "requirements.txt").write_text("-r ../shared/requirements.txt\nnumpy>=2\n")
    with pytest.raises(containers.DockerError, match="neither an exact pin"):
        containers.requirement_pins(tmp_path / "w" / "requirements.txt")
    (tmp_path / "w" / "requirements.txt").write_text("-r ../shared/requirements.txt\nnumpy==1.0\n")
    with pytest.raises(containers.DockerError, match="pinned to both"):
        containers.requirement_pins(tmp_path / "w" / "requirements.txt")


@pytest.mark.parametrize("name", WORKLOADS)
def test_required_scripts_are_present_and_executable(name):
    directory = Path(benchmark.load(name)["directory"])
    for script in REQUIRED_SCRIPTS:
        path = directory / script
        assert path.is_file() and os.access(path, os.X_OK), f"{path} missing or not executable"
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0, f"{path}: bash syntax error"


# --- the shared machinery -------------------------------------------------------------------------------------------
def test_suite_scripts_are_executable_and_parse():
    for script in SUITE_SCRIPTS:
        path = DOCKER_DIR / script
        assert path.is_file() and os.access(path, os.X_OK), f"{path} missing or not executable"
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0, f"{path}: shell syntax error"
    assert "--require-hashes" in (DOCKER_DIR / "base" / "install-locked.sh").read_text()


def test_base_images_hold_what_every_workload_shares():
    for flavour in images.FLAVOURS:
        steps = base_steps(flavour)
        assert steps[0] == ("ARG", f"BASE_IMAGE={images.DEFAULT_BASE_IMAGES[flavour]}")
        assert steps[1] == ("FROM", "${BASE_IMAGE}")
        assert ("RUN", "sh /opt/suite-setup/setup.sh && rm -rf /opt/suite-setup") in steps
        assert ("WORKDIR", "/opt/suite") in steps
        env = " ".join(args for kind, args in steps if kind == "ENV").split()
        assert {"DATA_DIR=/data", "RESULTS_DIR=/results", "PYTHON=python", "VIRTUAL_ENV=/opt/venv"} <= set(env)
        triggers = [args for kind, args in steps if kind == "ONBUILD"]
        assert triggers == ["ARG LOCK=requirements.lock", "ARG WHEELS_URL=",
                            "ARG PIP_INDEX_URL=https://pypi.org/simple", "COPY docker/build-ca/ /tmp/build-ca/"]
        assert not [kind for kind, _ in steps if kind in ("USER", "ENTRYPOINT", "CMD")], \
            "USER, ENTRYPOINT and CMD are the workload's (a base USER would run its install as bench)"
    for reference in [*images.DEFAULT_BASE_IMAGES.values(), images.OFFLINE_BASE_IMAGE]:
        assert image_reference_ok(reference), f"{reference}: name an explicit tag (never latest) or a digest"
    assert f"TAG=${{1:-{images.OFFLINE_BASE_IMAGE}}}" in (DOCKER_DIR / "offline_base.sh").read_text()


def test_no_dockerfile_names_a_latest_tag():
    for dockerfile in [*REPO_ROOT.glob("*/*/Dockerfile"), *DOCKER_DIR.glob("base/*.Dockerfile")]:
        for kind, args in instructions(dockerfile):
            if kind == "FROM" and "$" not in args.split()[0]:
                assert image_reference_ok(args.split()[0]), f"{dockerfile}: FROM {args}"
            if kind == "ARG" and args.startswith("BASE_IMAGE="):
                assert image_reference_ok(args.split("=", 1)[1]), f"{dockerfile}: ARG {args}"


def test_docker_folder_holds_no_python_and_does_not_shadow_the_sdk():
    """docker/ has Dockerfiles and scripts only; with the repository root first on sys.path (as tasks.py, the run
    scripts and pytest put it), `import docker` is the SDK, and importing the machinery imports no SDK."""
    assert not list(DOCKER_DIR.rglob("*.py")), "the Docker machinery is common/containers/, not docker/"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import common.containers as c; "
            "assert 'docker' not in sys.modules, 'common.containers imported docker'; "
            "import docker; print(docker.__file__); print(docker.from_env.__module__); "
            "print(c.__file__)")
    proc = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    sdk_file, from_env_module, package_file = proc.stdout.split()
    assert Path(sdk_file).resolve().parent != DOCKER_DIR and "site-packages" in sdk_file, sdk_file
    assert from_env_module.startswith("docker."), from_env_module
    assert Path(package_file).resolve() == REPO_ROOT / "common" / "containers" / "__init__.py"


def test_content_hash_follows_the_files_and_the_base(tmp_path):
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    files = [("x/a.py", tmp_path / "a.py"), ("x/run.sh", tmp_path / "run.sh")]
    first = images.files_hash(files)
    assert images.files_hash(files) == first
    assert images.context_tar(files).getvalue() == images.context_tar(files).getvalue(), "the context is deterministic"
    (tmp_path / "run.sh").chmod(0o755)
    assert images.files_hash(files) != first, "the executable bit is content"
    second = images.files_hash(files)
    (tmp_path / "a.py").write_text("print(2)\n")
    assert images.files_hash(files) != second
    tag = images.image_tag("nanogpt", "cpu", first, "sha256:" + "1" * 64)
    assert re.fullmatch(r"mlperf-teach/nanogpt:cpu-[0-9a-f]{16}", tag)
    assert tag != images.image_tag("nanogpt", "cpu", first, "sha256:" + "2" * 64), "a new base means a new tag"


def test_workload_context_is_exactly_what_the_image_needs():
    directory = Path(benchmark.load("nanogpt")["directory"])
    names = [name for name, _ in images.workload_context(directory)]
    assert "language/nanogpt/Dockerfile" in names and "language/nanogpt/requirements.lock" in names
    assert "common/timed_run.sh" in names and "docker/build-ca/README.md" in names
    assert all(n.split("/")[0] in ("language", "common", "docker") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert images.files_hash(images.workload_context(directory)) == \
        images.files_hash(images.workload_context(directory))


def test_an_inference_image_carries_the_training_workload_it_serves():
    """nanogpt_infer imports nanogpt's model.py and train.py (checkpoint.training_benchmark): its build context,
    and so its content tag, holds that workload's code too, and its Dockerfile copies it."""
    directory = Path(benchmark.load("nanogpt_infer")["directory"])
    names = [name for name, _ in images.workload_context(directory)]
    assert images.served_training_dirs(directory) == [Path(benchmark.load("nanogpt")["directory"])]
    assert {"language/nanogpt/model.py", "language/nanogpt/train.py", "language/nanogpt_infer/serve.py"} <= set(names)
    assert ("COPY", "language/nanogpt/ language/nanogpt/") in instructions(directory / "Dockerfile")
    assert images.served_training_dirs(Path(benchmark.load("nanogpt")["directory"])) == []


def test_containers_mount_only_the_run_folder_writable(tmp_path):
    options = runs.container_options(tmp_path / "data", tmp_path / "run", gpus=None)
    assert options["network_mode"] == "none" and options["read_only"] is True
    assert options["volumes"] == {str(tmp_path / "data"): {"bind": "/data", "mode": "ro"},
                                  str(tmp_path / "run"): {"bind": "/results", "mode": "rw"}}
    assert options["user"] != "0:0" and options["cap_drop"] == ["ALL"]
    assert options["security_opt"] == ["no-new-privileges"] and options["device_requests"] is None
    (all_gpus,) = runs.device_requests("all")
    assert all_gpus.count == -1 and all_gpus.capabilities == [["gpu"]]
    (two,) = runs.device_requests("0,1")
    assert two.device_ids == ["0", "1"]


def test_no_engine_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(containers.DockerError) as raised:
        containers.client()
    assert str(raised.value).startswith("no Docker engine is reachable at unix://") and "\n" not in str(raised.value)


def test_no_engine_is_one_sentence_from_invoke(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    proc = subprocess.run([sys.executable, "-m", "invoke", "run", "nanogpt", "--docker", "--smoke"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    message = proc.stderr.strip()
    assert message.startswith("error: no Docker engine is reachable at unix://") and "\n" not in message, message


# --- a containerised run, with a stand-in engine --------------------------------------------------------------------
MLLOG = ':::MLLOG {"key": "run_stop", "value": null}\n'


class FakeContainer:
    def __init__(self, exit_code: int):
        self.exit_code, self.removed = exit_code, False

    def logs(self, stream, follow):
        yield b"STARTING TIMING RUN\n"

    def wait(self):
        return {"StatusCode": self.exit_code}

    def remove(self, force=False):
        self.removed = True


class FakeEngine:
    """Runs `behaviour(mount, log)` where a container would run: mount is the host folder mounted read-write at
    /results, log the host path of the container's LOGFILE. exit_code: every container's, or a list of them, one
    per container in order."""

    def __init__(self, behaviour, exit_code: int | list[int] = 0):
        self.behaviour, self.exit_code, self.started = behaviour, exit_code, []
        self.containers = self

    def run(self, image, command, detach, environment, **options):
        writable = [Path(host) for host, mount in options["volumes"].items() if mount["mode"] != "ro"]
        assert len(writable) == 1 and options["volumes"][str(writable[0])]["bind"] == "/results"
        mount = writable[0]
        self.started.append({"mount": mount, "contents": sorted(os.listdir(mount)), "options": options,
                             "environment": environment})
        assert environment["LOGFILE"].startswith("/results/")
        self.behaviour(mount, mount / environment["LOGFILE"][len("/results/"):])
        code = self.exit_code[len(self.started) - 1] if isinstance(self.exit_code, list) else self.exit_code
        self.container = FakeContainer(code)
        return self.container


class FakeImage:
    id = "sha256:" + "f" * 64
    tags = ["mlperf-teach/nanogpt:cpu-0123456789abcdef"]


def write_log(mount: Path, log: Path) -> None:
    log.write_text(MLLOG)


@pytest.fixture
def stand_in_run(monkeypatch, tmp_path):
    """runs.run with a stand-in engine: go(name, behaviour, exit_code, **options) -> ([RunResult], FakeEngine)."""
    for variable in ("SUBMISSION_ORG", "SUBMISSION_PLATFORM", "RESULTS_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(runs, "check_data", lambda definition, data_dir: None)
    monkeypatch.setattr(runs, "current_image", lambda engine, name, flavour: FakeImage())
    (tmp_path / "data").mkdir()

    def go(name, behaviour, exit_code=0, **options):
        fake = FakeEngine(behaviour, exit_code)
        monkeypatch.setattr(runs, "client", lambda: fake)
        done = runs.run(name, seed=2, smoke=True, data_dir=tmp_path / "data", out_root=tmp_path / "results",
                        **options)
        return done, fake

    return go


@pytest.fixture
def docker_run(stand_in_run):
    """A training workload's run with a stand-in engine: go(behaviour, exit_code) -> (RunResult, FakeEngine)."""
    def go(behaviour=write_log, exit_code=0):
        (result,), fake = stand_in_run("nanogpt", behaviour, exit_code)
        return result, fake

    return go


def test_docker_run_writes_the_one_results_layout(docker_run, tmp_path):
    result, fake = docker_run()
    bench_dir = tmp_path / "results/reference/results/docker_cpu/nanogpt"
    assert result.exit_code == 0 and result.result_file == bench_dir / "result_0.txt"
    assert result.result_file.read_text() == MLLOG
    assert results.system_name("docker", "cpu") == "docker_cpu"
    system = json.loads((tmp_path / "results/reference/systems/docker_cpu.json").read_text())
    assert system["system_name"] == "docker_cpu" and system["accelerators_per_node"] == 0
    assert "Docker image mlperf-teach/nanogpt:cpu-" in system["framework"]
    logs = tmp_path / "results-logs/reference/docker_cpu/nanogpt"
    assert result.output_file == logs / "result_0.log" and "STARTING" in result.output_file.read_text()
    record = json.loads((logs / "result_0.json").read_text())
    assert record["exit_code"] == 0 and record["result_file"] == str(result.result_file)
    assert sorted(p.name for p in logs.iterdir()) == ["result_0.json", "result_0.log"], "the run folder is removed"
    assert fake.container.removed and fake.started[0]["environment"]["RESULTS_DIR"] == "/results"


def test_docker_run_mounts_only_a_fresh_empty_folder(docker_run, tmp_path):
    """The container sees an empty folder of its own at /results, never the results: what it writes there besides
    its log (here: an attempt to replace an earlier result) never reaches them."""
    docker_run()
    bench_dir = tmp_path / "results/reference/results/docker_cpu/nanogpt"
    earlier = (bench_dir / "result_0.txt").read_text()

    def tamper(mount, log):
        (mount / "result_0.txt").write_text("forged\n")
        (mount / "reference").mkdir()
        write_log(mount, log)

    result, fake = docker_run(tamper)
    (started,) = fake.started
    mount = started["mount"]
    assert started["contents"] == [], "the folder mounted at /results is empty when the container starts"
    assert not mount.exists(), "the per-run folder is removed afterwards"
    root = (tmp_path / "results").resolve()
    assert root not in mount.resolve().parents and mount.resolve() != root, "no part of the results is mounted"
    assert [v for v in started["options"]["volumes"].values() if v["mode"] == "rw"] == \
        [{"bind": "/results", "mode": "rw"}]
    assert (bench_dir / "result_0.txt").read_text() == earlier
    assert result.result_file == bench_dir / "result_1.txt"
    assert sorted(p.name for p in bench_dir.iterdir()) == ["result_0.txt", "result_1.txt"]


def test_docker_rerun_never_overwrites(docker_run, tmp_path):
    bench_dir = tmp_path / "results/reference/results/docker_cpu/nanogpt"
    bench_dir.mkdir(parents=True)
    (bench_dir / "result_0.txt").write_text("first\n")
    (bench_dir / "result_2.txt").write_text("third\n")
    assert docker_run()[0].result_file == bench_dir / "result_1.txt"
    assert docker_run()[0].result_file == bench_dir / "result_3.txt"
    assert (bench_dir / "result_0.txt").read_text() == "first\n"
    assert (bench_dir / "result_2.txt").read_text() == "third\n"


def test_placing_a_log_is_exclusive_when_another_run_takes_the_index(tmp_path, monkeypatch):
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    source = tmp_path / "result.txt"
    source.write_text(MLLOG)
    chosen = iter([bench_dir / "result_0.txt"])
    real = results.next_result_file

    def racing(directory):  # the index chosen, then taken by another run before the file is created
        path = next(chosen, None)
        if path is not None:
            path.write_text("the other run\n")
            return path
        return real(directory)

    monkeypatch.setattr(results, "next_result_file", racing)
    assert runs.place_log(source, bench_dir) == bench_dir / "result_1.txt"
    assert (bench_dir / "result_0.txt").read_text() == "the other run\n"
    assert (bench_dir / "result_1.txt").read_text() == MLLOG


@pytest.mark.parametrize("kind", ["symlink to an earlier result", "symlink to a host file", "folder", "fifo"])
def test_docker_run_refuses_a_log_that_is_not_a_regular_file(docker_run, tmp_path, kind):
    docker_run()
    bench_dir = tmp_path / "results/reference/results/docker_cpu/nanogpt"
    host_file = tmp_path / "host-secret"
    host_file.write_text("secret\n")

    def leave(mount, log):
        if kind == "symlink to an earlier result":
            log.symlink_to(bench_dir / "result_0.txt")
        elif kind == "symlink to a host file":
            log.symlink_to(host_file)
        elif kind == "folder":
            log.mkdir()
        else:
            os.mkfifo(log)

    with pytest.raises(containers.DockerError) as raised:
        docker_run(leave)
    message = str(raised.value)
    assert "\n" not in message and "no result was recorded" in message, message
    assert ("symbolic link" in message) == kind.startswith("symlink"), message
    assert sorted(p.name for p in bench_dir.iterdir()) == ["result_0.txt"]
    logs = tmp_path / "results-logs/reference/docker_cpu/nanogpt"
    assert not [p for p in logs.iterdir() if p.name.startswith(".run-")], "the per-run folder is removed"
    assert host_file.read_text() == "secret\n"


def test_docker_run_without_a_log(docker_run, tmp_path):
    bench_dir = tmp_path / "results/reference/results/docker_cpu/nanogpt"
    result, _ = docker_run(lambda mount, log: None, exit_code=3)  # a failed run: its exit code is the report
    assert result.exit_code == 3 and result.result_file is None
    assert json.loads(result.record_file.read_text())["result_file"] is None
    assert not list(bench_dir.iterdir())
    with pytest.raises(containers.DockerError, match="wrote no MLPerf log at /results/result.txt"):
        docker_run(lambda mount, log: None, exit_code=0)


def test_docker_run_as_root_chowns_only_its_fresh_folder(docker_run, tmp_path, monkeypatch):
    """Root runs the container as `bench` and lends it only the fresh per-run folder; nothing the container made
    (here a symbolic link to a host file, and the log) is chowned, so no ownership change follows a link."""
    calls = []
    for function in ("chown", "lchown", "fchown"):
        monkeypatch.setattr(os, function, lambda path, uid, gid, *a, _f=function, **k: calls.append((_f, path, uid)))
    monkeypatch.setattr(runs, "running_as_root", lambda: True)
    host_file = tmp_path / "host-file"
    host_file.write_text("mine\n")
    seen = {}

    def leave(mount, log):
        seen["mount"] = mount
        (mount / "link").symlink_to(host_file)
        (mount / "sub").mkdir()
        (mount / "sub" / "link").symlink_to(host_file)
        write_log(mount, log)

    result, fake = docker_run(leave)
    assert fake.started[0]["options"]["user"] is None, "root's container runs as the image's user bench"
    assert calls == [("lchown", seen["mount"], engine_module.BENCH_UID)], calls
    assert result.result_file.read_text() == MLLOG


# --- an inference workload's runs, with a stand-in engine -----------------------------------------------------------
# What a serve.py run leaves beside its log (common/inference.py): LoadGen's files of the accuracy run, with our
# expected answers, and of the performance run, whose (empty) answers file LoadGen writes too.
LOADGEN_OUTPUT = ["accuracy/mlperf_log_summary.txt", "accuracy/mlperf_log_detail.txt",
                  "accuracy/mlperf_log_accuracy.json", "accuracy/reference_outputs.json",
                  "performance/mlperf_log_summary.txt", "performance/mlperf_log_detail.txt",
                  "performance/mlperf_log_accuracy.json"]
INFERENCE = "nanogpt_infer"


def write_inference_run(mount: Path, log: Path, files=LOADGEN_OUTPUT) -> None:
    """The container's log and LoadGen's files in loadgen_0/ beside it, each saying which container wrote it."""
    write_log(mount, log)
    for name in files:
        path = mount / "loadgen_0" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name} of {mount.name}\n")


def loadgen_tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def inference_run(stand_in_run):
    """nanogpt_infer's runs with a stand-in engine: go(behaviour, exit_code, variant) -> ([RunResult], FakeEngine);
    variant None runs every variant."""
    def go(behaviour=write_inference_run, exit_code=0, variant="decode_server"):
        return stand_in_run(INFERENCE, behaviour, exit_code, variant=variant)

    return go


def variant_dir(tmp_path: Path, variant: str) -> Path:
    return tmp_path / f"results/reference/results/docker_cpu/{INFERENCE}/{variant}"


def variant_logs(tmp_path: Path, variant: str) -> Path:
    return tmp_path / f"results-logs/reference/docker_cpu/{INFERENCE}/{variant}"


def test_inference_run_places_its_log_and_loadgen_files_under_one_index(inference_run, tmp_path):
    """The log goes into the variant's folder as the next free result_<i>.txt and LoadGen's files into
    loadgen_<i>/, the same i: an index whose log or LoadGen folder exists (loadgen_1, left without its log) is
    skipped, and nothing there is touched."""
    folder = variant_dir(tmp_path, "decode_server")
    (folder / "loadgen_0").mkdir(parents=True)
    (folder / "result_0.txt").write_text("earlier\n")
    (folder / "loadgen_1").mkdir()
    (result,), fake = inference_run()
    (started,) = fake.started
    assert started["environment"]["VARIANT"] == "decode_server"
    assert started["environment"]["LOGFILE"] == f"/results/{runs.VARIANT_LOG}" == "/results/result_0.txt"
    assert result.exit_code == 0 and result.variant == "decode_server"
    assert result.result_file == folder / "result_2.txt" and result.result_file.read_text() == MLLOG
    assert result.loadgen_dir == folder / "loadgen_2"
    assert loadgen_tree(result.loadgen_dir) == {n: f"{n} of {started['mount'].name}\n" for n in LOADGEN_OUTPUT}
    assert (folder / "result_0.txt").read_text() == "earlier\n" and not list((folder / "loadgen_1").iterdir())
    logs = variant_logs(tmp_path, "decode_server")
    assert sorted(p.name for p in logs.iterdir()) == ["result_2.json", "result_2.log"], "the run folder is removed"
    record = json.loads((logs / "result_2.json").read_text())
    assert record["variant"] == "decode_server" and record["loadgen_dir"] == str(result.loadgen_dir)
    assert record["exit_code"] == 0 and record["result_file"] == str(result.result_file)
    system = json.loads((tmp_path / "results/reference/systems/docker_cpu.json").read_text())
    assert system["system_name"] == "docker_cpu", "the system is named as for training"


def test_inference_run_names_agree_with_the_harness_and_the_checker():
    from common.inference import loadgen_dir_for
    from submission_checker.inference import LOADGEN_FILES

    assert loadgen_dir_for(Path("/results") / runs.VARIANT_LOG) == Path("/results") / runs.VARIANT_LOADGEN
    assert runs.loadgen_dir_of(Path("/x/result_7.txt")) == loadgen_dir_for(Path("/x/result_7.txt"))
    required = {f"{part}/{name}" for part, names in runs.LOADGEN_REQUIRED.items() for name in names}
    assert required == set(LOADGEN_FILES) and required < set(LOADGEN_OUTPUT)
    assert {f"{part}/{name}" for part, names in runs.LOADGEN_ALLOWED.items() for name in names} == set(LOADGEN_OUTPUT)


def test_every_variant_runs_in_a_container_of_its_own(inference_run, tmp_path):
    done, fake = inference_run(variant=None)
    variants = list(benchmark.load(INFERENCE, smoke=True)["performance"])
    assert [r.variant for r in done] == [s["environment"]["VARIANT"] for s in fake.started] == variants
    for result, started in zip(done, fake.started):
        folder = variant_dir(tmp_path, result.variant)
        assert result.result_file == folder / "result_0.txt" and result.loadgen_dir == folder / "loadgen_0"
        assert loadgen_tree(result.loadgen_dir)["performance/mlperf_log_detail.txt"] == \
            f"performance/mlperf_log_detail.txt of {started['mount'].name}\n", "each variant's own files"
        assert (variant_logs(tmp_path, result.variant) / "result_0.json").is_file()
        assert started["contents"] == [], "every container starts with an empty /results"
    assert len({s["mount"] for s in fake.started}) == len(variants), "a fresh folder for every container"


def test_a_failed_variant_keeps_what_it_left_and_the_next_variants_run(inference_run, tmp_path):
    """As run_and_time.sh does: a variant whose run failed (here in its performance run, after the accuracy run)
    keeps its log and the LoadGen files it wrote, and the next variants still run."""
    first = []

    def crash_once(mount, log):
        write_inference_run(mount, log, LOADGEN_OUTPUT[:4] if not first else LOADGEN_OUTPUT)
        first.append(mount)

    done, _ = inference_run(crash_once, exit_code=[3, 0, 0], variant=None)
    assert [r.exit_code for r in done] == [3, 0, 0]
    assert sorted(loadgen_tree(done[0].loadgen_dir)) == sorted(LOADGEN_OUTPUT[:4])
    assert sorted(loadgen_tree(done[1].loadgen_dir)) == sorted(LOADGEN_OUTPUT)


@pytest.mark.parametrize("kind", ["symlinked file", "symlinked subfolder", "symlinked LoadGen folder",
                                  "unexpected file", "unexpected file at the top", "unexpected folder", "fifo",
                                  "incomplete", "no LoadGen folder"])
def test_inference_run_refuses_what_loadgen_does_not_write(inference_run, tmp_path, kind):
    """Only LoadGen's expected files, as regular files in real folders, are taken; anything else (a symbolic link
    above all, which could point at the host's files) is refused in one sentence and nothing is recorded."""
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "secret").write_text("secret\n")

    def leave(mount, log):
        write_inference_run(mount, log)
        loadgen_0 = mount / "loadgen_0"
        if kind == "symlinked file":
            (loadgen_0 / "accuracy/mlperf_log_detail.txt").unlink()
            (loadgen_0 / "accuracy/mlperf_log_detail.txt").symlink_to(host_dir / "secret")
        elif kind == "symlinked subfolder":
            shutil.rmtree(loadgen_0 / "performance")
            (loadgen_0 / "performance").symlink_to(host_dir)
        elif kind == "symlinked LoadGen folder":
            shutil.rmtree(loadgen_0)
            loadgen_0.symlink_to(host_dir)
        elif kind == "unexpected file":
            (loadgen_0 / "performance/mlperf_log_trace.json").write_text("{}\n")
        elif kind == "unexpected file at the top":
            (loadgen_0 / "notes.txt").write_text("hello\n")
        elif kind == "unexpected folder":
            (loadgen_0 / "accuracy/more").mkdir()
        elif kind == "fifo":
            (loadgen_0 / "accuracy/mlperf_log_accuracy.json").unlink()
            os.mkfifo(loadgen_0 / "accuracy/mlperf_log_accuracy.json")
        elif kind == "incomplete":
            (loadgen_0 / "performance/mlperf_log_detail.txt").unlink()
        else:
            shutil.rmtree(loadgen_0)

    with pytest.raises(containers.DockerError) as raised:
        inference_run(leave)
    message = str(raised.value)
    assert "\n" not in message and "no result was recorded" in message, message
    assert ("symbolic link" in message) == kind.startswith("symlinked"), message
    assert not list(variant_dir(tmp_path, "decode_server").iterdir()), "neither the log nor LoadGen's files"
    logs = variant_logs(tmp_path, "decode_server")
    assert not [p for p in logs.iterdir() if p.name.startswith(".run-")], "the per-run folder is removed"
    (record,) = logs.glob("unrecorded_*.json")
    assert json.loads(record.read_text())["problem"] and json.loads(record.read_text())["result_file"] is None
    assert sorted(os.listdir(host_dir)) == ["secret"] and (host_dir / "secret").read_text() == "secret\n"


def test_a_failed_copy_of_loadgen_files_leaves_nothing_behind(inference_run, tmp_path, monkeypatch):
    real, copies = runs.copy_exclusively, []

    def full_disk_on_the_fourth(reader, target):
        copies.append(target)
        if len(copies) == 4:  # the log and two LoadGen files are in place by then
            raise OSError(errno.ENOSPC, "No space left on device")
        real(reader, target)

    monkeypatch.setattr(runs, "copy_exclusively", full_disk_on_the_fourth)
    with pytest.raises(containers.DockerError, match="copying LoadGen's files into .*loadgen_0 failed") as raised:
        inference_run()
    assert "\n" not in str(raised.value) and "no result was recorded" in str(raised.value)
    assert not list(variant_dir(tmp_path, "decode_server").iterdir()), "the log placed first is removed again"


def test_variants_are_checked_before_any_container_starts():
    training, inference = benchmark.load("nanogpt"), benchmark.load(INFERENCE, smoke=True)
    assert runs.variants_to_run(training, None, 2) == [None]
    assert runs.variants_to_run(inference, None, 1) == list(inference["performance"])
    assert runs.variants_to_run(inference, "decode_server", 1) == ["decode_server"]
    for definition, variant, nproc, fragment in [(inference, "decode_batch", 1, "has no variant 'decode_batch'"),
                                                 (inference, None, 2, "runs in one process"),
                                                 (training, "decode_server", 1, "is a training benchmark")]:
        with pytest.raises(containers.DockerError, match=fragment) as raised:
            runs.variants_to_run(definition, variant, nproc)
        assert "\n" not in str(raised.value)


def test_check_data_requires_the_served_checkpoint_and_its_record(tmp_path, monkeypatch):
    """The container reads the checkpoint from /data (the host's CHECKPOINT is not passed on): without it, or
    without its lineage record, one sentence says how to make it on the host, smoke-aware."""
    monkeypatch.setattr(runs.fetch, "verify", lambda definition, data_dir: {})
    monkeypatch.setattr(runs, "running_as_root", lambda: False)
    full, smoke = benchmark.load(INFERENCE), benchmark.load(INFERENCE, smoke=True)

    with pytest.raises(containers.DockerError) as raised:
        runs.check_data(full, tmp_path)
    message = str(raised.value)
    assert "\n" not in message and f"{tmp_path / full['checkpoint']['file']} is missing" in message, message
    assert f"invoke download {INFERENCE} --data-dir {tmp_path}" in message, message

    with pytest.raises(containers.DockerError) as raised:
        runs.check_data(smoke, tmp_path)
    message = str(raised.value)
    assert "\n" not in message and "nanogpt_smoke_seed1.pt is missing" in message, message
    assert f"SMOKE=1 DATA_DIR={tmp_path} language/nanogpt_infer/download_dataset.sh" in message, message
    assert "`invoke download` makes only the full checkpoint" in message, message

    checkpoint = tmp_path / smoke["checkpoint"]["file"]
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    with pytest.raises(containers.DockerError, match=r"nanogpt_smoke_seed1\.pt\.json is missing"):
        runs.check_data(smoke, tmp_path)
    checkpoint.with_name(checkpoint.name + ".json").write_text("{}\n")
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare/input.txt").write_text("text\n")
    runs.check_data(smoke, tmp_path)
    assert runs.checkpoint_files(benchmark.load("nanogpt"), tmp_path) == [], "a training workload serves none"

    monkeypatch.setattr(runs, "running_as_root", lambda: True)  # the container's user reads the data as "other"
    checkpoint.chmod(0o600)
    with pytest.raises(containers.DockerError, match=f"chmod -R a\\+rX {tmp_path}$"):
        runs.check_data(smoke, tmp_path)


def test_invoke_run_docker_reports_every_failed_variant(monkeypatch, capsys):
    """`invoke run <inference> --docker` passes --variant on, names each failed variant with its exit code, and
    exits with the first failure's code, as run_and_time.sh does."""
    import tasks
    from invoke import Context, Exit

    calls = []

    def fake_run(workload, **options):
        calls.append(options)
        return [SimpleNamespace(variant=v, exit_code=code, output_file=Path(f"/logs/{v}.log"))
                for v, code in [("prefill_offline", 0), ("decode_singlestream", 4), ("decode_server", 5)]]

    monkeypatch.setattr(tasks, "_images", lambda: SimpleNamespace(run=fake_run, DockerError=containers.DockerError))
    with pytest.raises(Exit) as raised:
        tasks.run(Context(), INFERENCE, smoke=True, docker=True, variant="decode_server")
    assert calls[0]["variant"] == "decode_server" and calls[0]["smoke"] is True
    assert raised.value.code == 4
    assert raised.value.message == (f"error: {INFERENCE} decode_server run with seed 1 failed in its container (exit "
                                    "code 5); output in /logs/decode_server.log")
    assert capsys.readouterr().err.strip() == (f"error: {INFERENCE} decode_singlestream run with seed 1 failed in its "
                                               "container (exit code 4); output in /logs/decode_singlestream.log")


# --- end to end -----------------------------------------------------------------------------------------------------
def _skip_or_fail(reason: str):
    if os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(f"REQUIRE_DOCKER=1 but the container test cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine():
    try:
        return containers.client()
    except containers.DockerError as error:
        _skip_or_fail(str(error))


def workload_image(engine, name: str):
    """The workload's CPU image of the current files, or a skip (a failure with REQUIRE_DOCKER=1)."""
    content = images.files_hash(images.workload_context(Path(benchmark.load(name)["directory"])))
    image = engine_module.newest(engine, f"org.mlperf-teach.workload={name}", "org.mlperf-teach.flavour=cpu",
                                 f"org.mlperf-teach.files-sha256={content}")
    if image is None:
        _skip_or_fail(f"no {name} image of the current files: `invoke build {name}` (see docker/README.md)")
    return image


@pytest.fixture(scope="module")
def nanogpt_image(engine):
    return workload_image(engine, "nanogpt")


@pytest.fixture(scope="module")
def nanogpt_infer_image(engine):
    return workload_image(engine, INFERENCE)


def readable_by_the_container(data_dir: Path) -> None:
    if os.getuid() == 0:  # the container's user reads the data as "other" (fetch writes files 0600)
        subprocess.run(["chmod", "-R", "a+rX", str(data_dir)], check=True)


@pytest.fixture(scope="module")
def container_data(data_dir):
    readable_by_the_container(data_dir)
    return data_dir


@pytest.fixture(scope="module")
def inference_data(container_data):
    """container_data with nanogpt_infer's smoke checkpoint, made on the host as a submitter makes it:
    SMOKE=1 download_dataset.sh (the dataset from the offline mirror, then nanogpt's smoke training)."""
    script = Path(benchmark.load(INFERENCE)["directory"]) / "download_dataset.sh"
    env = {k: v for k, v in os.environ.items() if k not in ("CHECKPOINT", "LOGFILE", "SAVE_MODEL", "VARIANT")}
    env.update({"PYTHON": sys.executable, "DATA_DIR": str(container_data), "DATASET_MIRROR": str(mirror_dir()),
                "SMOKE": "1", "OMP_NUM_THREADS": "1"})
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    readable_by_the_container(container_data)
    return container_data


@pytest.mark.docker
@pytest.mark.slow
def test_nanogpt_smoke_in_its_container(engine, nanogpt_image, container_data, tmp_path):
    from submission_checker import schema

    (result,) = containers.run("nanogpt", seed=3, smoke=True, data_dir=container_data, out_root=tmp_path / "results")
    assert result.exit_code == 0, result.output_file.read_text()[-3000:]
    assert result.image_id == nanogpt_image.id
    assert result.result_file == tmp_path / "results/reference/results/docker_cpu/nanogpt/result_0.txt"

    lines = result.result_file.read_text().splitlines()
    assert lines and all(line.startswith(":::MLLOG ") for line in lines), "the result file holds MLLOG lines only"
    events = [json.loads(line[len(":::MLLOG "):]) for line in lines]
    log_schema = schema.load("log_event")
    problems = [(i, log_schema.error(event)) for i, event in enumerate(events) if log_schema.error(event)]
    assert not problems, problems[:3]
    first = {}
    for event in events:
        first.setdefault(event["key"], event)
    assert first["run_stop"]["metadata"]["status"] == "success"
    assert first["seed"]["value"] == 3 and first["smoke_configuration"]["value"] is True
    record = first["provenance"]["value"]
    assert schema.load("provenance").error(record) is None
    assert record["container"] == {"in_container": True, "image_id": nanogpt_image.id}
    pins = containers.read_pins(Path(benchmark.load("nanogpt")["directory"]) / "requirements.lock")
    assert {containers.canonical(k): v for k, v in record["packages"]["versions"].items() if k != "pip"} == pins
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert record["git"]["commit"] == head.stdout.strip(), "the host's commit reaches provenance"

    system = json.loads((tmp_path / "results/reference/systems/docker_cpu.json").read_text())
    assert schema.load("system_desc").error(system) is None
    run_record = json.loads((tmp_path / "results-logs/reference/docker_cpu/nanogpt/result_0.json").read_text())
    assert run_record["exit_code"] == 0 and run_record["network"] == "none"
    assert "RESULT,nanogpt,3," in result.output_file.read_text()


@pytest.mark.docker
@pytest.mark.slow
def test_nanogpt_infer_smoke_in_its_container(engine, nanogpt_infer_image, inference_data, tmp_path):
    """Every variant of nanogpt_infer's smoke configuration, each in its own container, required_runs times: the
    logs and LoadGen's files land in the results layout as a bare-metal run's do, and the checker passes them."""
    from submission_checker import checker

    definition = benchmark.load(INFERENCE, smoke=True)
    variants, root = list(definition["performance"]), tmp_path / "results"
    for index in range(definition["required_runs"]):
        done = containers.run(INFERENCE, seed=index + 1, smoke=True, data_dir=inference_data, out_root=root)
        assert [result.variant for result in done] == variants
        for result in done:
            assert result.exit_code == 0, result.output_file.read_text()[-3000:]
            assert result.image_id == nanogpt_infer_image.id
            assert result.result_file == variant_dir(tmp_path, result.variant) / f"result_{index}.txt"
            assert result.loadgen_dir == variant_dir(tmp_path, result.variant) / f"loadgen_{index}"
            assert sorted(loadgen_tree(result.loadgen_dir)) == sorted(LOADGEN_OUTPUT)
            provenance_line = next(line for line in result.result_file.read_text().splitlines()
                                   if '"key": "provenance"' in line)
            assert json.loads(provenance_line[len(":::MLLOG "):])["value"]["container"] == \
                {"in_container": True, "image_id": nanogpt_infer_image.id}

    report = checker.check(root, smoke=True)
    problems = report.errors + [error for result in report.results for error in result.errors]
    assert report.valid, problems
    assert len(report.results) == len(variants)


@pytest.mark.docker
def test_container_is_offline_non_root_and_data_read_only(engine, nanogpt_image, container_data, tmp_path):
    run_dir = runs.prepare_run_dir(tmp_path)  # what a run mounts at /results: fresh, empty, the container's
    probe = ("id -u; touch /data/x 2>/dev/null && echo data-writable || echo data-read-only; "
             "touch /opt/x 2>/dev/null && echo root-writable || echo root-read-only; "
             "echo $(ls -A /results | wc -l) entries; touch /results/x && echo results-writable; "
             "ls /sys/class/net | tr '\\n' ' '; echo; "
             "python -c 'import socket; socket.create_connection((\"pypi.org\", 443), 3)' 2>/dev/null "
             "&& echo network || echo no-network")
    try:
        output = engine.containers.run(nanogpt_image.id, entrypoint=["sh", "-c", probe], command=[], remove=True,
                                       **runs.container_options(container_data, run_dir)).decode()
    finally:
        runs.remove_run_dir(run_dir)
    uid, data, root, entries, written, interfaces, network = output.strip().splitlines()
    assert int(uid) != 0
    assert (data, root, entries, written, network) == \
        ("data-read-only", "root-read-only", "0 entries", "results-writable", "no-network")
    assert interfaces.split() == ["lo"], shlex.quote(interfaces)
    assert not run_dir.exists()
