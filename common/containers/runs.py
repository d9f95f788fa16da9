"""Timed runs in a workload's container (`invoke run <workload> --docker`), written in the suite's one results
layout (common/results.py), the same as a bare-metal run's:

    <root>/<submitter>/systems/<system>.json                              written if absent
    <root>/<submitter>/results/<system>/<benchmark>/result_<i>.txt        training: the MLPerf log, next free i
    <root>-logs/<submitter>/<system>/<benchmark>/result_<i>.log, .json    the container's output, a record of the run

An inference workload runs one container per variant (VARIANT=<variant>), each into its variant's folder:

    <root>/<submitter>/results/<system>/<benchmark>/<variant>/result_<i>.txt      the MLPerf log
    <root>/<submitter>/results/<system>/<benchmark>/<variant>/loadgen_<i>/        LoadGen's files, the same i
    <root>-logs/<submitter>/<system>/<benchmark>/<variant>/result_<i>.log, .json

<root> is common.results.default_root(smoke) (results/, results-smoke/ or $RESULTS_DIR) and <system> is
system_name("docker", "cpu" | "cuda"). The container never sees the results: it gets a fresh, empty per-run folder
at /results, and afterwards exactly its MLPerf log (and, for inference, LoadGen's expected files) is copied into
place: regular files only, never through a symbolic link, created exclusively, never replacing anything; then the
folder is removed.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import benchmark, fetch, loadgen, results
from common.containers.engine import BENCH_UID, LABEL, ROOT, DockerError, client, log
from common.containers.images import current_image
from common.containers.locks import lock_path, read_pins

# Host variables a containerised run passes on (the workload contract's own knobs).
PASSED_ENV = ("SUBMISSION_ORG", "SUBMISSION_PLATFORM", "SUBMISSION_DIVISION", "SUBMISSION_STATUS",
              "OMP_NUM_THREADS", "DEVICE")
RUN_LOG = "result.txt"  # the MLPerf log's name in the per-run folder, which the container sees as /results
# Inference: the log is named result_0.txt so that the harness keeps LoadGen's files in loadgen_0/ beside it
# (common.inference.loadgen_dir_for; not imported here, it imports torch; a test checks the two agree).
VARIANT_LOG, VARIANT_LOADGEN = "result_0.txt", "loadgen_0"
# What a run's loadgen_<i>/ may hold: the files the checker requires (submission_checker/inference.py) and the
# empty answers file LoadGen also writes in the performance run. Anything else the container left is refused.
LOADGEN_REQUIRED = {"accuracy": loadgen.ACCURACY_FILES, "performance": loadgen.PERFORMANCE_FILES}
LOADGEN_ALLOWED = {"accuracy": set(loadgen.ACCURACY_FILES),
                   "performance": {*loadgen.PERFORMANCE_FILES, loadgen.ACCURACY}}


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
    """The dataset is complete and verified, the checkpoint an inference workload serves is there, and all of it is
    readable by the container's user, or DockerError."""
    try:
        fetch.verify(definition, data_dir)
    except fetch.DatasetError as error:
        raise DockerError(f"dataset not ready: {error}") from None
    needed = [entry["path"] for entry in definition["dataset"]["files"]] + checkpoint_files(definition, data_dir)
    if running_as_root():  # the container runs as `bench` then, which reads the data as "other"
        private = [path for path in needed if not (data_dir / path).stat().st_mode & 0o004]
        if private:
            raise DockerError(f"{data_dir / private[0]} is readable by root only, so the container's user cannot "
                              f"read it: chmod -R a+rX {data_dir}")


def checkpoint_files(definition: dict, data_dir: Path) -> list[str]:
    """The checkpoint an inference definition serves (checkpoint.file, smoke's when smoke) and its lineage record
    <file>.json, relative to data_dir, where the container finds them (at /data; the host's CHECKPOINT is not
    passed on); DockerError when either is missing. A training definition serves none."""
    if definition.get("model", {}).get("dir"):  # weights prepared by the workload's download_dataset.sh
        records = sorted(p.relative_to(data_dir).as_posix() for p in (data_dir / definition["model"]["dir"]).glob(
            "*/weights.json"))
        if not records:
            raise DockerError(f"{definition['name']} serves prepared weights, but {data_dir / definition['model']['dir']} "
                              f"holds none: `invoke download {definition['name']}` prepares them")
        return records
    if not definition.get("checkpoint"):
        return []
    checkpoint = definition["checkpoint"]["file"]
    files = [checkpoint, f"{checkpoint}.json"]
    missing = [path for path in files if not (data_dir / path).is_file()]
    if missing:
        raise DockerError(f"{definition['name']} serves a checkpoint, but {data_dir / missing[0]} is missing; "
                          f"{checkpoint_hint(definition, data_dir)}")
    return files


def checkpoint_hint(definition: dict, data_dir: Path) -> str:
    """How to make the checkpoint, or its record, on the host: the workload's download_dataset.sh does both (it
    trains the reference checkpoint when there is none and records the sha256 of one that is there)."""
    if not definition["smoke"]:
        where = "" if data_dir == (ROOT / "data").resolve() else f" --data-dir {data_dir}"
        return f"`invoke download {definition['name']}{where}` makes it (training the reference checkpoint if needed)"
    script = (Path(definition["directory"]) / "download_dataset.sh").relative_to(ROOT)
    return f"`SMOKE=1 DATA_DIR={data_dir} {script}` makes it (`invoke download` makes only the full checkpoint)"


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


def open_regular_file(source: Path, what: str, where: str) -> int:
    """A read descriptor of `what` (e.g. "MLPerf log") that the container left at source in its per-run folder
    (`where` is the container's name for it: /results/...). source must be a regular file: a symbolic link
    (followed nowhere), a folder or anything else is refused, and the file opened (without following a link)
    must be the one lstat saw."""
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        raise MissingLog(f"the container wrote no {what} at {where}, so no result was recorded") from None
    if stat.S_ISLNK(info.st_mode):
        raise DockerError(f"the container left a symbolic link at {where} instead of its {what}, so no result "
                          "was recorded")
    if not stat.S_ISREG(info.st_mode):
        raise DockerError(f"the container left something other than a regular file at {where} (its {what}), "
                          "so no result was recorded")
    reader = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    opened = os.fstat(reader)
    if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(opened.st_mode):
        os.close(reader)
        raise DockerError(f"{where} changed while its {what} was being recorded, so no result was recorded")
    return reader


def copy_exclusively(reader: int, target: Path) -> None:
    """Copy the open file into target, created exclusively (O_EXCL: FileExistsError when taken, nothing replaced)
    and never through a link; the copy belongs to whoever runs this (root's copy is root's), so nothing the
    container made is chowned. A failed copy leaves no target behind."""
    writer = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.lseek(reader, 0, os.SEEK_SET)
        with os.fdopen(writer, "wb") as out, os.fdopen(os.dup(reader), "rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def place_log(source: Path, bench_dir: Path, next_file: Callable[[Path], Path] | None = None) -> Path:
    """Copy the MLPerf log the container wrote (source, in its per-run folder) into bench_dir as the next free
    result_<i>.txt (next_file(bench_dir), default common.results.next_result_file), created exclusively, so no
    earlier result is ever replaced; source must be a regular file (open_regular_file)."""
    reader = open_regular_file(source, "MLPerf log", f"/results/{source.name}")
    try:
        for _ in range(1000):  # another run may take the index between choosing and creating it
            target = (next_file or results.next_result_file)(bench_dir)
            try:
                copy_exclusively(reader, target)
            except FileExistsError:
                continue
            return target
        raise DockerError(f"no free result index in {bench_dir} after 1000 tries")
    finally:
        os.close(reader)


# --- an inference run's LoadGen files -------------------------------------------------------------------------------
def loadgen_dir_of(result_file: Path) -> Path:
    """loadgen_<i>/ beside result_<i>.txt, as common.inference.loadgen_dir_for names it."""
    return result_file.with_name("loadgen_" + result_file.stem[len("result_"):])


def next_inference_result(bench_dir: Path) -> Path:
    """result_<i>.txt with the lowest index whose log and LoadGen folder are both free."""
    index = 0
    while any(os.path.lexists(path) for path in (bench_dir / f"result_{index}.txt", bench_dir / f"loadgen_{index}")):
        index += 1
    return bench_dir / f"result_{index}.txt"


def entry_kind(path: Path) -> str | None:
    """What lstat sees at path (a link is never followed): "folder", "file", "symbolic link", "other", or None."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "symbolic link"
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def refuse_entry(where: str, kind: str | None, expected: str) -> DockerError:
    found = {"symbolic link": "a symbolic link", "other": "something other than a file or folder"}.get(kind)
    found = found or f"an unexpected {kind}"
    return DockerError(f"the container left {found} at {where} among LoadGen's files (expected {expected}), so "
                       "no result was recorded")


def loadgen_files(source: Path, complete: bool) -> list[str]:
    """The names (relative to source, the container's /results/loadgen_0) of LoadGen's files it left: only the
    expected subfolders and files (LOADGEN_ALLOWED), each a real folder or regular file, else DockerError. With
    `complete` (the run exited 0) every file the checker requires must be there; a failed run may have left some
    or none, and what it left is kept, as a bare-metal run keeps it."""
    where = f"/results/{source.name}"
    kind = entry_kind(source)
    if kind is None and not complete:
        return []
    if kind is None:
        raise DockerError(f"the container exited 0 but wrote no LoadGen files at {where}, so no result was "
                          "recorded")
    if kind != "folder":
        raise refuse_entry(where, kind, "a folder")
    names = []
    for part in sorted(os.listdir(source)):
        kind = entry_kind(source / part)
        if kind != "folder" or part not in LOADGEN_ALLOWED:
            expected = "a folder" if part in LOADGEN_ALLOWED else "only the folders accuracy/ and performance/"
            raise refuse_entry(f"{where}/{part}", kind, expected)
        for name in sorted(os.listdir(source / part)):
            kind = entry_kind(source / part / name)
            if kind != "file" or name not in LOADGEN_ALLOWED[part]:
                allowed = LOADGEN_ALLOWED[part]
                expected = ("a regular file" if name in allowed
                            else f"only {', '.join(sorted(allowed))} in {part}/")
                raise refuse_entry(f"{where}/{part}/{name}", kind, expected)
            names.append(f"{part}/{name}")
    missing = [f"{part}/{name}" for part, files in LOADGEN_REQUIRED.items() for name in files
               if f"{part}/{name}" not in names]
    if complete and missing:
        raise DockerError(f"the container exited 0 but left no {where}/{missing[0]} (LoadGen's files are "
                          "incomplete), so no result was recorded")
    return names


def copy_loadgen_files(source: Path, names: list[str], target: Path) -> None:
    """Copy the checked names from source into target (a new, empty folder of ours), each file opened as the log
    is (open_regular_file) and created exclusively."""
    for name in names:
        destination = target / name
        if not destination.parent.is_dir():
            os.mkdir(destination.parent)
        reader = open_regular_file(source / name, "LoadGen file", f"/results/{source.name}/{name}")
        try:
            copy_exclusively(reader, destination)
        finally:
            os.close(reader)


def place_inference_run(run_dir: Path, bench_dir: Path, complete: bool) -> Path:
    """Place an inference run's MLPerf log as the next free result_<i>.txt of its variant's folder and LoadGen's
    files (checked first: loadgen_files) as loadgen_<i>/, the same i. All or nothing: when copying LoadGen's files
    fails, the log just placed and the folder are removed again."""
    source = run_dir / VARIANT_LOADGEN
    names = loadgen_files(source, complete)
    result_file = place_log(run_dir / VARIANT_LOG, bench_dir, next_file=next_inference_result)
    if not names:
        return result_file
    target = loadgen_dir_of(result_file)
    try:
        os.mkdir(target)
    except OSError as error:  # taken by another run since the index was chosen, or the folder is not writable
        result_file.unlink(missing_ok=True)
        raise DockerError(f"cannot create {target} for LoadGen's files ({error.strerror}), so no result was "
                          "recorded") from None
    try:
        copy_loadgen_files(source, names, target)
    except BaseException as error:
        result_file.unlink(missing_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        if isinstance(error, OSError):
            raise DockerError(f"copying LoadGen's files into {target} failed ({error.strerror or error}), so no "
                              "result was recorded") from None
        raise
    return result_file


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
    variant: str | None = None  # inference: the variant this container ran
    loadgen_dir: Path | None = None  # inference: LoadGen's files, beside result_file (None: it left none)


@dataclass
class Plan:
    """What every container of one `run` shares."""
    engine: object
    name: str
    image: object
    tag: str
    seed: int
    smoke: bool
    nproc: int
    gpus: str | None
    data_dir: Path
    environment: dict


def variants_to_run(definition: dict, variant: str | None, nproc: int) -> list[str | None]:
    """[None] for a training workload (one container); for an inference workload the given variant, or every
    variant of the definition in its order (one container each), or DockerError."""
    name = definition["name"]
    if definition["kind"] != "inference":
        if variant:
            raise DockerError(f"{name} is a training benchmark, so it has no variant {variant!r}")
        return [None]
    if nproc > 1:  # as run_and_time.sh refuses it, said before any container starts
        raise DockerError(f"{name} is an inference benchmark, which runs in one process: drop --nproc")
    known = list(definition["performance"])
    if variant and variant not in known:
        raise DockerError(f"{name} has no variant {variant!r} (its variants: {', '.join(known)})")
    return [variant] if variant else known


def run(name: str, seed: int = 1, smoke: bool = False, nproc: int = 1, gpus: str | None = None,
        data_dir: Path | None = None, out_root: Path | None = None, variant: str | None = None) -> list[RunResult]:
    """run_and_time.sh in the workload's container: one run for a training workload; for an inference workload one
    container per variant (the given one, or every variant). Each log lands in the results layout (see above);
    one RunResult per container, in order. A failed container does not stop the next variant (as run_and_time.sh
    runs every variant); anything refused (DockerError) does."""
    engine = client()
    definition = benchmark.load(name, smoke=smoke)
    variants = variants_to_run(definition, variant, int(nproc))
    flavour = "cuda" if gpus else "cpu"
    data_dir = Path(data_dir or os.environ.get("DATA_DIR") or ROOT / "data").resolve()
    check_data(definition, data_dir)
    image = current_image(engine, name, flavour)
    tag = next(iter(image.tags), image.id)

    root = Path(out_root or results.default_root(smoke)).resolve()
    submitter, system = results.submitter(), results.system_name("docker", flavour)
    results.ensure_system_description(root, submitter, system,
                                      describe_system(name, submitter, system, flavour, gpus, tag))
    environment = {
        "DATA_DIR": "/data", "RESULTS_DIR": "/results", "SMOKE": "1" if smoke else "0", "NPROC": str(int(nproc)),
        "CONTAINER_IMAGE_ID": image.id, "HOME": "/tmp", "USER": "bench" if running_as_root() else getpass.getuser(),
        **git_env(), **{k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)},
    }
    plan = Plan(engine, name, image, tag, int(seed), smoke, int(nproc), gpus, data_dir, environment)
    bench_dir = results.benchmark_dir(root, name, system, submitter)
    logs_dir = root.parent / f"{root.name}-logs" / submitter / system / name
    done = []
    for each in variants:
        results_folder, output_folder = folders_of(bench_dir, logs_dir, each)
        done.append(run_container(plan, results_folder, output_folder, each))
    return done


def folders_of(bench_dir: Path, logs_dir: Path, variant: str | None) -> tuple[Path, Path]:
    """(results folder, output folder) of one container's run, made if missing: an inference variant has its own
    (named as prepare_local_run names it), so each variant is indexed and scored on its own."""
    if variant:
        bench_dir, logs_dir = bench_dir / results.safe_name(variant), logs_dir / results.safe_name(variant)
    bench_dir.mkdir(parents=True, exist_ok=True)
    logs_dir.mkdir(parents=True, exist_ok=True)
    return bench_dir, logs_dir


def follow(plan: Plan, environment: dict, options: dict, output_file: Path) -> int:
    """Start the container, stream its output to the terminal and output_file, and return its exit code once it
    has exited; the container is removed in any case."""
    container = plan.engine.containers.run(plan.image.id, [str(plan.seed)], detach=True, environment=environment,
                                           **options)
    try:
        with open(output_file, "w", encoding="utf-8") as output:
            for chunk in container.logs(stream=True, follow=True):
                text = chunk.decode("utf-8", errors="replace")
                sys.stdout.write(text)
                sys.stdout.flush()
                output.write(text)
        return container.wait()["StatusCode"]
    finally:
        container.remove(force=True)


def run_container(plan: Plan, bench_dir: Path, logs_dir: Path, variant: str | None) -> RunResult:
    """One container: run_and_time.sh (VARIANT=variant for inference) with a fresh per-run folder at /results; then
    its log (and LoadGen's files) placed into bench_dir, its output and a record of the run into logs_dir."""
    run_log = VARIANT_LOG if variant else RUN_LOG
    environment = {**plan.environment, "LOGFILE": f"/results/{run_log}", **({"VARIANT": variant} if variant else {})}
    run_dir = prepare_run_dir(logs_dir)
    output_file = run_dir.with_name(run_dir.name + ".log")
    options = container_options(plan.data_dir, run_dir, plan.gpus)
    log(f"running {plan.tag} ({plan.image.id[:19]}) seed {plan.seed}{' smoke' if plan.smoke else ''}"
        f"{f' variant {variant}' if variant else ''}: --network none, {plan.data_dir} -> /data (read-only), "
        f"a fresh {run_dir} -> /results")
    start = time.monotonic()
    try:
        exit_code = follow(plan, environment, options, output_file)
        seconds = time.monotonic() - start
        try:
            result_file = (place_inference_run(run_dir, bench_dir, complete=exit_code == 0) if variant
                           else place_log(run_dir / RUN_LOG, bench_dir))
            problem = None
        except DockerError as error:
            result_file, problem = None, error
    finally:
        remove_run_dir(run_dir)
    loadgen_dir = loadgen_dir_of(result_file) if variant and result_file else None
    loadgen_dir = loadgen_dir if loadgen_dir and loadgen_dir.is_dir() else None

    stem = result_file.stem if result_file else time.strftime("unrecorded_%Y%m%dT%H%M%S")
    output_file = output_file.replace(logs_dir / f"{stem}.log")
    record = {"workload": plan.name, "variant": variant, "seed": plan.seed, "smoke": plan.smoke,
              "nproc": plan.nproc, "gpus": plan.gpus, "image": plan.tag, "image_id": plan.image.id,
              "exit_code": exit_code, "seconds": round(seconds, 3),
              "result_file": str(result_file) if result_file else None,
              "loadgen_dir": str(loadgen_dir) if loadgen_dir else None, "problem": str(problem) if problem else None,
              "data_dir": str(plan.data_dir), "network": "none", "user": options["user"] or "bench",
              "git": {k: v for k, v in environment.items() if k.startswith("GIT_")}}
    record_file = logs_dir / f"{stem}.json"
    record_file.write_text(json.dumps(record, indent=2) + "\n")
    # A failed container that wrote no log is a failed run (the caller reports its exit code); anything else the
    # container left instead of its log, or no log after a successful exit, is refused.
    if problem is not None and (exit_code == 0 or not isinstance(problem, MissingLog)):
        raise DockerError(f"{str(problem).rstrip('.')} (container exit code {exit_code}; output in {output_file})")
    log(f"container exited {exit_code} after {seconds:.1f} s; "
        + (f"MLPerf log {result_file}" if result_file else "no MLPerf log")
        + (f", LoadGen's files {loadgen_dir}" if loadgen_dir else "") + f"; output {output_file}")
    return RunResult(exit_code, result_file, output_file, record_file, plan.image.id, plan.tag, seconds, variant,
                     loadgen_dir)
