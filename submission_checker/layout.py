"""The results folder as files: walking it safely, the result files of a benchmark folder and their indices, system
descriptions and other small JSON files. Nothing outside the checked folder is ever read: symlinks are reported,
never followed, and names that are not plain are refused."""
from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from pathlib import Path

from submission_checker import schema
from submission_checker.util import printable, rel

RESULT_NAME = re.compile(r"result_([0-9]{1,6})\.txt")
MAX_JSON_BYTES = 1 << 20       # system descriptions and scaling.json are a few KB


def entries(directory: Path, root: Path, errors: list):
    """(name, path) of a folder's entries, sorted; hidden entries skipped. Names that are not plain, symlinks and
    special files are reported as errors and skipped: nothing outside the checked folder is ever read."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        errors.append(f"{rel(directory, root)}: cannot list: {error.strerror or error}")
        return []
    found = []
    for name in names:
        path = directory / name
        shown = rel(path, root)
        if name.startswith("."):
            continue
        problem = bad_name(name)
        if problem:
            errors.append(f"{shown}: {problem}")
        elif path.is_symlink():
            target = os.path.realpath(path)
            if os.path.commonpath([target, str(root)]) != str(root):
                errors.append(f"{shown}: symlink pointing outside the checked folder (to {printable(target)}); "
                              "not followed")
            else:
                errors.append(f"{shown}: symlink; results must be plain files and folders, not links")
        elif not (path.is_file() or path.is_dir()):
            errors.append(f"{shown}: not a regular file or folder")
        else:
            found.append((name, path))
    return found


def walk_files(directory, root, errors):
    for _, path in entries(directory, root, errors):
        if path.is_dir():
            yield from walk_files(path, root, errors)
        else:
            yield path


def bad_name(name: str) -> str | None:
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in name):
        return "name is not valid UTF-8"
    if ".." in name:
        return "'..' in a name is not allowed"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "control characters in a name are not allowed"
    if len(name.encode()) > 255:
        return "name longer than 255 bytes"
    return None


def benchmark_dirs(submitter_dir):
    """Every <submitter>/results/<system>/<benchmark> folder (for detecting the mode; no problems reported)."""
    results = submitter_dir / "results"
    if results.is_symlink():
        return []
    try:
        return [b for s in results.iterdir() if s.is_dir() and not s.is_symlink()
                for b in s.iterdir() if b.is_dir() and not b.is_symlink() and not bad_name(b.name)]
    except OSError:
        return []


def is_submitter(path: Path) -> bool:
    return (path / "results").is_dir() or (path / "systems").is_dir()


def result_files(result, bench_dir, root, extra_ok=frozenset()) -> list[tuple[int, Path]]:
    """(index, path) of the result_<i>.txt files of a benchmark folder, sorted; other entries reported."""
    files = []
    for name, path in entries(bench_dir, root, result.errors):
        match = RESULT_NAME.fullmatch(name)
        if match and path.is_file():
            files.append((int(match.group(1)), path))
        elif name.startswith("result"):
            result.errors.append(f"{rel(path, root)}: not a result file (expected a file named result_<i>.txt)")
        elif name not in extra_ok:
            result.warnings.append(f"{rel(path, root)}: ignored")
    return sorted(files, key=lambda item: (item[0], item[1].name))


def check_indices(result, files):
    """Indices 0..n-1 or 1..n, each once, n = result.required_runs."""
    indices = [index for index, _ in files]
    for index, n in Counter(indices).items():
        if n > 1:
            names = ", ".join(p.name for i, p in files if i == index)
            result.errors.append(f"{result.path}: duplicate result index {index} ({names})")
    if indices:
        first = min(indices)
        expected = set(range(first, first + result.required_runs))
        if first not in (0, 1):
            result.errors.append(f"{result.path}: result indices start at {first}; they start at 0 or 1")
        missing = sorted(expected - set(indices))
        if missing and first in (0, 1):
            result.errors.append(f"{result.path}: missing result index {', '.join(map(str, missing))}")
        extra = sorted(set(indices) - expected)
        if extra and first in (0, 1):
            result.errors.append(f"{result.path}: unexpected result index {', '.join(map(str, extra))} "
                                 f"(the benchmark requires {result.required_runs} runs)")
    if len(files) < result.required_runs:
        result.errors.append(f"{result.path}: {len(files)} result files, the benchmark requires "
                             f"{result.required_runs}")


def load_system(path: Path | None, shown: str, root: Path):
    """(system description, problems): schemas/system_desc.schema.json."""
    if path is None or not path.is_file():
        return None, [f"{shown}: missing system description"]
    value, problem = read_json(path, root)
    if problem:
        return None, [problem]
    problem = schema.load("system_desc").error(value)
    if problem:
        return None, [f"{shown}: {problem}"]
    return value, []


def read_json(path: Path, root: Path):
    """(value, None) or (None, problem) for a small JSON file."""
    shown = rel(path, root)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None, f"{shown}: larger than {MAX_JSON_BYTES} bytes"
        return json.loads(path.read_bytes().decode("utf-8")), None
    except UnicodeDecodeError as error:
        return None, f"{shown}: not valid UTF-8 (byte offset {error.start})"
    except (ValueError, RecursionError) as error:
        return None, f"{shown}: invalid JSON: {error}"
    except OSError as error:
        return None, f"{shown}: cannot read: {error.strerror or error}"
