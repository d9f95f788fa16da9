"""Docker images of the workloads, driven through the Docker SDK by tasks.py (`invoke build`, `invoke run --docker`,
`invoke lock`, `invoke clean`); docker/README.md explains the design and how course staff pin and verify.

    base      docker/base/<flavour>.Dockerfile on BASE_IMAGE         mlperf-teach/base:<flavour>-<hash>
    workload  <suite>/<workload>/Dockerfile on that base              mlperf-teach/<workload>:<flavour>-<hash>

A tag is a content hash: of every file the build sends (Dockerfile, lock, common/, the workload's directory) and of
the image it builds on, so `build` with nothing changed finds its tag and builds nothing. The lock installs with
hash checking, by default from a host-side wheel cache that the host's pip fills (its index, CA bundle and proxy)
and this module serves on 127.0.0.1 to the build, so the build itself needs no index, CA or proxy.

Loaded by path (tasks.py, tests): docker/ must never become a package, or it would shadow the Docker SDK, which
is imported as `docker` too.
"""
from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import benchmark, fetch, provenance  # noqa: E402

NAMESPACE = "mlperf-teach"
LABEL = "org.mlperf-teach"
FLAVOURS = ("cpu", "cuda")
DEFAULT_BASE_IMAGES = {"cpu": "python:3.11-slim-bookworm", "cuda": "nvidia/cuda:13.0.2-base-ubuntu22.04"}
OFFLINE_BASE_IMAGE = f"{NAMESPACE}/bookworm-offline:py3.11"   # docker/offline_base.sh's default tag
BENCH_UID = 10001                                              # the image's user `bench` (docker/base/setup.sh)

# Every lock is compiled for what the base images run: CPython 3.11 on Linux x86_64 (glibc >= 2.28).
LOCK_PYTHON, LOCK_PLATFORM = "3.11", "x86_64-manylinux_2_28"
WHEEL_PLATFORMS = ([f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)]
                   + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"])
INDEX_URL = "https://pypi.org/simple"
WHEEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / NAMESPACE / "wheels"
# Fixed, because the wheel server's URL is a build argument and so part of the pip layer's cache key.
WHEEL_PORT = 38123
# Docker's predefined build arguments: handed to the build, kept out of the cache key and the image history.
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY", "ALL_PROXY",
              "http_proxy", "https_proxy", "no_proxy", "ftp_proxy", "all_proxy")
# Host variables a containerised run passes on (the workload contract's own knobs).
PASSED_ENV = ("SUBMISSION_ORG", "SUBMISSION_PLATFORM", "SUBMISSION_DIVISION", "SUBMISSION_STATUS",
              "OMP_NUM_THREADS", "DEVICE")


class DockerError(Exception):
    """A problem the user has to fix; the message is one sentence."""


def log(message: str = "") -> None:
    print(message, flush=True)


# --- engine ---------------------------------------------------------------------------------------------------------
def client():
    """The Docker engine named by the environment (DOCKER_HOST, else the local socket), or DockerError."""
    import docker

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        engine = docker.from_env(timeout=3600)  # a large layer commits for minutes without output
        engine.ping()
        return engine
    except Exception as error:  # DockerException, requests' ConnectionError, OSError: all mean "no engine"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise DockerError(f"no Docker engine is reachable at {where} ({reason}); start one (dockerd, Docker "
                          "Desktop) or run without --docker") from None


def find_image(engine, reference: str):
    import docker

    try:
        return engine.images.get(reference)
    except docker.errors.ImageNotFound:
        return None


# --- locks ----------------------------------------------------------------------------------------------------------
def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path(directory: Path, flavour: str) -> Path:
    """requirements-<flavour>.lock where a flavour needs its own, else requirements.lock (both flavours)."""
    specific = Path(directory) / f"requirements-{flavour}.lock"
    return specific if specific.is_file() else Path(directory) / "requirements.lock"


def read_pins(lock: Path) -> dict[str, str]:
    """{canonical name: version} of a lock's `name==version` lines."""
    pins = {}
    for line in Path(lock).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def compile_locks(name: str, upgrade: bool = False, index_url: str | None = None) -> list[Path]:
    """uv pip compile --generate-hashes: requirements.txt -> requirements.lock (and requirements-cuda.txt ->
    requirements-cuda.lock where a workload has one), for CPython 3.11 on manylinux x86_64."""
    directory = Path(benchmark.load(name)["directory"])
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    uv = shutil.which("uv", path=search)
    if uv is None:
        raise DockerError("uv is not installed: `pip install uv` into the project's virtualenv (it writes the locks)")
    env = dict(os.environ)
    for variable in ("PIP_CERT", "REQUESTS_CA_BUNDLE"):  # uv reads a custom CA bundle from SSL_CERT_FILE only
        if env.get(variable) and not env.get("SSL_CERT_FILE"):
            env["SSL_CERT_FILE"] = env[variable]
    written = []
    for source in sorted(directory.glob("requirements*.txt")):
        target = source.with_suffix(".lock")
        command = [uv, "pip", "compile", "--quiet", "--no-config", "--generate-hashes",
                   "--python-version", LOCK_PYTHON, "--python-platform", LOCK_PLATFORM,
                   "--index-url", index_url or INDEX_URL, "--no-emit-index-url",
                   "--custom-compile-command", f"invoke lock {name}", "--output-file", target.name, source.name]
        if upgrade:
            command.append("--upgrade")
        if subprocess.run(command, cwd=directory, env=env).returncode != 0:
            raise DockerError(f"uv could not lock {source.relative_to(ROOT)} (see its output above)")
        written.append(target)
    if not written:
        raise DockerError(f"{directory.relative_to(ROOT)} has no requirements.txt to lock")
    return written


# --- build contexts and content hashes ------------------------------------------------------------------------------
def _files(directory: Path) -> list[tuple[str, Path]]:
    """(name in the build context, path) of every file under directory, as provenance.tree_hash sees them."""
    found = []
    for path in sorted(Path(directory).rglob("*")):
        rel = path.relative_to(directory)
        if path.is_file() and not provenance.SKIP_DIRS.intersection(rel.parts) and path.suffix != ".pyc":
            found.append((path.relative_to(ROOT).as_posix(), path))
    return found


def base_context(flavour: str) -> list[tuple[str, Path]]:
    return [(name, path) for name, path in _files(ROOT / "docker" / "base")
            if name.endswith(".sh") or name.endswith(f"/{flavour}.Dockerfile")]


def workload_context(directory: Path) -> list[tuple[str, Path]]:
    """What a workload image is built from: its directory (Dockerfile, locks, code), common/, docker/build-ca/."""
    return _files(Path(directory)) + _files(ROOT / "common") + _files(ROOT / "docker" / "build-ca")


def files_hash(files: list[tuple[str, Path]]) -> str:
    """sha256 over (name, executable bit, content sha256) of the context's files, in order."""
    digest = hashlib.sha256()
    for name, path in files:
        executable = os.access(path, os.X_OK)
        digest.update(f"{name}\0{int(executable)}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def image_tag(repository: str, flavour: str, files_sha256: str, parent_id: str) -> str:
    digest = hashlib.sha256(f"{files_sha256}\n{parent_id}\n".encode()).hexdigest()
    return f"{NAMESPACE}/{repository}:{flavour}-{digest[:16]}"


def context_tar(files: list[tuple[str, Path]], extra: dict[str, bytes] | None = None) -> io.BytesIO:
    """The build context as a deterministic tar (fixed owner and mtime), in memory: these contexts are kilobytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        entries = [(name, path.read_bytes(), os.access(path, os.X_OK)) for name, path in files]
        entries += [(name, data, False) for name, data in (extra or {}).items()]
        for name, data, executable in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755 if executable else 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


# --- host-side wheel cache ------------------------------------------------------------------------------------------
def cached_wheels(directory: Path = WHEEL_CACHE) -> set[tuple[str, str]]:
    return {(canonical(p.name.split("-")[0]), p.name.split("-")[1]) for p in Path(directory).glob("*.whl")}


def fill_wheel_cache(lock: Path, directory: Path = WHEEL_CACHE) -> None:
    """Download the lock's wheels for the images' platform with the host's pip (its index, CA bundle, proxy),
    checking every hash; skipped when every pinned version is already there (the build checks hashes again)."""
    pins = read_pins(lock)
    missing = sorted(n for n, v in pins.items() if (n, v) not in cached_wheels(directory))
    if not missing:
        log(f"wheel cache {directory}: all {len(pins)} locked wheels present")
        return
    log(f"wheel cache {directory}: downloading {len(missing)} of {len(pins)} locked wheels with the host's pip")
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--require-hashes", "--only-binary=:all:", "--no-deps",
               "--progress-bar", "off", "--python-version", LOCK_PYTHON, "--implementation", "cp", "--abi", "cp311",
               *[arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)],
               "--dest", str(directory), "--requirement", str(lock)]
    if subprocess.run(command).returncode != 0:
        raise DockerError(f"pip could not download the wheels of {lock.relative_to(ROOT)} (see its output above)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def wheel_server(directory: Path = WHEEL_CACHE):
    """Serve the wheel cache on 127.0.0.1 for the duration of a build (which then runs with host networking)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", WHEEL_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        log(f"port {WHEEL_PORT} is busy: serving wheels on port {server.server_address[1]} (the pip layer rebuilds)")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# --- building -------------------------------------------------------------------------------------------------------
@dataclass
class Built:
    tag: str
    image: object
    built: bool
    seconds: float = 0.0


def _stream_build(engine, files, dockerfile, tag, buildargs, labels, network_mode=None, no_cache=False,
                  extra=None) -> None:
    stream = engine.api.build(fileobj=context_tar(files, extra), custom_context=True, dockerfile=dockerfile, tag=tag,
                              buildargs=buildargs, labels=labels, network_mode=network_mode, nocache=no_cache,
                              rm=True, forcerm=True, pull=False, decode=True)
    for chunk in stream:
        if "stream" in chunk:
            sys.stdout.write(chunk["stream"])
            sys.stdout.flush()
        elif "error" in chunk:
            raise DockerError(f"building {tag} failed: {chunk['error'].strip()}")


def base_image(engine, flavour: str, source: str | None = None) -> Built:
    """The suite's base image for a flavour on source (default: the official image), built if missing."""
    if flavour not in FLAVOURS:
        raise DockerError(f"unknown flavour '{flavour}' (known: {', '.join(FLAVOURS)})")
    source = source or DEFAULT_BASE_IMAGES[flavour]
    parent = find_image(engine, source)
    if parent is None:
        log(f"pulling {source}")
        try:
            parent = engine.images.pull(source)
        except Exception as error:
            reason = (getattr(error, "explanation", None) or str(error)).splitlines()[0][:160]
            raise DockerError(f"base image {source} is not here and cannot be pulled ({reason}); without a registry, "
                              f"build the offline one (bash docker/offline_base.sh) and pass --base-image "
                              f"{OFFLINE_BASE_IMAGE}") from None
    files = base_context(flavour)
    tag = image_tag("base", flavour, files_hash(files), parent.id)
    image = find_image(engine, tag)
    if image is not None:
        return Built(tag, image, built=False)
    log(f"building base image {tag} on {source} ({parent.id[:19]})")
    start = time.monotonic()
    labels = {f"{LABEL}.base-image": source, f"{LABEL}.base-image-id": parent.id}  # role, flavour: Dockerfile
    _stream_build(engine, files, f"docker/base/{flavour}.Dockerfile", tag, {"BASE_IMAGE": source}, labels)
    return Built(tag, engine.images.get(tag), built=True, seconds=time.monotonic() - start)


def _ca_bundle(explicit: str | None) -> bytes | None:
    for candidate in (explicit, os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE"),
                      os.environ.get("SSL_CERT_FILE")):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise DockerError(f"CA bundle {path} does not exist")
            return path.read_bytes()
    return None


def build(name: str, flavour: str = "cpu", base: str | None = None, no_cache: bool = False,
          from_index: bool = False, ca_bundle: str | None = None, verify_after: bool = True) -> Built:
    """Build a workload's image unless its content tag exists already; streams the build output."""
    engine = client()
    directory = Path(benchmark.load(name)["directory"])
    rel = directory.relative_to(ROOT).as_posix()
    lock = lock_path(directory, flavour)
    for required in (directory / "Dockerfile", lock):
        if not required.is_file():
            hint = f"; run `invoke lock {name}`" if required == lock else ""
            raise DockerError(f"{required.relative_to(ROOT)} is missing{hint}")
    parent = base_image(engine, flavour, base)
    files = workload_context(directory)
    content = files_hash(files)
    tag = image_tag(name, flavour, content, parent.image.id)
    image = find_image(engine, tag)
    if image is not None and not no_cache:
        log(f"{tag} is up to date ({image.id[:19]}): nothing to build")
        return Built(tag, image, built=False)

    buildargs = {"BASE_IMAGE": parent.tag, "LOCK": lock.name}
    labels = {f"{LABEL}.role": "workload", f"{LABEL}.workload": name, f"{LABEL}.flavour": flavour,
              f"{LABEL}.files-sha256": content, f"{LABEL}.base-image": base or DEFAULT_BASE_IMAGES[flavour]}
    start = time.monotonic()
    if from_index:  # pip inside the build reaches the index: the host's CA bundle and proxies go in with it
        buildargs["PIP_INDEX_URL"] = os.environ.get("PIP_INDEX_URL") or INDEX_URL
        buildargs.update({k: os.environ[k] for k in PROXY_ARGS if os.environ.get(k)})
        ca = _ca_bundle(ca_bundle)
        extra = {"docker/build-ca/extra-ca.pem": ca} if ca else None
        log(f"building {tag} from {buildargs['PIP_INDEX_URL']}" + (" with an extra CA bundle" if ca else ""))
        _stream_build(engine, files, f"{rel}/Dockerfile", tag, buildargs, labels, no_cache=no_cache, extra=extra)
    else:
        fill_wheel_cache(lock)
        with wheel_server() as url:
            buildargs["WHEELS_URL"] = url
            log(f"building {tag} (wheels from {url})")
            _stream_build(engine, files, f"{rel}/Dockerfile", tag, buildargs, labels, network_mode="host",
                          no_cache=no_cache)
    image = engine.images.get(tag)
    seconds = time.monotonic() - start
    log(f"built {tag} ({image.id[:19]}, {image.attrs['Size'] / 1e9:.2f} GB) in {seconds:.0f} s")
    if verify_after:
        verify(tag, lock, engine)
    return Built(tag, image, built=True, seconds=seconds)


def installed_packages(engine, image) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    output = engine.containers.run(image, entrypoint=["python", "-c", code], command=[], network_mode="none",
                                   remove=True, stdout=True, stderr=False)
    return {canonical(k): v for k, v in json.loads(output).items()}


def verify(tag: str, lock: Path | None = None, engine=None) -> None:
    """The image's Python packages are exactly the lock's pins (pip itself aside), or DockerError."""
    engine = engine or client()
    image = find_image(engine, tag)
    if image is None:
        raise DockerError(f"no image {tag}")
    if lock is None:
        directory = Path(benchmark.load(image.labels[f"{LABEL}.workload"])["directory"])
        lock = lock_path(directory, image.labels[f"{LABEL}.flavour"])
    pins, installed = read_pins(lock), installed_packages(engine, image.id)
    problems = [f"{n}=={v} (image: {installed.get(n, 'missing')})" for n, v in sorted(pins.items())
                if installed.get(n) != v]
    problems += [f"{n}=={v} (not in the lock)" for n, v in sorted(installed.items()) if n not in pins and n != "pip"]
    if problems:
        raise DockerError(f"{tag} does not match {lock.relative_to(ROOT)}: {', '.join(problems)}")
    log(f"verified: the {len(pins)} packages in {tag} are exactly the pins of {lock.relative_to(ROOT)}")


def _newest(engine, *labels: str):
    found = engine.images.list(filters={"label": list(labels)})
    return max(found, key=lambda image: image.attrs["Created"], default=None)


def current_image(engine, name: str, flavour: str):
    """The workload's image for its current files, built now if there is none, on the base image its previous
    build used (so a site that builds on the offline base keeps doing so)."""
    content = files_hash(workload_context(Path(benchmark.load(name)["directory"])))
    image = _newest(engine, f"{LABEL}.workload={name}", f"{LABEL}.flavour={flavour}", f"{LABEL}.files-sha256={content}")
    if image is None:
        previous = _newest(engine, f"{LABEL}.workload={name}", f"{LABEL}.flavour={flavour}")
        base = previous.labels.get(f"{LABEL}.base-image") if previous is not None else None
        log(f"no {flavour} image of the current {name} files: building it" + (f" on {base}" if base else ""))
        image = build(name, flavour, base=base).image
    return image


# --- running --------------------------------------------------------------------------------------------------------
def device_requests(gpus: str | None):
    """--gpus all | <count> | <id>,<id>... as Docker device requests (NVIDIA Container Toolkit)."""
    import docker

    if not gpus:
        return None
    gpus = str(gpus).strip()
    if gpus == "all":
        return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if gpus.isdigit():
        return [docker.types.DeviceRequest(count=int(gpus), capabilities=[["gpu"]])]
    return [docker.types.DeviceRequest(device_ids=gpus.split(","), capabilities=[["gpu"]])]


def container_options(data_dir: Path, results_dir: Path, gpus: str | None = None) -> dict:
    """How every workload container runs: no network, read-only root and /data, /results writable, no privileges,
    as the invoking user (so the logs are theirs) or, for root, as the image's user `bench`."""
    uid = os.getuid()
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": "rw,exec,nosuid,size=2g"},
        "volumes": {str(data_dir): {"bind": "/data", "mode": "ro"},
                    str(results_dir): {"bind": "/results", "mode": "rw"}},
        "user": f"{uid}:{os.getgid()}" if uid != 0 else None,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "shm_size": "1g",
        "device_requests": device_requests(gpus),
        "labels": {f"{LABEL}.role": "run"},
    }


def _git_env() -> dict:
    """The checkout's commit for provenance (the image has no .git); set at run time, so it never changes a tag."""
    def git(*args):
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"GIT_COMMIT": commit, "GIT_DIRTY": "true" if dirty else "false"}


def _processors_per_node() -> int:
    try:
        ids = {line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("physical id")}
    except OSError:
        ids = set()
    return max(1, len(ids))


def _gpu_description(gpus: str | None) -> tuple[str, int]:
    if not gpus:
        return "N/A", 0
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=30, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "N/A", 0
    rows = [row.split(",", 1) for row in names if "," in row]
    if gpus not in ("all",) and not gpus.isdigit():
        rows = [r for r in rows if r[0].strip() in gpus.split(",")]
    elif gpus.isdigit():
        rows = rows[:int(gpus)]
    return (rows[0][1].strip() if rows else "N/A"), len(rows)


def system_description(path: Path, name: str, submitter: str, system: str, flavour: str, gpus: str | None,
                       tag: str) -> None:
    """A minimal <submitter>/systems/<system>.json (submission_checker/schemas/system_desc.schema.json), if absent."""
    if path.exists():
        return
    accelerator, count = _gpu_description(gpus)
    pins = read_pins(lock_path(Path(benchmark.load(name)["directory"]), flavour))
    description = {
        "submitter": submitter,
        "division": os.environ.get("SUBMISSION_DIVISION", "closed"),
        "status": os.environ.get("SUBMISSION_STATUS", "onprem"),
        "system_name": system,
        "number_of_nodes": 1,
        "host_processor_model_name": provenance.cpu_model(),
        "host_processors_per_node": _processors_per_node(),
        "host_processor_core_count": os.cpu_count(),
        "accelerator_model_name": accelerator,
        "accelerators_per_node": count,
        "framework": f"PyTorch {pins.get('torch', '?')} (Docker image {tag})",
        "operating_system": f"{flavour} container image, host {os.uname().sysname} {os.uname().release}",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(description, indent=2) + "\n")


@dataclass
class RunResult:
    exit_code: int
    result_file: Path
    output_file: Path
    image_id: str
    tag: str
    seconds: float


def run(name: str, seed: int = 1, smoke: bool = False, nproc: int = 1, gpus: str | None = None,
        data_dir: Path | None = None, out_root: Path | None = None) -> RunResult:
    """One run_and_time.sh in the workload's container. The MLPerf log lands where the submission checker reads it:
        <out_root>/<submitter>/results/<system>/<benchmark>/result_<i>.txt   (+ systems/<system>.json if absent)
    and the container's output and a record of the run in <out_root>-logs/<system>/<benchmark>/result_<i>.{log,json}.
    """
    engine = client()
    definition = benchmark.load(name, smoke=smoke)
    flavour = "cuda" if gpus else "cpu"
    data_dir = Path(data_dir or os.environ.get("DATA_DIR") or ROOT / "data").resolve()
    try:
        fetch.verify(definition, data_dir)
    except fetch.DatasetError as error:
        raise DockerError(f"dataset not ready: {error}") from None
    if os.getuid() == 0:  # the container runs as `bench` then, which reads the data as "other"
        private = [entry["path"] for entry in definition["dataset"]["files"]
                   if not (data_dir / entry["path"]).stat().st_mode & 0o004]
        if private:
            raise DockerError(f"{data_dir / private[0]} is readable by root only, so the container's user cannot "
                              f"read it: chmod -R a+rX {data_dir}")
    image = current_image(engine, name, flavour)
    tag = next(iter(image.tags), image.id)

    out_root = Path(out_root or ROOT / "results" / "docker").resolve()
    submitter = os.environ.get("SUBMISSION_ORG", "reference")
    system = re.sub(r"[^A-Za-z0-9._-]+", "_", os.environ.get("SUBMISSION_PLATFORM") or f"docker_{flavour}")
    bench_dir = out_root / submitter / "results" / system / name
    bench_dir.mkdir(parents=True, exist_ok=True)
    index = 0
    while (bench_dir / f"result_{index}.txt").exists():
        index += 1
    result_file = bench_dir / f"result_{index}.txt"
    logs_dir = out_root.parent / f"{out_root.name}-logs" / system / name
    logs_dir.mkdir(parents=True, exist_ok=True)
    output_file = logs_dir / f"result_{index}.log"
    system_description(out_root / submitter / "systems" / f"{system}.json", name, submitter, system, flavour, gpus,
                       tag)

    environment = {
        "DATA_DIR": "/data", "LOGDIR": "/results", "LOGFILE": f"/results/{result_file.name}",
        "SMOKE": "1" if smoke else "0", "NPROC": str(int(nproc)), "CONTAINER_IMAGE_ID": image.id,
        "HOME": "/tmp", "USER": getpass.getuser() if os.getuid() != 0 else "bench",
        **_git_env(), **{k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)},
    }
    options = container_options(data_dir, bench_dir, gpus)
    if os.getuid() == 0:  # root runs the container as `bench`: lend it the folder, take the files back afterwards
        os.chown(bench_dir, BENCH_UID, BENCH_UID)
    log(f"running {tag} ({image.id[:19]}) seed {seed}{' smoke' if smoke else ''}: --network none, "
        f"{data_dir} -> /data (read-only), {bench_dir} -> /results")
    start = time.monotonic()
    container = engine.containers.run(image.id, [str(int(seed))], detach=True, environment=environment, **options)
    try:
        with open(output_file, "w", encoding="utf-8") as output:
            for chunk in container.logs(stream=True, follow=True):
                text = chunk.decode("utf-8", errors="replace")
                sys.stdout.write(text)
                sys.stdout.flush()
                output.write(text)
        exit_code = container.wait()["StatusCode"]
    finally:
        container.remove(force=True)
        if os.getuid() == 0:
            for path in [bench_dir, *bench_dir.iterdir()]:
                os.chown(path, 0, 0)
    seconds = time.monotonic() - start
    record = {"workload": name, "seed": int(seed), "smoke": smoke, "nproc": int(nproc), "gpus": gpus, "image": tag,
              "image_id": image.id, "exit_code": exit_code, "seconds": round(seconds, 3),
              "result_file": str(result_file), "data_dir": str(data_dir), "network": "none",
              "user": options["user"] or "bench", "git": {k: v for k, v in environment.items() if k.startswith("GIT_")}}
    (logs_dir / f"result_{index}.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"container exited {exit_code} after {seconds:.1f} s; MLPerf log {result_file}; output {output_file}")
    return RunResult(exit_code, result_file, output_file, image.id, tag, seconds)


# --- cleaning -------------------------------------------------------------------------------------------------------
def clean(name: str | None = None, everything: bool = False) -> None:
    """Remove this suite's stopped run containers and its outdated workload images (built from files that have
    changed since), of one workload or all. everything: all its workload images; with no workload named, also
    the base images, the offline base and the host-side wheel cache."""
    import docker

    engine = client()
    for container in engine.containers.list(all=True, filters={"label": f"{LABEL}.role=run", "status": "exited"}):
        container.remove()
        log(f"removed container {container.short_id}")
    known, current = benchmark.workload_dirs(), {}

    def outdated(image) -> bool:
        workload = image.labels.get(f"{LABEL}.workload")
        if workload not in known:
            return True
        if workload not in current:
            current[workload] = files_hash(workload_context(known[workload]))
        return image.labels.get(f"{LABEL}.files-sha256") != current[workload]

    doomed = [image for image in engine.images.list(filters={"label": f"{LABEL}.role=workload"})
              if (name is None or image.labels.get(f"{LABEL}.workload") == name) and (everything or outdated(image))]
    if everything and name is None:
        doomed += engine.images.list(filters={"label": f"{LABEL}.role=base"})
        doomed += engine.images.list(filters={"label": f"{LABEL}.role=offline-base"})
    for image in doomed:
        for reference in image.tags or [image.id]:
            try:
                engine.images.remove(reference)
                log(f"removed {reference}")
            except docker.errors.APIError as error:
                log(f"kept {reference}: {error.explanation}")
    if not doomed:
        log("no images to remove" + ("" if everything else " (current images are kept; --everything removes them)"))
    if everything and name is None and WHEEL_CACHE.is_dir():
        shutil.rmtree(WHEEL_CACHE)
        log(f"removed the wheel cache {WHEEL_CACHE}")
