"""Streaming reader of MLPerf logs: one `:::MLLOG {json}` event per line, validated against log_event.schema.json.

Files are read line by line in binary, so memory stays bounded whatever the input: a line longer than
MAX_LINE_BYTES is reported and skipped in chunks, never held whole. Each line yields either an event or a
problem that names its line number, so one bad line never hides the rest of the file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from submission_checker import schema

TOKEN = b":::MLLOG "
MAX_LINE_BYTES = 1 << 20  # a provenance line is ~10 KB; real MLCommons lines are shorter
SKIP_CHUNK = 1 << 16


def read_events(path: Path, mlcommons: bool = False) -> Iterator[tuple[int, dict | None, str | None]]:
    """Yield (line number, event, None) for every valid MLLOG line of a log, (line number, None, problem) for a
    line with a problem. Our logs hold nothing else, so any other line is a problem; in
    MLCommons mode (submitters' logs wrap MLLOG lines in other output) other lines are skipped, the token may
    follow a prefix and metadata may omit file and lineno, as mlperf_logging's own parser allows."""
    log_event = schema.load("log_event")
    with open(path, "rb") as f:
        lineno = 0
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > MAX_LINE_BYTES:
                while raw and not raw.endswith(b"\n"):
                    raw = f.readline(SKIP_CHUNK)
                yield (lineno, None, f"line longer than {MAX_LINE_BYTES} bytes (skipped)")
                continue
            at = raw.rfind(TOKEN) if mlcommons else (0 if raw.startswith(TOKEN) else -1)
            if at < 0:
                if not mlcommons and raw.strip():
                    yield (lineno, None, "not an MLLOG line (expected it to start with ':::MLLOG ')")
                continue
            try:
                text = raw[at + len(TOKEN):].decode("utf-8")
            except UnicodeDecodeError as error:
                yield (lineno, None, f"not valid UTF-8 (byte {raw[at + len(TOKEN) + error.start]:#04x} at "
                                         f"column {at + len(TOKEN) + error.start + 1})")
                continue
            try:
                event = json.loads(text)
            except (ValueError, RecursionError) as error:  # bad JSON, a huge number, absurd nesting
                truncated = "" if raw.endswith(b"\n") else " (the file ends inside this line: truncated?)"
                yield (lineno, None, f"invalid JSON: {error}{truncated}")
                continue
            if not log_event.is_valid(event) and not (mlcommons and _valid_without_source(log_event, event)):
                yield (lineno, None, f"schema: {log_event.error(event)}")
                continue
            yield (lineno, event, None)


def _valid_without_source(log_event, event) -> bool:
    """MLCommons mode: mlperf_logging's parser reads any metadata object, so metadata may omit `file` and `lineno`
    (real v5.x logs carry `"metadata": {}`); everything else as the schema says."""
    metadata = event.get("metadata") if isinstance(event, dict) else None
    if not isinstance(metadata, dict) or ("file" in metadata and "lineno" in metadata):
        return False
    return log_event.is_valid({**event, "metadata": {"file": "", "lineno": 0, **metadata}})
