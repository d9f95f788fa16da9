"""Grading text answers (the agent/ workloads), shared by the harness and the submission checker (no torch here).

A graded answer is scored 0 or 1 in one of three ways, recorded per sample in reference_outputs.json:

    exact      the normalised answer equals the normalised expected answer (numbers compare as numbers)
    contains   the normalised expected answer occurs in the normalised answer (a sentence around the fact)
    executed   the workload ran the answer (agent/codegen: the task's tests in a sandbox); only the workload can
               score it, so the file binds the score to the answer's sha256 and the checker verifies the binding

For exact and contains the checker recomputes the score from LoadGen's own answer bytes and the expected string,
so an edited score or answer is caught; for executed, an answer changed after grading is caught by its sha256.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

FORMAT = "graded answers"
HOW = ("exact", "contains", "executed")
_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_TRAILING = ".!?;:,'\"` "


@dataclass(frozen=True)
class Grade:
    score: float            # 1.0 right, 0.0 wrong
    how: str                # exact | contains | executed
    expected: str | None    # what exact/contains compare with (None for executed)
    detail: str = ""        # why (executed: the sandbox's outcome), for the reader of the file


def normalise(text: str) -> str:
    """Lower case, whitespace collapsed, surrounding quotes and final punctuation removed."""
    return _SPACES.sub(" ", text).strip().strip(_TRAILING).lower()


def as_number(text: str) -> float | None:
    """The number a whole answer is (thousands separators allowed), else None."""
    compact = normalise(text).replace(",", "")
    return float(compact) if _NUMBER.fullmatch(compact) else None


def matches(answer: str, expected: str, how: str) -> bool:
    """Whether `answer` is right (exact: the same words, or the same number to 1e-6 relative; contains: the
    expected words occur in it, on word boundaries)."""
    if how == "exact":
        a, e = as_number(answer), as_number(expected)
        if a is not None and e is not None:
            return math.isclose(a, e, rel_tol=1e-6, abs_tol=1e-9)
        return normalise(answer) == normalise(expected)
    if how == "contains":
        wanted = normalise(expected)
        return bool(wanted) and re.search(r"(?<!\w)" + re.escape(wanted) + r"(?!\w)", normalise(answer)) is not None
    raise ValueError(f"only exact and contains can be recomputed, not {how!r}")


def grade_text(answer: str, expected: str, how: str = "exact") -> Grade:
    return Grade(1.0 if matches(answer, expected, how) else 0.0, how, expected)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_document(metric: str, responses: dict[int, bytes], grades: dict[int, Grade]) -> dict:
    """reference_outputs.json of a graded accuracy run: each sample's grade bound to its answer's sha256."""
    return {"format": FORMAT, "metric": metric, "samples": {
        str(index): {"answer_sha256": sha256_hex(responses[index]), "score": grade.score, "how": grade.how,
                     "expected": grade.expected, "detail": grade.detail[:300]}
        for index, grade in sorted(grades.items())}}


def mean_grade(responses: dict[int, bytes], samples: dict[str, dict], total: int) -> tuple[float, list[int]]:
    """(mean score over the `total` samples, the indices scored 0): a sample without an answer scores 0."""
    scores = {int(index): float(entry["score"]) for index, entry in samples.items() if int(index) in responses}
    wrong = sorted(i for i in range(total) if scores.get(i, 0.0) < 1.0)
    return (sum(scores.values()) / total if total else 0.0), wrong
