"""One log read through key rules (rules/*.yaml), whatever the benchmark: how often each key occurs and where
(initialisation or the timed region), its event type, metadata and values; plausible clocks; a key logged twice.
What one log must also say is training.py's or inference.py's (suite.py: what both share); this module knows no
benchmark.

The log is streamed: what stays in memory is bounded whatever its length (each key's first occurrence, counts of
the keys that have a rule, at most `keep_evals` quality evals, at most MAX_PROBLEMS_PER_FILE messages).
"""
from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from submission_checker import logparse
from submission_checker.util import is_number, same, show

RULES_DIR = Path(__file__).resolve().parent / "rules"
MAX_PROBLEMS_PER_FILE = 10     # a broken file reports its first problems, then a count
MAX_KEYS_WITHOUT_RULE = 1000   # distinct keys no rule names (a log of this suite has ~40 keys in all)
KEEP_EVALS = 1000              # quality evals kept per run when the caller gives no bound (plots only)
ONCE = ("exactly_one", "at_most_one")
# Fallbacks for rules files that do not set them (rules/common.yaml does): 2000-01-01 to 2100-01-01, 3 days.
TIME_MS_RANGE = (946_684_800_000, 4_102_444_800_000)
MAX_LOG_SPAN_S = 3 * 86_400


@dataclass
class Run:
    """One result file, as read."""
    file: str                       # relative to the checked folder
    index: int
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: str | None = None       # why the run does not count (scored as the slowest); None if it converged
    first: dict = field(default_factory=dict)   # key -> (lineno, time_ms, value, metadata) of its first occurrence
    counts: Counter = field(default_factory=Counter)
    evals: list = field(default_factory=list)   # (lineno, time_ms, value, metadata) of quality evals, timed region
    evals_not_kept: int = 0         # quality evals beyond keep_evals: checked by the caller's on_eval, then counted
    run_start: float | None = None
    run_stop: float | None = None
    status: str | None = None
    samples_to_target: float | None = None
    epochs_to_target: float | None = None
    digest: dict = field(default_factory=dict)  # provenance fields that every run of a result must share
    seed: object = None
    seed_line: int | None = None
    division: str | None = None
    performance: dict | None = None  # inference: the performance run's figures (metric value, latency percentiles)
    checkpoint: str | None = None   # inference: sha256 of the checkpoint served (every run of a result serves one)
    repeated_same: list = field(default_factory=list)  # (key, lineno): allowed once, logged again, same value
    hidden_problems: int = 0

    def error(self, message: str, lineno: int | None = None) -> None:
        if len(self.errors) >= MAX_PROBLEMS_PER_FILE:
            self.hidden_problems += 1
            return
        self.errors.append(f"{self.file}:{lineno}: {message}" if lineno else f"{self.file}: {message}")

    def warn(self, message: str, lineno: int | None = None) -> None:
        if len(self.warnings) < MAX_PROBLEMS_PER_FILE:
            self.warnings.append(f"{self.file}:{lineno}: {message}" if lineno else f"{self.file}: {message}")

    def value(self, key, default=None):
        return self.first[key][2] if key in self.first else default

    @property
    def score_ms(self) -> float | None:
        if self.errors or self.failed or self.run_start is None or self.run_stop is None:
            return None
        return self.run_stop - self.run_start


@lru_cache(maxsize=None)
def load_rules(name: str) -> dict:
    """rules/<name>.yaml (common: this suite; mlcommons: real MLCommons training results)."""
    return yaml.safe_load((RULES_DIR / f"{name}.yaml").read_text())


def read_run(path, rel, index, keys, rules, log_key, mlcommons=False, on_eval=None, keep_evals=KEEP_EVALS) -> Run:
    """Stream one log through the key rules; keep each key's first occurrence and up to keep_evals quality evals
    (log_key inside the timed region). on_eval(run, lineno, time_ms, value, metadata) sees every quality eval, kept
    or not, in order."""
    run = Run(file=rel, index=index)
    backwards = rules.get("time_goes_backwards", "error")
    repeated = rules.get("repeated_key", "error")
    low, high = rules.get("time_ms_range") or TIME_MS_RANGE
    span_ms = float(rules.get("max_log_span_s", MAX_LOG_SPAN_S)) * 1000
    phase, first_time, last_time, keys_without_rule = "init", None, None, 0
    try:
        for lineno, event, problem in logparse.read_events(path, mlcommons=mlcommons):
            if problem:
                run.error(problem, lineno)
                continue
            key, time_ms, metadata = event["key"], event["time_ms"], event["metadata"]
            if not (is_number(time_ms) and low <= time_ms <= high):
                run.error(f"time_ms {show(time_ms)} is not a plausible clock (epoch milliseconds from {_date(low)} to "
                          f"{_date(high)}); line ignored", lineno)
                continue
            if first_time is None:
                first_time = time_ms
            elif abs(time_ms - first_time) > span_ms:
                run.error(f"time_ms {show(time_ms)} is {abs(time_ms - first_time) / 86_400_000:.1f} days "
                          f"{'after' if time_ms > first_time else 'before'} the log's first line (a log spans at most "
                          f"{span_ms / 86_400_000:g} days); line ignored", lineno)
                continue
            if last_time is not None and time_ms < last_time and backwards != "off":
                message = f"time_ms {show(time_ms)} is earlier than the line before ({show(last_time)}): " \
                          "timestamps go backwards"
                if backwards == "error":
                    run.error(message, lineno)
                elif not any("timestamps go backwards" in w for w in run.warnings):  # interleaved ranks: once
                    run.warn(message, lineno)
            last_time = time_ms
            rule = keys.get(key)
            if rule is not None:
                run.counts[key] += 1
                if run.counts[key] > 1 and rule.get("occurs") in ONCE:
                    _repeated(run, key, rule["occurs"], event["value"], lineno, repeated)
                for problem in rule_problems(rule, event, phase):
                    run.error(f"{key}: {problem}", lineno)
            if key == "run_start" and run.run_start is None:
                phase, run.run_start = "timed", time_ms
            elif key == "run_stop" and run.run_stop is None:
                phase, run.run_stop, run.status = "after", time_ms, metadata.get("status")
            elif key == log_key and phase == "timed":
                if on_eval is not None:
                    on_eval(run, lineno, time_ms, event["value"], metadata)
                if len(run.evals) < keep_evals:
                    run.evals.append((lineno, time_ms, event["value"], metadata))
                else:
                    run.evals_not_kept += 1
            if key not in run.first:
                if rule is not None:
                    run.first[key] = (lineno, time_ms, event["value"], metadata)
                elif keys_without_rule < MAX_KEYS_WITHOUT_RULE:
                    keys_without_rule += 1
                    run.first[key] = (lineno, time_ms, None, None)  # where it is; its value is no rule's business
                elif keys_without_rule == MAX_KEYS_WITHOUT_RULE:
                    keys_without_rule += 1
                    run.error(f"more than {MAX_KEYS_WITHOUT_RULE} distinct keys that no rule names; the rest are not "
                              "checked", lineno)
    except OSError as error:
        run.error(f"cannot read: {error.strerror or error}")
        return run
    if run.repeated_same:
        names = [key for key, _ in run.repeated_same]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        run.warn(f"{shown} logged again with the same value (first repeat here); accepted, as the MLCommons "
                 "compliance checker accepts it", run.repeated_same[0][1])
    for key, rule in keys.items():
        occurs = rule.get("occurs")
        if run.counts[key] == 0 and occurs in ("exactly_one", "at_least_one"):
            run.error(f"no {key} logged (required: {occurs.replace('_', ' ')})")
    run.seed, run.division = run.value("seed"), run.value("submission_division")
    run.seed_line = run.first["seed"][0] if "seed" in run.first else None
    return run


def _repeated(run, key, occurs, value, lineno, policy):
    """A key allowed once, logged again. policy error: one log holds one run (two runs writing one LOGFILE show up
    here first). policy warn_if_same: the MLCommons compliance checker's rule, the same value again is a warning and
    another value an error; values compare with Python's ==, as that checker compares them."""
    first_line, _, first_value, _ = run.first[key]
    if policy == "warn_if_same":
        if value == first_value:
            if run.counts[key] == 2:
                run.repeated_same.append((key, lineno))  # one warning per log, after the log is read
        else:
            run.error(f"{key} logged again with another value {show(value)} (first at line {first_line}: "
                      f"{show(first_value)})", lineno)
    elif run.counts[key] == 2:
        run.error(f"{key} logged again (first at line {first_line}; allowed: {occurs.replace('_', ' ')}): one log "
                  "holds one run", lineno)


def rule_problems(rule, event, phase):
    where = rule.get("where")
    if where == "init" and phase != "init":
        yield "must be logged before run_start (initialisation, untimed)"
    if where == "timed" and phase != "timed":
        yield "must be logged inside the timed region (between run_start and run_stop)"
    if "event_type" in rule and event["event_type"] != rule["event_type"]:
        yield f"event_type {event['event_type']}, expected {rule['event_type']}"
    for name in rule.get("metadata", ()):
        if name not in event["metadata"]:
            yield f"metadata lacks '{name}'"
    if "values" in rule and not any(same(event["value"], v) for v in rule["values"]):
        yield f"value {show(event['value'])} is not one of {show(rule['values'])}"


def _date(time_ms: float) -> str:
    return datetime.datetime.fromtimestamp(time_ms / 1000, datetime.timezone.utc).date().isoformat()
