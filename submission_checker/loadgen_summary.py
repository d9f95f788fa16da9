"""LoadGen's human summary (mlperf_log_summary.txt), as the checker reads it: its 'label : value' lines, and where
they say something the detail log (the authority) says otherwise, which is how an edited summary shows. Checker
code only: no run reads a summary, so this lives outside the hashed harness (common/loadgen.py)."""
from __future__ import annotations

import math
from pathlib import Path

from common.loadgen import MAX_DETAIL_BYTES, PERCENTILES, LoadGenFileError

SUMMARY_FIELDS = {  # summary line label -> detail key it must agree with
    "Scenario": "effective_scenario", "Mode": "effective_test_mode", "Result is": "result_validity",
    "Samples per second": "result_samples_per_second", "Tokens per second": "result_tokens_per_second",
    "Completed samples per second": "result_completed_samples_per_sec",
    "Completed tokens per second": "result_completed_tokens_per_second",
    "Scheduled samples per second": "result_scheduled_samples_per_sec",
}


def read_summary(path: Path, shown: str | None = None) -> dict:
    """{label: text} of the 'label : value' lines of an mlperf_log_summary.txt (first occurrence of each label),
    plus the percentile latency lines ('90.00 percentile latency (ns)'), whose values are the detail log's."""
    shown = shown or str(path)
    if path.stat().st_size > MAX_DETAIL_BYTES:
        raise LoadGenFileError(f"{shown}: larger than {MAX_DETAIL_BYTES} bytes; not a LoadGen summary")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise LoadGenFileError(f"{shown}: not valid UTF-8 (byte {error.start})") from None
    fields = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and label.strip() and value.strip():
            fields.setdefault(" ".join(label.split()), value.strip())
    if "Result is" not in fields or "Scenario" not in fields:
        raise LoadGenFileError(f"{shown}: not a LoadGen summary (no 'Scenario :' or 'Result is :' line)")
    return fields


def _printed_as(stated: str, number: float, logged: float) -> bool:
    """Whether a summary figure is the detail log's value as LoadGen prints it: within 0.1 % of it, or the value
    rounded to the summary's decimals when it has at least two ('Completed samples per second : 3.66' for
    3.66487). A figure rounded more coarsely than that ('4' for 3.66) disagrees."""
    if abs(number - logged) <= 1e-3 * max(1.0, abs(logged)):
        return True
    decimals = len(stated.partition(".")[2].rstrip()) if "." in stated else 0
    return decimals >= 2 and abs(number - logged) <= 0.5 * 10 ** -decimals + 1e-12


def summary_disagreements(summary: dict, detail: dict) -> list[str]:
    """Where the summary says something the detail log says otherwise (an edited summary): 'label: a vs b'."""
    problems = []
    for label, key in SUMMARY_FIELDS.items():
        if label not in summary or key not in detail:
            continue
        stated, logged = summary[label], detail[key]
        if isinstance(logged, (int, float)) and not isinstance(logged, bool):
            try:
                number, logged_number = float(stated), float(logged)
            except (ValueError, OverflowError):
                problems.append(f"'{label}' is {stated!r}; one of it and the detail log's {logged} is not a number")
                continue
            if not (math.isfinite(number) and math.isfinite(logged_number)):
                problems.append(f"'{label}' is {stated} and the detail log's {key} is {logged}: not finite numbers")
            elif not _printed_as(stated, number, logged_number):
                problems.append(f"'{label}' is {stated} but the detail log's {key} is {logged}")
        elif str(stated) != str(logged):
            problems.append(f"'{label}' is {stated!r} but the detail log's {key} is {logged!r}")
    for p in PERCENTILES:
        label, key = f"{p} percentile latency (ns)", f"result_{p}_percentile_latency_ns"
        if label in summary and key in detail and summary[label] != str(detail[key]):
            problems.append(f"'{label}' is {summary[label]} but the detail log's {key} is {detail[key]}")
    return problems
