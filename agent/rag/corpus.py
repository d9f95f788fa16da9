"""agent/rag's corpus and questions, built deterministically from TinyShakespeare's input.txt (no seed involved).

Corpus: the play text is a sequence of blocks separated by blank lines; a block whose first line is a speaker line
("NAME:", e.g. "MENENIUS:" or "First Citizen:") followed by at least one line of text is one speech, and one
passage is that speech as written ("NAME:\\n<lines>"). Blocks without text (a speaker line alone, where the source
lost a stage direction) are skipped. The corpus is `count` speeches spread evenly over the whole text.

Questions: 'Who says: "<line>"?' for the third line of a speech of at least MIN_LINES lines, where that line occurs
in no other speech (so exactly one passage is relevant); from the speeches that qualify, in corpus order, every
stride-th is asked, the stride chosen so that `count` questions spread over the whole corpus. The expected answer
is the speech's speaker.
"""
from __future__ import annotations

import collections
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

SPEAKER_LINE = re.compile(r"[A-Za-z][A-Za-z' .,&-]*:")  # "KING RICHARD III:", "First Citizen:", "LADY CAPULET:"
MIN_LINES = 4        # lines of text (the speaker line not counted): a speech long enough to have a third line
QUESTION_LINE = 2    # the third line of text (0-based)
TEXT = "tinyshakespeare/input.txt"


@dataclass(frozen=True)
class Speech:
    speaker: str
    lines: tuple[str, ...]

    @property
    def passage(self) -> str:
        return f"{self.speaker}:\n" + "\n".join(self.lines)


@dataclass(frozen=True)
class Question:
    text: str
    speech: int      # index of the one relevant passage
    expected: str    # its speaker


def split_speeches(text: str) -> list[Speech]:
    """Every speech of the play text, in order."""
    speeches = []
    for block in re.split(r"\n\s*\n", text.strip()):
        head, *lines = [line.rstrip() for line in block.strip("\n").split("\n")]
        lines = [line for line in lines if line.strip()]
        if SPEAKER_LINE.fullmatch(head) and lines:
            speeches.append(Speech(head[:-1], tuple(lines)))
    return speeches


def read_speeches(data_dir: Path, count: int | None = None) -> list[Speech]:
    """The corpus: `count` speeches spread evenly over the play text (every stride-th, stride = all // count), so
    that it spans every play rather than the first one; all speeches when count is None."""
    path = Path(data_dir) / TEXT
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SystemExit(f"error: cannot read {path} ({error.strerror}): run download_dataset.sh first") from None
    speeches = split_speeches(text)
    if not speeches:
        raise SystemExit(f"error: {path} holds no speech (a line 'NAME:' followed by text)")
    if not count:
        return speeches
    if count > len(speeches):
        raise SystemExit(f"error: {path} holds {len(speeches)} speeches, fewer than the {count} asked")
    return speeches[::len(speeches) // count][:count]


def make_questions(speeches: list[Speech], count: int) -> list[Question]:
    """`count` questions spread evenly over the speeches that qualify (see the module's docstring)."""
    speakers_of_line = collections.defaultdict(set)
    for index, speech in enumerate(speeches):
        for line in speech.lines:
            speakers_of_line[line.strip()].add(index)
    eligible = [index for index, speech in enumerate(speeches)
                if len(speech.lines) >= MIN_LINES and len(speakers_of_line[speech.lines[QUESTION_LINE].strip()]) == 1]
    if len(eligible) < count:
        raise SystemExit(f"error: only {len(eligible)} speeches qualify for a question, fewer than the {count} asked")
    stride = len(eligible) // count
    return [Question(f'Who says: "{speeches[i].lines[QUESTION_LINE].strip()}"?', i, speeches[i].speaker)
            for i in eligible[::stride][:count]]


def most_frequent_speaker(speeches: list[Speech]) -> str:
    """The speaker of the most speeches (ties: the first in corpus order): the trivial baseline's answer."""
    return collections.Counter(speech.speaker for speech in speeches).most_common(1)[0][0]


def fingerprint(speeches: list[Speech], questions: list[Question]) -> dict:
    return {"speeches": len(speeches), "questions": len(questions),
            "corpus_sha256": hashlib.sha256("\n\n".join(s.passage for s in speeches).encode()).hexdigest(),
            "questions_sha256": hashlib.sha256(json.dumps([asdict(q) for q in questions]).encode()).hexdigest()}
