"""Docker images: static checks over every workload's Dockerfile, requirements and lock, the machinery in
common/containers/ (content hashes, container options, where a containerised run's log goes and what it may
touch, with a stand-in engine), and (marked `docker`) the end-to-end test: the nanogpt image's smoke run with
--network none, its log validated.

The end-to-end tests are skipped, with the reason shown, where no Docker engine is reachable or the image of the
current files is not built; docker/ci_container_test.sh builds it and sets REQUIRE_DOCKER=1, which turns either
skip into a failure, so CI never counts a container test as passed that did not run.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from common import benchmark, containers, results
from common.containers import engine as engine_module
from common.containers import images, runs
from conftest import REPO_ROOT

WORKLOADS = sorted(benchmark.workload_dirs())
DOCKER_DIR = REPO_ROOT / "docker"
REQUIRED_SCRIPTS = ["run_and_time.sh", "download_dataset.sh", "verify_dataset.sh"]
SUITE_SCRIPTS = ["offline_base.sh", "ci_container_test.sh", "base/setup.sh", "base/install-locked.sh"]
COMMON_REQUIREMENTS = REPO_ROOT / "common" / "requirements.txt"
INCLUDE_COMMON = "-r ../../common/requirements.txt"
# Import names of the harness's third-party modules -> their distributions on PyPI.
DISTRIBUTION = {"yaml": "pyyaml", "mlperf_logging": "mlperf-logging", "pynvml": "nvidia-ml-py"}
WORKLOAD_DOCKERFILE_MAX_INSTRUCTIONS = 9


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
    assert steps[2:6] == [("COPY", f"{rel}/${{LOCK}} requirements.lock"), ("RUN", "install-locked requirements.lock"),
                          ("COPY", "common/ common/"), ("COPY", f"{rel}/ {rel}/")], \
        f"{rel}/Dockerfile: its lock, installed with hash checking (the slow layer), then common/ and its own code"
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{rel}/Dockerfile: the last USER must be non-root"
    assert ("ENTRYPOINT", f'["{rel}/run_and_time.sh"]') in steps, f"{rel}/Dockerfile: ENTRYPOINT its run_and_time.sh"
    assert len(steps) <= WORKLOAD_DOCKERFILE_MAX_INSTRUCTIONS, \
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
    """common/requirements.txt pins every third-party module that common/*.py imports, and every pin of every
    workload's requirements (the shared list included) is the version pyproject.toml installs."""
    imported = set()
    for source in (REPO_ROOT / "common").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    local = {m for m in imported if (REPO_ROOT / m).is_dir() or (REPO_ROOT / f"{m}.py").is_file()}
    third_party = {containers.canonical(DISTRIBUTION.get(m, m)) for m in imported - local
                   if m not in sys.stdlib_module_names}
    common = containers.requirement_pins(COMMON_REQUIREMENTS)
    assert third_party <= set(common), f"common/requirements.txt lacks {sorted(third_party - set(common))}"

    pyproject = {}
    for requirement in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", requirement.strip())
        assert match, f"pyproject.toml: {requirement} is not an exact pin"
        pyproject[containers.canonical(match.group(1))] = match.group(2)
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
    /results, log the host path of the container's LOGFILE."""

    def __init__(self, behaviour, exit_code: int = 0):
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
        self.container = FakeContainer(self.exit_code)
        return self.container


class FakeImage:
    id = "sha256:" + "f" * 64
    tags = ["mlperf-teach/nanogpt:cpu-0123456789abcdef"]


def write_log(mount: Path, log: Path) -> None:
    log.write_text(MLLOG)


@pytest.fixture
def docker_run(monkeypatch, tmp_path):
    """runs.run with a stand-in engine: go(behaviour, exit_code) -> (RunResult, FakeEngine)."""
    for variable in ("SUBMISSION_ORG", "SUBMISSION_PLATFORM", "RESULTS_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(runs, "check_data", lambda definition, data_dir: None)
    monkeypatch.setattr(runs, "current_image", lambda engine, name, flavour: FakeImage())
    (tmp_path / "data").mkdir()

    def go(behaviour=write_log, exit_code=0):
        fake = FakeEngine(behaviour, exit_code)
        monkeypatch.setattr(runs, "client", lambda: fake)
        result = runs.run("nanogpt", seed=2, smoke=True, data_dir=tmp_path / "data", out_root=tmp_path / "results")
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


@pytest.fixture(scope="module")
def nanogpt_image(engine):
    content = images.files_hash(images.workload_context(Path(benchmark.load("nanogpt")["directory"])))
    image = engine_module.newest(engine, "org.mlperf-teach.workload=nanogpt", "org.mlperf-teach.flavour=cpu",
                           f"org.mlperf-teach.files-sha256={content}")
    if image is None:
        _skip_or_fail("no nanogpt image of the current files: `invoke build nanogpt` (see docker/README.md)")
    return image


@pytest.fixture(scope="module")
def container_data(data_dir):
    if os.getuid() == 0:  # the container's user reads the data as "other" (fetch writes files 0600)
        subprocess.run(["chmod", "-R", "a+rX", str(data_dir)], check=True)
    return data_dir


@pytest.mark.docker
@pytest.mark.slow
def test_nanogpt_smoke_in_its_container(engine, nanogpt_image, container_data, tmp_path):
    from submission_checker import schema

    result = containers.run("nanogpt", seed=3, smoke=True, data_dir=container_data, out_root=tmp_path / "results")
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
