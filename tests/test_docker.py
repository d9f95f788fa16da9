"""Docker images: static checks over every workload's Dockerfile and lock, the build machinery's content hashes,
and (marked `docker`) the end-to-end test: the nanogpt image's smoke run with --network none, its log validated.

The end-to-end test is skipped, with the reason shown, where no Docker engine is reachable or the image of the
current files is not built; docker/ci_container_test.sh builds it and sets REQUIRE_DOCKER=1, which turns either
skip into a failure, so CI never counts a container test as passed that did not run.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from common import benchmark
from conftest import REPO_ROOT

WORKLOADS = sorted(benchmark.workload_dirs())
DOCKER_DIR = REPO_ROOT / "docker"
REQUIRED_SCRIPTS = ["run_and_time.sh", "download_dataset.sh", "verify_dataset.sh"]
SUITE_SCRIPTS = ["offline_base.sh", "ci_container_test.sh", "base/setup.sh", "base/install-locked.sh"]


def load_images():
    """docker/images.py, loaded by path as tasks.py does (docker/ is no package: it would shadow the SDK)."""
    if "suite_docker_images" not in sys.modules:
        spec = importlib.util.spec_from_file_location("suite_docker_images", DOCKER_DIR / "images.py")
        sys.modules["suite_docker_images"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["suite_docker_images"]


images = load_images()


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


# --- every workload -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", WORKLOADS)
def test_dockerfile_builds_on_the_shared_base_as_non_root(name):
    directory = Path(benchmark.load(name)["directory"])
    rel = directory.relative_to(REPO_ROOT).as_posix()
    dockerfile = directory / "Dockerfile"
    assert dockerfile.is_file(), f"{rel}/Dockerfile missing"
    steps = instructions(dockerfile)
    kinds = [kind for kind, _ in steps]
    first_from = kinds.index("FROM")
    assert ("ARG", "BASE_IMAGE") in steps[:first_from], f"{rel}/Dockerfile: `ARG BASE_IMAGE` (no default) before FROM"
    stages = set()
    for kind, args in steps:
        if kind == "FROM":
            source, *rest = args.split()
            assert source in ("${BASE_IMAGE}", "$BASE_IMAGE") or source in stages, \
                f"{rel}/Dockerfile: FROM {source}: every stage builds on the shared base (FROM ${{BASE_IMAGE}})"
            if len(rest) == 2 and rest[0].upper() == "AS":
                stages.add(rest[1])
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{rel}/Dockerfile: the last USER must be non-root"
    assert ("ENTRYPOINT", f'["{rel}/run_and_time.sh"]') in steps, f"{rel}/Dockerfile: ENTRYPOINT its run_and_time.sh"
    copies = [args for kind, args in steps if kind in ("COPY", "ADD")]
    assert any(c.startswith("common/ ") for c in copies), f"{rel}/Dockerfile copies common/"
    assert any(c.startswith(f"{rel}/ ") for c in copies), f"{rel}/Dockerfile copies {rel}/"
    assert not [c for c in copies if c.startswith(". ") or c.startswith("./ ")], "copy only common/ and its own dir"
    assert any(c.startswith(f"{rel}/${{LOCK}} ") for c in copies), f"{rel}/Dockerfile copies its lock (${{LOCK}})"
    assert any(kind == "RUN" and args.startswith("install-locked ") for kind, args in steps), \
        f"{rel}/Dockerfile installs the lock with install-locked (hash checking)"
    assert ("ENV", "DATA_DIR=/data LOGDIR=/results PYTHON=python") in steps


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
    pins = images.read_pins(lock)
    for line in (directory / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
            assert match, f"{rel}/requirements.txt: {line} is not an exact pin"
            assert pins.get(images.canonical(match.group(1))) == match.group(2), \
                f"{rel}/requirements.lock disagrees with requirements.txt on {line}: invoke lock {name}"


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


def test_base_images_take_base_image_and_name_no_latest_tag():
    for flavour in images.FLAVOURS:
        steps = instructions(DOCKER_DIR / "base" / f"{flavour}.Dockerfile")
        assert steps[0] == ("ARG", f"BASE_IMAGE={images.DEFAULT_BASE_IMAGES[flavour]}")
        assert steps[1] == ("FROM", "${BASE_IMAGE}")
        assert ("RUN", "sh /opt/suite-setup/setup.sh && rm -rf /opt/suite-setup") in steps
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


def test_docker_folder_does_not_shadow_the_sdk():
    import docker

    assert not (DOCKER_DIR / "__init__.py").exists(), "docker/ must not be a package: it would shadow the SDK"
    assert Path(docker.__file__).resolve().parent != DOCKER_DIR and hasattr(docker, "from_env")


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


def test_containers_run_offline_read_only_and_unprivileged(tmp_path):
    options = images.container_options(tmp_path / "data", tmp_path / "results", gpus=None)
    assert options["network_mode"] == "none" and options["read_only"] is True
    assert options["volumes"][str(tmp_path / "data")] == {"bind": "/data", "mode": "ro"}
    assert options["volumes"][str(tmp_path / "results")] == {"bind": "/results", "mode": "rw"}
    assert options["user"] != "0:0" and options["cap_drop"] == ["ALL"]
    assert options["device_requests"] is None
    (all_gpus,) = images.device_requests("all")
    assert all_gpus.count == -1 and all_gpus.capabilities == [["gpu"]]
    (two,) = images.device_requests("0,1")
    assert two.device_ids == ["0", "1"]


def test_no_engine_is_one_sentence(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    proc = subprocess.run([sys.executable, "-m", "invoke", "run", "nanogpt", "--docker", "--smoke"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    message = proc.stderr.strip()
    assert message.startswith("error: no Docker engine is reachable at unix://") and "\n" not in message, message


# --- end to end -----------------------------------------------------------------------------------------------------
def _skip_or_fail(reason: str):
    if os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(f"REQUIRE_DOCKER=1 but the container test cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine():
    try:
        return images.client()
    except images.DockerError as error:
        _skip_or_fail(str(error))


@pytest.fixture(scope="module")
def nanogpt_image(engine):
    content = images.files_hash(images.workload_context(Path(benchmark.load("nanogpt")["directory"])))
    image = images._newest(engine, "org.mlperf-teach.workload=nanogpt", "org.mlperf-teach.flavour=cpu",
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

    result = images.run("nanogpt", seed=3, smoke=True, data_dir=container_data, out_root=tmp_path / "results")
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
    pins = images.read_pins(Path(benchmark.load("nanogpt")["directory"]) / "requirements.lock")
    assert {images.canonical(k): v for k, v in record["packages"]["versions"].items() if k != "pip"} == pins
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert record["git"]["commit"] == head.stdout.strip(), "the host's commit reaches provenance"

    system = json.loads((tmp_path / "results/reference/systems/docker_cpu.json").read_text())
    assert schema.load("system_desc").error(system) is None
    run_record = json.loads((tmp_path / "results-logs/docker_cpu/nanogpt/result_0.json").read_text())
    assert run_record["exit_code"] == 0 and run_record["network"] == "none"
    assert "RESULT,nanogpt,3," in result.output_file.read_text()


@pytest.mark.docker
def test_container_is_offline_non_root_and_data_read_only(engine, nanogpt_image, container_data, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o777)
    probe = ("id -u; touch /data/x 2>/dev/null && echo data-writable || echo data-read-only; "
             "touch /opt/x 2>/dev/null && echo root-writable || echo root-read-only; "
             "touch /results/x && echo results-writable; ls /sys/class/net | tr '\\n' ' '; echo; "
             "python -c 'import socket; socket.create_connection((\"pypi.org\", 443), 3)' 2>/dev/null "
             "&& echo network || echo no-network")
    output = engine.containers.run(nanogpt_image.id, entrypoint=["sh", "-c", probe], command=[], remove=True,
                                   **images.container_options(container_data, results)).decode()
    uid, data, root, written, interfaces, network = output.strip().splitlines()
    assert int(uid) != 0
    assert (data, root, written, network) == ("data-read-only", "root-read-only", "results-writable", "no-network")
    assert interfaces.split() == ["lo"], shlex.quote(interfaces)
