"""Small helpers every checker module shares: numbers that are safe to compute with, JSON equality and display,
printable paths. No checker logic here."""
from __future__ import annotations

import json
import math
from pathlib import Path


def is_number(x) -> bool:
    """A JSON number safe for arithmetic: not a bool, finite, and within float range (JSON allows integers of any
    size; one beyond float range would raise OverflowError in float arithmetic, so it is not a number here)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def is_integer(x) -> bool:
    """A JSON integer as written: not a bool, not a float (2.0 is not a seed nor a step)."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_count(x) -> bool:
    """A positive JSON integer."""
    return is_integer(x) and x > 0


def same(a, b) -> bool:
    """JSON equality: true is not 1, 64 equals 64.0, lists and objects compare element by element."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b  # exact, and never raises, even for an integer beyond float range
    return type(a) is type(b) and a == b


def show(value, limit: int = 80) -> str:
    """A log value as JSON, cut to `limit` characters."""
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):  # an integer longer than Python's int-to-str limit, absurd nesting
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def printable(text: str) -> str:
    """Names come from the file system: escape what would garble a terminal or fail to encode."""
    return text if text.isprintable() else ascii(text)[1:-1]


def rel(path: Path, root: Path) -> str:
    """A path as the reports show it: relative to the checked folder, printable."""
    try:
        return printable(path.relative_to(root).as_posix())
    except ValueError:
        return printable(str(path))
