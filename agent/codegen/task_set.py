"""agent/codegen's tasks: MBPP problems (Austin et al. 2021, "Program Synthesis with Large Language Models") and the
paper's 3-shot prompt.

- tasks: MBPP's test split (task_id 11-510), the first `count` of them in task_id order.
- prompt: the paper's few-shot format with the tests shown, its prompt split's tasks 2, 3 and 4 as the shots:

      You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:

      {test_list, one assert a line}
      [BEGIN]
      {code}
      [DONE]

  three times, then the task itself in the same format, ending just after its "[BEGIN]\\n". The model continues
  this as plain text (no chat template) and stops at "[DONE]".
- grading: the task's test_setup_code, the solution and its test_list asserts run as one program in the sandbox
  (sandbox.py); the task passes iff that program exits 0 (pass@1 of one greedy sample).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

TEST_SPLIT = range(11, 511)   # MBPP's task_id splits: 1-10 prompt, 11-510 test, 511-600 validation, 601-974 train
SHOT_TASK_IDS = (2, 3, 4)     # the paper's shots (from the prompt split)
BEGIN, DONE = "[BEGIN]", "[DONE]"


@dataclass(frozen=True)
class Task:
    task_id: int
    text: str
    code: str              # the reference solution (line ends normalised to \n)
    test_setup_code: str
    test_list: tuple[str, ...]


def read_mbpp(data_dir: Path) -> dict[int, Task]:
    """Every MBPP problem of $DATA_DIR/mbpp/mbpp.jsonl, by task_id."""
    tasks = {}
    for line in (data_dir / "mbpp" / "mbpp.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            tasks[row["task_id"]] = Task(row["task_id"], row["text"], row["code"].replace("\r\n", "\n"),
                                         row["test_setup_code"].replace("\r\n", "\n"), tuple(row["test_list"]))
    return tasks


def first_test_tasks(mbpp: dict[int, Task], count: int) -> list[Task]:
    """The first `count` problems of the test split, in task_id order."""
    split = [mbpp[i] for i in TEST_SPLIT if i in mbpp]
    if not 1 <= count <= len(split):
        raise ValueError(f"MBPP's test split has {len(split)} problems: tasks must be 1 to {len(split)}, not {count}")
    return split[:count]


def _problem(task: Task) -> str:
    return (f"You are an expert Python programmer, and here is your task: {task.text} "
            f"Your code should pass these tests:\n\n" + "\n".join(task.test_list) + f"\n{BEGIN}\n")


def prompt(task: Task, mbpp: dict[int, Task]) -> str:
    """The 3-shot prompt: each shot's problem, reference code and [DONE], then `task`'s problem up to [BEGIN]."""
    shots = "".join(_problem(mbpp[i]) + mbpp[i].code + f"\n{DONE}\n" for i in SHOT_TASK_IDS)
    return shots + _problem(task)


def solution_of(completion: str) -> str:
    """The generated code: the completion up to [DONE] (the model may also stop at max_new_tokens without it)."""
    return completion.split(DONE, 1)[0].rstrip() + "\n"


def fingerprint(tasks: list[Task], prompts: list[str]) -> dict:
    """What the log records of the task set: its task_ids and the sha256 of the tasks and of the exact prompts."""
    return {"tasks": len(tasks), "task_ids": [tasks[0].task_id, tasks[-1].task_id],
            "tasks_sha256": hashlib.sha256(json.dumps([asdict(t) for t in tasks]).encode()).hexdigest(),
            "prompts_sha256": hashlib.sha256(json.dumps(prompts).encode()).hexdigest()}
