"""agent/react's tasks: questions that need one or two tool calls, generated from a fixed seed (never the run's).

Six kinds in turn, three answered by one tool call and three by two or more:
    arithmetic      "What is 48 minus 17?"                                  calculator
    movie year      "In what year was the movie Fargo released?"            movie_year
    conversion      "Convert 40 miles to kilometres."                       convert_units
    years apart     "How many years apart were the movies X and Y released?"   movie_year twice, then the
                                                                            difference (calculator or by hand)
    product plus    "What is 23 times 7, plus 15?"                          calculator (one or two calls)
    convert, add    "Convert 12 kilograms to pounds, then add 30."          convert_units, then calculator
Each task keeps the tool its first call needs and its expected answer, computed by the tools' own functions
(common/agent_tools.py): the two-step answers chain them as the agent must (the conversion's printed result is what
the calculator adds to). The few-shot examples of the prompt (EXAMPLES) use other numbers and movies than any task.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

from common.agent_tools import calculate, convert

TASK_SEED = 20261129  # fixed: every run, seed and submitter answers the same tasks
UNIT_NAMES = {"km": "kilometres", "mi": "miles", "kg": "kilograms", "lb": "pounds", "C": "degrees Celsius",
              "F": "degrees Fahrenheit"}
PAIRS = [("km", "mi"), ("mi", "km"), ("kg", "lb"), ("lb", "kg"), ("C", "F"), ("F", "C")]
EXAMPLE_MOVIES = ("Heat", "Jaws", "Alien")  # used by the prompt's examples, never asked


@dataclass(frozen=True)
class Task:
    question: str
    kind: str
    tool: str        # the tool the first call needs (dispatch accuracy)
    expected: str    # the tools' own output for the right chain of calls


def arithmetic(rng: random.Random, movies) -> Task:
    a, b = rng.randint(11, 99), rng.randint(3, 49)
    word, symbol = rng.choice([("plus", "+"), ("minus", "-"), ("times", "*")])
    return Task(f"What is {a} {word} {b}?", "arithmetic", "calculator", calculate(f"{a} {symbol} {b}"))


def movie_year(rng: random.Random, movies) -> Task:
    title = movies.pick(rng)
    return Task(f"In what year was the movie {title} released?", "movie_year", "movie_year", movies.years[title])


def conversion(rng: random.Random, movies) -> Task:
    source, target = rng.choice(PAIRS)
    value = rng.randint(2, 120)
    return Task(f"Convert {value} {UNIT_NAMES[source]} to {UNIT_NAMES[target]}.", "conversion", "convert_units",
                convert(value, source, target))


def years_apart(rng: random.Random, movies) -> Task:
    first = movies.pick(rng)
    second = movies.pick(rng, other_year_than=movies.years[first])
    later, earlier = sorted((movies.years[first], movies.years[second]), reverse=True)
    return Task(f"How many years apart were the movies {first} and {second} released?", "years_apart",
                "movie_year", calculate(f"{later} - {earlier}"))


def product_plus(rng: random.Random, movies) -> Task:
    a, b, c = rng.randint(11, 49), rng.randint(3, 9), rng.randint(5, 99)
    return Task(f"What is {a} times {b}, plus {c}?", "product_plus", "calculator", calculate(f"{a} * {b} + {c}"))


def convert_then_add(rng: random.Random, movies) -> Task:
    source, target = rng.choice(PAIRS[:4])  # lengths and masses: temperatures do not add
    value, extra = rng.randint(2, 60), rng.randint(5, 50)
    converted = convert(value, source, target)
    return Task(f"Convert {value} {UNIT_NAMES[source]} to {UNIT_NAMES[target]}, then add {extra}.",
                "convert_then_add", "convert_units", calculate(f"{converted} + {extra}"))


KINDS = [arithmetic, movie_year, conversion, years_apart, product_plus, convert_then_add]


class _Movies:
    """The askable movies (ASCII titles, not in the examples), each asked at most once."""

    def __init__(self, years: dict[str, str]):
        self.years = years
        self.unasked = [t for t in years if t not in EXAMPLE_MOVIES and t.isascii()]

    def pick(self, rng: random.Random, other_year_than: str | None = None) -> str:
        choices = [t for t in self.unasked if self.years[t] != other_year_than]
        title = rng.choice(choices)
        self.unasked.remove(title)
        return title


def make_tasks(movies: dict[str, str], count: int) -> list[Task]:
    """`count` tasks, the kinds in turn, from TASK_SEED; movies: {title: year} (common.agent_tools.read_movies)."""
    rng, askable = random.Random(TASK_SEED), _Movies(movies)
    return [KINDS[i % len(KINDS)](rng, askable) for i in range(count)]


def fingerprint(tasks: list[Task]) -> dict:
    return {"tasks": len(tasks), "sha256": hashlib.sha256(json.dumps([asdict(t) for t in tasks]).encode()).hexdigest()}


# --- the prompt -----------------------------------------------------------------------------------------------------
SYSTEM = ("You answer questions with tools. Write a Thought, then either an Action (one JSON object {\"name\": "
          "<tool name>, \"arguments\": {...}}) or, once you know the answer, \"Final Answer: <answer>\". After each "
          "Action you get an Observation with the tool's result.\nTools:\n")


def _call(name: str, **arguments) -> str:
    return json.dumps({"name": name, "arguments": arguments})


# Worked transcripts (fixed; other numbers and movies than any task): each kind once, in the exact format the loop
# parses, so that the model copies the format rather than follows the system text.
EXAMPLES = [
    ("What is 12 plus 30?",
     f"Thought: I add the numbers.\nAction: {_call('calculator', expression='12 + 30')}\nObservation: 42\n"
     "Final Answer: 42"),
    ("In what year was the movie Heat released?",
     f"Thought: I look up the movie.\nAction: {_call('movie_year', title='Heat')}\nObservation: 1995\n"
     "Final Answer: 1995"),
    ("Convert 10 pounds to kilograms.",
     f"Thought: I convert the units.\nAction: {_call('convert_units', value=10, from_unit='lb', to_unit='kg')}\n"
     "Observation: 4.54\nFinal Answer: 4.54"),
    ("How many years apart were the movies Jaws and Alien released?",
     f"Thought: I look up the first movie.\nAction: {_call('movie_year', title='Jaws')}\nObservation: 1975\n"
     f"Thought: I look up the second movie.\nAction: {_call('movie_year', title='Alien')}\nObservation: 1979\n"
     f"Thought: I subtract the earlier year from the later.\nAction: {_call('calculator', expression='1979 - 1975')}"
     "\nObservation: 4\nFinal Answer: 4"),
    ("What is 6 times 7, plus 8?",
     f"Thought: I compute it.\nAction: {_call('calculator', expression='6 * 7 + 8')}\nObservation: 50\n"
     "Final Answer: 50"),
    ("Convert 25 kilometres to miles, then add 4.",
     f"Thought: I convert the units.\nAction: {_call('convert_units', value=25, from_unit='km', to_unit='mi')}\n"
     f"Observation: 15.53\nThought: I add the number.\nAction: {_call('calculator', expression='15.53 + 4')}\n"
     "Observation: 19.53\nFinal Answer: 19.53"),
]


def messages(task: Task, tools: dict) -> list[dict]:
    """The chat: the tools (one JSON line each), the worked transcripts as past turns, the question. The agent's
    own transcript continues the assistant turn that follows (serve.py passes it as the prefix)."""
    chat = [{"role": "system", "content": SYSTEM + "\n".join(tool.spec() for tool in tools.values())}]
    for question, transcript in EXAMPLES:
        chat += [{"role": "user", "content": question}, {"role": "assistant", "content": transcript}]
    return chat + [{"role": "user", "content": task.question}]
