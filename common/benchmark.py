"""Benchmark definitions: each workload's `benchmark.yaml` is the single source of truth for its dataset
files, model config, closed-division hyperparameters, quality target and required runs.

This module reads them as data (yaml only, no torch), so tasks.py and the submission checker can use it too.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SUITES = ("language", "vision", "tiny", "recommender", "agent", "slm", "graph", "timeseries", "rl")
DEFINITION_FILE = "benchmark.yaml"


class UnknownWorkload(LookupError):
    pass


def workload_dirs(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every workload directory (<suite>/<workload>/benchmark.yaml), keyed by benchmark name."""
    found = {}
    for suite in SUITES:
        for definition in sorted((root / suite).glob(f"*/{DEFINITION_FILE}")):
            name = yaml.safe_load(definition.read_text())["name"]
            found[name] = definition.parent
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


def load(name_or_dir: str | Path, smoke: bool = False) -> dict:
    """Load a definition by benchmark name or directory. With smoke=True the `smoke:` overrides apply."""
    path = Path(name_or_dir)
    directory = path if (path / DEFINITION_FILE).is_file() else workload_dir(str(name_or_dir))
    definition = yaml.safe_load((directory / DEFINITION_FILE).read_text())
    smoke_overrides = definition.pop("smoke", {})
    if smoke:
        definition = _deep_merge(definition, smoke_overrides)
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
