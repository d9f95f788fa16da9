"""Provenance recorded with every run: what code, data, environment and hardware produced a result.

The record is logged as one POINT_IN_TIME `provenance` event before run_start (outside the timed region);
its JSON Schema is submission_checker/schemas/provenance.schema.json.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from common.benchmark import REPO_ROOT
from common.results import cpu_model

# Files that do not change what a run computes are left out of the code hash, so documentation edits and the
# definition's own record of the released hash do not change it (the definition is checked as data anyway).
NOT_CODE = {"README.md", "benchmark.yaml"}
SKIP_DIRS = {"__pycache__", ".pytest_cache"}


def tree_hash(directory: Path) -> str:
    """sha256 over (relative path, file sha256) of every code file under directory, in sorted order."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if not path.is_file() or path.name in NOT_CODE or SKIP_DIRS.intersection(rel.parts):
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest()


HARNESS_PACKAGE = "common"
RUN_SCRIPT = "common/timed_run.sh"  # the body every run_and_time.sh sources


def _imported_modules(source: Path) -> set[str]:
    """Modules of the harness package that a Python file imports (`import common.x`, `from common import x`,
    `from common.x import y`), as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == HARNESS_PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.split(".")[0] == HARNESS_PACKAGE:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def harness_files(workload_dir: Path, root: Path = REPO_ROOT) -> list[Path]:
    """The harness files a run of this workload executes: every module of common/ that the workload's Python
    files import, followed transitively through common/, with the package's __init__.py, plus the run script
    body. Tooling that a run never imports (bench, results layout helpers used only by tasks, containers) is
    not part of it, so editing tooling or adding a workload changes no workload's reference hash.
    An inference workload serving a checkpoint of a training benchmark (its definition's
    checkpoint.training_benchmark) also executes that workload's model and evaluation code: its Python files
    count here too."""
    pending = [p for p in sorted(Path(workload_dir).rglob("*.py")) if not SKIP_DIRS.intersection(p.parts)]
    seen: set[Path] = set()
    files = {root / HARNESS_PACKAGE / "__init__.py", root / RUN_SCRIPT}
    for other in _served_training_dirs(Path(workload_dir), root):
        served = [p for p in sorted(other.glob("*.py"))]
        files.update(served)
        pending += served
    while pending:
        source = pending.pop()
        if source in seen:
            continue
        seen.add(source)
        for module in _imported_modules(source):
            parts = module.split(".")
            for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    files.add(candidate)
                    pending.append(candidate)
    return sorted(files)


def _served_training_dirs(workload_dir: Path, root: Path) -> list[Path]:
    """The training workload whose checkpoint an inference definition serves (checkpoint.training_benchmark)."""
    import yaml

    definition_file = workload_dir / "benchmark.yaml"
    if not definition_file.is_file():
        return []
    definition = yaml.safe_load(definition_file.read_text()) or {}
    training = (definition.get("checkpoint") or {}).get("training_benchmark")
    if not training:
        return []
    return [d for d in root.glob(f"*/{training}") if (d / "benchmark.yaml").is_file()][:1]


def files_hash(files: list[Path], root: Path) -> str:
    """sha256 over (path relative to root, file sha256) of the given files, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest()


def code_hashes(workload_dir: Path) -> dict:
    """The released-code hashes of a run: workload_sha256 over the workload directory (tree_hash), and
    common_sha256 over the harness files that workload executes (harness_files)."""
    return {"workload_sha256": tree_hash(workload_dir),
            "common_sha256": files_hash(harness_files(workload_dir), REPO_ROOT)}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict:
    """Commit and dirty flag; inside an image without .git the build records them in GIT_COMMIT/GIT_DIRTY."""
    commit = _git("rev-parse", "HEAD")
    if commit is not None:
        return {"commit": commit, "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}
    dirty = os.environ.get("GIT_DIRTY")
    return {"commit": os.environ.get("GIT_COMMIT"), "dirty": None if dirty is None else dirty == "true"}


def packages() -> dict:
    versions = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions[name.lower()] = dist.version
    listing = "\n".join(f"{name}=={versions[name]}" for name in sorted(versions))
    return {"versions": dict(sorted(versions.items())), "sha256": hashlib.sha256(listing.encode()).hexdigest()}


def hardware() -> dict:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_name": gpus[0] if gpus else None,
        "gpu_count": len(gpus),
        "machine": platform.machine(),
    }


def container() -> dict:
    """tasks.py hands the image id to the container in CONTAINER_IMAGE_ID; docker offers no other way in."""
    in_container = Path("/.dockerenv").exists() or "CONTAINER_IMAGE_ID" in os.environ
    return {"in_container": in_container, "image_id": os.environ.get("CONTAINER_IMAGE_ID")}


def collect(workload_dir: Path, dataset_sha256: dict[str, str]) -> dict:
    import torch

    return {
        "git": git_state(),
        "code": code_hashes(workload_dir),
        "dataset_sha256": dict(sorted(dataset_sha256.items())),
        "packages": packages(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "os": platform.platform(),
        "hardware": hardware(),
        "container": container(),
    }
