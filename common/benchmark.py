"""Benchmark definitions: each workload's `benchmark.yaml` is the single source of truth for its dataset
files, model config, closed-division hyperparameters, quality target and required runs.

This module reads them as data (yaml and jsonschema only, no torch), so tasks.py and the submission checker can
use it too.

- Discovery: a suite is any top-level directory of the repository (or of another definitions root) except hidden
  ones (`.*`, `_*`), `*.egg-info` and the directories in NOT_SUITES; a workload is any directory directly inside
  a suite that holds a `benchmark.yaml`. Two definitions with the same `name` are an error naming both files.
- Validation: `load` checks the definition as written and again with its `smoke:` overrides merged against
  `benchmark.schema.json` (draft 2020-12; its "description" says what it requires) plus the rules a schema
  cannot state (open_division_relaxes names keys of hyperparameters). A problem raises one DefinitionError,
  whose message is one line naming the file and the field:
  `language/nanogpt/benchmark.yaml: quality.target: 'abc' is not of type 'number'`.
- Defaults are set here, once, after validation (DEFAULTS, QUALITY_DEFAULTS): callers index, they never
  `.get(key, default)`.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFINITION_FILE = "benchmark.yaml"
SCHEMA_FILE = Path(__file__).resolve().parent / "benchmark.schema.json"
# Top-level directories that are never suites: the shared code, the tooling, and what runs write or install
# (datasets, results, build outputs; `.venv` and other hidden directories are skipped by their leading dot).
NOT_SUITES = frozenset({"common", "docker", "submission_checker", "tests", "labs", "data", "results", "build", "dist",
                        "shared", "node_modules"})
DEFAULTS = {"kind": "training", "required_runs": 5, "open_division_relaxes": []}
QUALITY_DEFAULTS = {"log_key": "eval_accuracy"}
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same result, ~10x faster


class UnknownWorkload(LookupError):
    pass


class DefinitionError(ValueError):
    """A benchmark definition that cannot be used; the message is one line naming the file and the field."""


def _label(file: Path) -> str:
    """The file as the user knows it: relative to the repository when inside it."""
    try:
        return str(Path(file).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(file)


def _read_yaml(file: Path) -> dict:
    try:
        document = yaml.load(Path(file).read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DefinitionError(f"{_label(file)}: not valid YAML: {problem}{where}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DefinitionError(f"{_label(file)}: cannot read: {getattr(error, 'strerror', None) or error}") from None
    if not isinstance(document, dict):
        raise DefinitionError(f"{_label(file)}: a definition is a mapping of fields, not {type(document).__name__}")
    return document


def suite_dirs(root: Path = REPO_ROOT) -> list[Path]:
    """The top-level directories of root that may hold workloads (see the module docstring), sorted."""
    return sorted(p for p in Path(root).iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in NOT_SUITES
                  and not p.name.endswith(".egg-info"))


def workload_dirs(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every workload directory (<suite>/<workload>/benchmark.yaml under root), keyed by benchmark name."""
    found: dict[str, Path] = {}
    for suite in suite_dirs(root):
        for directory in sorted(p for p in suite.iterdir() if p.is_dir()):
            file = directory / DEFINITION_FILE
            if not file.is_file():
                continue
            name = _read_yaml(file).get("name")
            if not isinstance(name, str) or not name:
                raise DefinitionError(f"{_label(file)}: name: a definition needs a name (a non-empty string)")
            if name in found:
                raise DefinitionError(f"two benchmark definitions are named '{name}': "
                                      f"{_label(found[name] / DEFINITION_FILE)} and {_label(file)}")
            found[name] = directory
    return found


def workload_dir(name: str) -> Path:
    dirs = workload_dirs()
    if name not in dirs:
        known = ", ".join(sorted(dirs)) or "none"
        raise UnknownWorkload(f"unknown workload '{name}' (known: {known})")
    return dirs[name]


def _deep_merge(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@lru_cache(maxsize=None)
def _validator():
    """The compiled schema validator, built once per process (jsonschema is imported only here: ~0.15 s)."""
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _field(path) -> str:
    """['dataset', 'files', 0, 'path'] -> 'dataset.files[0].path'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problems(document: dict):
    """(path, message) of the first problem found in a definition, or None."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        # A subschema may carry its own message (errorMessage, see the schema's description); the innermost one
        # around the error wins, so `anyOf` alternatives report what the field must be, not which branch failed.
        at = error
        while at is not None and not (isinstance(at.schema, dict) and "errorMessage" in at.schema):
            at = at.parent
        if at is not None:
            return list(at.absolute_path), at.schema["errorMessage"].replace("{value}", _show(at.instance))
        message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
        return list(error.absolute_path), message
    hyperparameters = document.get("hyperparameters") or {}
    for index, key in enumerate(document.get("open_division_relaxes") or []):
        if key not in hyperparameters:
            return ["open_division_relaxes", index], f"{key!r} is not a key of hyperparameters"
    return None


def _validate(document: dict, file: Path, smoke_overrides: dict | None = None) -> None:
    problem = _problems(document)
    if problem is None:
        return
    path, message = problem
    suffix = ""
    if smoke_overrides is not None:
        # The definition as written was valid: the smoke overrides made it invalid. Name the smoke field when
        # the path starts in the overrides, else say that the problem shows only once they are merged.
        if path and isinstance(smoke_overrides, dict) and path[0] in smoke_overrides:
            path = ["smoke", *path]
        else:
            suffix = " (with the smoke: overrides merged)"
    where = f"{_field(path)}: " if path else ""
    raise DefinitionError(f"{_label(file)}: {where}{message}{suffix}")


def _apply_defaults(definition: dict) -> dict:
    for key, value in DEFAULTS.items():
        definition.setdefault(key, copy.deepcopy(value))
    for key, value in QUALITY_DEFAULTS.items():
        definition["quality"].setdefault(key, value)
    return definition


def load(name_or_dir: str | Path, smoke: bool = False) -> dict:
    """Load a definition by benchmark name or directory, validated, with its defaults set. With smoke=True the
    `smoke:` overrides apply. Raises UnknownWorkload or DefinitionError (one line each)."""
    path = Path(name_or_dir)
    directory = path if (path / DEFINITION_FILE).is_file() else workload_dir(str(name_or_dir))
    file = directory / DEFINITION_FILE
    definition = _read_yaml(file)
    _validate(definition, file)
    smoke_overrides = definition.pop("smoke", {})
    merged = _deep_merge(definition, smoke_overrides)
    _validate(merged, file, smoke_overrides)
    definition = _apply_defaults(merged if smoke else definition)
    definition["smoke"] = smoke
    definition["directory"] = str(directory)
    return definition


def target_reached(value: float, quality: dict) -> bool:
    """Compare an evaluation result with the target in the benchmark's direction."""
    if quality["direction"] == "minimize":
        return value <= quality["target"]
    if quality["direction"] == "maximize":
        return value >= quality["target"]
    raise ValueError(f"quality.direction must be minimize or maximize, not {quality['direction']!r}")


def main(argv=None) -> int:
    """python -m common.benchmark variants <workload dir>: the variants of an inference definition, one per line
    (run_and_time.sh runs each); a training definition has none."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Read a benchmark definition.")
    parser.add_argument("action", choices=["variants"])
    parser.add_argument("workload")
    args = parser.parse_args(argv)
    try:
        definition = load(args.workload)
    except (DefinitionError, UnknownWorkload) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name in definition.get("performance") or {}:
        print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
