"""One timed run in a workload's container (`invoke run <workload> --docker`), written in the suite's one results
layout (common/results.py):

    <root>/<submitter>/systems/<system>.json                              written if absent
    <root>/<submitter>/results/<system>/<benchmark>/result_<i>.txt        the MLPerf log, next free i, never replaced
    <root>-logs/<submitter>/<system>/<benchmark>/result_<i>.log, .json    the container's output, a record of the run

<root> is common.results.default_root(smoke) (results/, results-smoke/ or $RESULTS_DIR) and <system> is
system_name("docker", "cpu" | "cuda"). The container never sees the results: it gets a fresh, empty per-run folder
at /results, and afterwards exactly its MLPerf log is copied into place (a regular file only, never through a
symbolic link, created exclusively) and the folder is removed.
"""
from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import benchmark, fetch, results
from common.containers.engine import BENCH_UID, LABEL, ROOT, DockerError, client, log
from common.containers.images import current_image
from common.containers.locks import lock_path, read_pins

# Host variables a containerised run passes on (the workload contract's own knobs).
PASSED_ENV = ("SUBMISSION_ORG", "SUBMISSION_PLATFORM", "SUBMISSION_DIVISION", "SUBMISSION_STATUS",
              "OMP_NUM_THREADS", "DEVICE")
RUN_LOG = "result.txt"  # the MLPerf log's name in the per-run folder, which the container sees as /results


class MissingLog(DockerError):
    """The container left no file where its MLPerf log belongs."""


def running_as_root() -> bool:
    """Root runs containers as the image's user `bench` (not as root); anyone else as themselves."""
    return os.getuid() == 0


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


def container_options(data_dir: Path, run_dir: Path, gpus: str | None = None) -> dict:
    """How every workload container runs: no network, read-only root and /data, only the fresh per-run folder
    writable (at /results), no privileges, as the invoking user or, for root, as the image's user `bench`."""
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": "rw,exec,nosuid,size=2g"},
        "volumes": {str(data_dir): {"bind": "/data", "mode": "ro"},
                    str(run_dir): {"bind": "/results", "mode": "rw"}},
        "user": None if running_as_root() else f"{os.getuid()}:{os.getgid()}",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "shm_size": "1g",
        "device_requests": device_requests(gpus),
        "labels": {f"{LABEL}.role": "run"},
    }


def git_env() -> dict:
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


def check_data(definition: dict, data_dir: Path) -> None:
    """The dataset is complete and verified, and readable by the container's user, or DockerError."""
    try:
        fetch.verify(definition, data_dir)
    except fetch.DatasetError as error:
        raise DockerError(f"dataset not ready: {error}") from None
    if running_as_root():  # the container runs as `bench` then, which reads the data as "other"
        private = [entry["path"] for entry in definition["dataset"]["files"]
                   if not (data_dir / entry["path"]).stat().st_mode & 0o004]
        if private:
            raise DockerError(f"{data_dir / private[0]} is readable by root only, so the container's user cannot "
                              f"read it: chmod -R a+rX {data_dir}")


def describe_system(name: str, submitter: str, system: str, flavour: str, gpus: str | None, tag: str) -> dict:
    pins = read_pins(lock_path(Path(benchmark.load(name)["directory"]), flavour))
    uname = os.uname()
    return results.system_description(submitter, system, results.gpu_description(gpus),
                                      f"PyTorch {pins.get('torch', '?')} (Docker image {tag})",
                                      f"{flavour} container image, host {uname.sysname} {uname.release}")


# --- the per-run folder ---------------------------------------------------------------------------------------------
def prepare_run_dir(parent: Path) -> Path:
    """A fresh, empty, private folder for one container to write in (mounted at /results); for root, lent to the
    image's user `bench`, which the container runs as. Only this folder, which nothing else is in, is chowned."""
    run_dir = Path(tempfile.mkdtemp(prefix=".run-", dir=parent))
    if running_as_root():
        os.lchown(run_dir, BENCH_UID, BENCH_UID)
    return run_dir


def place_log(source: Path, bench_dir: Path) -> Path:
    """Copy the MLPerf log the container wrote (source, in its per-run folder) into bench_dir as the next free
    result_<i>.txt. source must be a regular file: a symbolic link (followed nowhere), a folder or anything else the
    container made is refused. The copy is created exclusively (O_EXCL), so no earlier result is ever replaced,
    and it belongs to whoever runs this (root's copy is root's), so nothing the container made is chowned."""
    where = f"/results/{source.name}"
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        raise MissingLog(f"the container wrote no MLPerf log at {where}, so no result was recorded") from None
    if stat.S_ISLNK(info.st_mode):
        raise DockerError(f"the container left a symbolic link at {where} instead of its MLPerf log, so no result "
                          "was recorded")
    if not stat.S_ISREG(info.st_mode):
        raise DockerError(f"the container left something other than a regular file at {where} (its MLPerf log), "
                          "so no result was recorded")
    reader = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        opened = os.fstat(reader)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(opened.st_mode):
            raise DockerError(f"{where} changed while its MLPerf log was being recorded, so no result was recorded")
        for _ in range(1000):  # another run may take the index between choosing and creating it
            target = results.next_result_file(bench_dir)
            try:
                writer = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                continue
            try:
                with os.fdopen(writer, "wb") as out, os.fdopen(os.dup(reader), "rb") as src:
                    shutil.copyfileobj(src, out)
                    out.flush()
                    os.fsync(out.fileno())
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            return target
        raise DockerError(f"no free result index in {bench_dir} after 1000 tries")
    finally:
        os.close(reader)


def remove_run_dir(run_dir: Path) -> None:
    """Remove the per-run folder and whatever the container left in it, following no symbolic link (shutil.rmtree
    never does). The container has exited and been removed by then, so nothing changes the folder meanwhile."""
    shutil.rmtree(run_dir, ignore_errors=True)
    if os.path.lexists(run_dir):  # a container running as the invoking user left folders it made read-only
        with contextlib.suppress(OSError):
            os.chmod(run_dir, 0o700)
        for parent, folders, _ in os.walk(run_dir):  # top-down: each folder is opened up before it is entered
            for folder in folders:
                path = os.path.join(parent, folder)
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(os.lstat(path).st_mode):  # a real folder, not a link to one
                        os.chmod(path, 0o700)
        shutil.rmtree(run_dir, ignore_errors=True)
    if os.path.lexists(run_dir):
        log(f"warning: could not remove the per-run folder {run_dir}; remove it by hand")


# --- running --------------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    exit_code: int
    result_file: Path | None    # None: the container failed before it wrote a log
    output_file: Path
    record_file: Path
    image_id: str
    tag: str
    seconds: float


def run(name: str, seed: int = 1, smoke: bool = False, nproc: int = 1, gpus: str | None = None,
        data_dir: Path | None = None, out_root: Path | None = None) -> RunResult:
    """One run_and_time.sh in the workload's container; its MLPerf log lands in the results layout (see above)."""
    engine = client()
    definition = benchmark.load(name, smoke=smoke)
    flavour = "cuda" if gpus else "cpu"
    data_dir = Path(data_dir or os.environ.get("DATA_DIR") or ROOT / "data").resolve()
    check_data(definition, data_dir)
    image = current_image(engine, name, flavour)
    tag = next(iter(image.tags), image.id)

    root = Path(out_root or results.default_root(smoke)).resolve()
    submitter, system = results.submitter(), results.system_name("docker", flavour)
    bench_dir = results.benchmark_dir(root, name, system, submitter)
    bench_dir.mkdir(parents=True, exist_ok=True)
    results.ensure_system_description(root, submitter, system,
                                      describe_system(name, submitter, system, flavour, gpus, tag))
    logs_dir = root.parent / f"{root.name}-logs" / submitter / system / name
    logs_dir.mkdir(parents=True, exist_ok=True)

    environment = {
        "DATA_DIR": "/data", "RESULTS_DIR": "/results", "LOGFILE": f"/results/{RUN_LOG}",
        "SMOKE": "1" if smoke else "0", "NPROC": str(int(nproc)), "CONTAINER_IMAGE_ID": image.id,
        "HOME": "/tmp", "USER": "bench" if running_as_root() else getpass.getuser(),
        **git_env(), **{k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)},
    }
    run_dir = prepare_run_dir(logs_dir)
    output_file = run_dir.with_name(run_dir.name + ".log")
    options = container_options(data_dir, run_dir, gpus)
    log(f"running {tag} ({image.id[:19]}) seed {seed}{' smoke' if smoke else ''}: --network none, "
        f"{data_dir} -> /data (read-only), a fresh {run_dir} -> /results")
    start = time.monotonic()
    try:
        container = engine.containers.run(image.id, [str(int(seed))], detach=True, environment=environment,
                                          **options)
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
        seconds = time.monotonic() - start
        try:
            result_file, problem = place_log(run_dir / RUN_LOG, bench_dir), None
        except DockerError as error:
            result_file, problem = None, error
    finally:
        remove_run_dir(run_dir)

    stem = result_file.stem if result_file else time.strftime("unrecorded_%Y%m%dT%H%M%S")
    os.replace(output_file, logs_dir / f"{stem}.log")
    output_file = logs_dir / f"{stem}.log"
    record = {"workload": name, "seed": int(seed), "smoke": smoke, "nproc": int(nproc), "gpus": gpus, "image": tag,
              "image_id": image.id, "exit_code": exit_code, "seconds": round(seconds, 3),
              "result_file": str(result_file) if result_file else None, "problem": str(problem) if problem else None,
              "data_dir": str(data_dir), "network": "none", "user": options["user"] or "bench",
              "git": {k: v for k, v in environment.items() if k.startswith("GIT_")}}
    record_file = logs_dir / f"{stem}.json"
    record_file.write_text(json.dumps(record, indent=2) + "\n")
    # A failed container that wrote no log is a failed run (the caller reports its exit code); anything else the
    # container left instead of its log, or no log after a successful exit, is refused.
    if problem is not None and (exit_code == 0 or not isinstance(problem, MissingLog)):
        raise DockerError(f"{str(problem).rstrip('.')} (container exit code {exit_code}; output in {output_file})")
    log(f"container exited {exit_code} after {seconds:.1f} s; "
        + (f"MLPerf log {result_file}" if result_file else "no MLPerf log") + f"; output {output_file}")
    return RunResult(exit_code, result_file, output_file, record_file, image.id, tag, seconds)
