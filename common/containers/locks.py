"""Locked requirements: what a workload pins (requirements.txt, which includes the harness's shared
common/requirements.txt), the hash-locked closure made from it (requirements.lock, `invoke lock`), and the
host-side wheel cache that image builds install that closure from.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from common import benchmark
from common.containers.engine import NAMESPACE, ROOT, DockerError, log

# Every lock is compiled for what the base images run: CPython 3.11 on Linux x86_64 (glibc >= 2.28).
LOCK_PYTHON, LOCK_PLATFORM = "3.11", "x86_64-manylinux_2_28"
WHEEL_PLATFORMS = ([f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)]
                   + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"])
INDEX_URL = "https://pypi.org/simple"
COMMON_REQUIREMENTS = ROOT / "common" / "requirements.txt"   # the harness's own pins, included by every workload
WHEEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / NAMESPACE / "wheels"
# Fixed, because the wheel server's URL is a build argument and so part of the pip layer's cache key.
WHEEL_PORT = 38123


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


def requirement_pins(requirements: Path, _seen: frozenset = frozenset()) -> dict[str, str]:
    """{canonical name: version} of a requirements file's exact pins, following `-r <file>` includes (relative to
    the including file, as pip and uv read them). Anything else than `name==version` or `-r` is a DockerError."""
    requirements = Path(requirements).resolve()
    if requirements in _seen:
        raise DockerError(f"{requirements} includes itself")
    pins: dict[str, str] = {}
    for number, raw in enumerate(requirements.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        include = re.fullmatch(r"(?:-r|--requirement)\s*=?\s*(\S+)", line)
        pin = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if include:
            found = requirement_pins(requirements.parent / include.group(1), _seen | {requirements})
        elif pin:
            found = {canonical(pin.group(1)): pin.group(2)}
        else:
            raise DockerError(f"{requirements}:{number}: `{line}` is neither an exact pin (name==version) nor -r")
        for name, version in found.items():
            if pins.get(name, version) != version:
                raise DockerError(f"{requirements}: {name} is pinned to both {pins[name]} and {version}")
            pins[name] = version
    return pins


def compile_locks(name: str, upgrade: bool = False, index_url: str | None = None) -> list[Path]:
    """uv pip compile --generate-hashes: requirements.txt -> requirements.lock (and requirements-cuda.txt ->
    requirements-cuda.lock where a workload has one), for CPython 3.11 on manylinux x86_64. uv follows the
    `-r ../../common/requirements.txt` include, so the lock holds the harness's pins too."""
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
        requirement_pins(source)  # exact pins and readable includes, or a one-sentence error before uv runs
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
