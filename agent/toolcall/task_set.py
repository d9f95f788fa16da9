"""agent/toolcall's tasks: questions that one tool call answers, generated from a fixed seed (never the run's).

Three kinds in turn: arithmetic (calculator), unit conversion (convert_units) and a movie's release year
(movie_year over MovieLens-100K's u.item). Each task keeps the tool it needs and its expected answer, which is the
tool's own output for the right arguments (common/agent_tools.py). The few-shot examples of the prompt use other
numbers and other movies than any task.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

from common.agent_tools import calculate, convert

TASK_SEED = 20261128  # fixed: every run, seed and submitter answers the same tasks
UNIT_NAMES = {"km": "kilometres", "mi": "miles", "kg": "kilograms", "lb": "pounds", "C": "degrees Celsius",
              "F": "degrees Fahrenheit"}
PAIRS = [("km", "mi"), ("mi", "km"), ("kg", "lb"), ("lb", "kg"), ("C", "F"), ("F", "C")]
EXAMPLE_MOVIES = ("Heat", "Casino")  # used by the prompt's examples, never asked

SYSTEM = ("You call tools. Reply with exactly one JSON object {\"name\": <tool name>, \"arguments\": {...}} and "
          "nothing else.\nTools:\n")
EXAMPLES = [
    ("What is 12 plus 30?", {"name": "calculator", "arguments": {"expression": "12 + 30"}}),
    ("How many kilograms is 10 pounds?", {"name": "convert_units",
                                           "arguments": {"value": 10, "from_unit": "lb", "to_unit": "kg"}}),
    ("In what year was the movie Heat released?", {"name": "movie_year", "arguments": {"title": "Heat"}}),
    ("What is 7 times 9?", {"name": "calculator", "arguments": {"expression": "7 * 9"}}),
    ("Convert 25 degrees Celsius to degrees Fahrenheit.",
     {"name": "convert_units", "arguments": {"value": 25, "from_unit": "C", "to_unit": "F"}}),
    ("When was the movie Casino released?", {"name": "movie_year", "arguments": {"title": "Casino"}}),
]


@dataclass(frozen=True)
class Task:
    question: str
    tool: str        # the tool that answers it
    expected: str    # that tool's output for the right arguments


def arithmetic(rng: random.Random) -> Task:
    a, b = rng.randint(11, 99), rng.randint(3, 49)
    word, symbol = rng.choice([("plus", "+"), ("minus", "-"), ("times", "*"), ("divided by", "/")])
    if symbol == "/":
        a = a * b  # whole quotients
    return Task(f"What is {a} {word} {b}?", "calculator", calculate(f"{a} {symbol} {b}"))


def conversion(rng: random.Random) -> Task:
    source, target = rng.choice(PAIRS)
    value = rng.randint(2, 120)
    return Task(f"Convert {value} {UNIT_NAMES[source]} to {UNIT_NAMES[target]}.", "convert_units",
                convert(value, source, target))


def movie(rng: random.Random, movies: dict[str, str], asked: set) -> Task:
    titles = [t for t in movies if t not in EXAMPLE_MOVIES and t not in asked and t.isascii()]
    title = rng.choice(titles)
    asked.add(title)
    return Task(f"In what year was the movie {title} released?", "movie_year", movies[title])


def make_tasks(movies: dict[str, str], count: int) -> list[Task]:
    rng, asked = random.Random(TASK_SEED), set()
    makers = [arithmetic, conversion, lambda r: movie(r, movies, asked)]
    return [makers[i % 3](rng) for i in range(count)]


def messages(task: Task, tools: dict) -> list[dict]:
    """The chat: the tools (one JSON line each), the worked examples, the question."""
    chat = [{"role": "system", "content": SYSTEM + "\n".join(tool.spec() for tool in tools.values())}]
    for question, call in EXAMPLES:
        chat += [{"role": "user", "content": question}, {"role": "assistant", "content": json.dumps(call)}]
    return chat + [{"role": "user", "content": task.question}]


def fingerprint(tasks: list[Task]) -> dict:
    return {"tasks": len(tasks), "sha256": hashlib.sha256(json.dumps([asdict(t) for t in tasks]).encode()).hexdigest()}
