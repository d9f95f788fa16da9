"""The tools of agent/toolcall and agent/react, and the tasks that need them, built from data the suite mirrors.

Tools (each a common.agent.Tool: a JSON Schema for its arguments and a Python function):
    calculator(expression)                 + - * / and parentheses over numbers, evaluated from Python's AST
                                           (never eval); the result rounded to 4 decimals
    convert_units(value, from_unit, to_unit)   km<->mi, kg<->lb, C<->F; rounded to 2 decimals
    movie_year(title)                      the release year of a MovieLens-100K movie (u.item), found by its title
                                           without the year, case-insensitively ("Usual Suspects, The" or
                                           "The Usual Suspects")

A task's expected answer is what the right tool returns for the right arguments, so the grade checks the whole
chain (tool chosen, arguments, execution) and never a hand-written answer key.
"""
from __future__ import annotations

import ast
import operator
import re
from pathlib import Path

from common.agent import Tool

MOVIE_FILE = Path("movielens-100k") / "ml-100k" / "u.item"

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_MAX_DIGITS = 30  # a calculator result beyond this is refused (2**1000 would be a denial of service)


def number_text(value: float, decimals: int) -> str:
    """A result as the tools print it: rounded, without a trailing .0 (12.0 -> '12')."""
    rounded = round(float(value), decimals)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.{decimals}f}".rstrip("0")


def calculate(expression: str) -> str:
    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value,
                                                                                                      bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            result = _OPERATORS[type(node.op)](value(node.left), value(node.right))
            if abs(result) >= 10 ** _MAX_DIGITS:
                raise ValueError("result too large")
            return result
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        raise ValueError("only numbers, + - * / and parentheses")

    if len(expression) > 200:
        raise ValueError("expression longer than 200 characters")
    return number_text(value(ast.parse(expression, mode="eval").body), 4)


_TO_BASE = {"km": ("length", 1000.0), "mi": ("length", 1609.344), "kg": ("mass", 1.0), "lb": ("mass", 0.45359237)}
UNITS = ["km", "mi", "kg", "lb", "C", "F"]


def convert(value: float, from_unit: str, to_unit: str) -> str:
    if {from_unit, to_unit} <= {"C", "F"}:
        celsius = value if from_unit == "C" else (value - 32) * 5 / 9
        return number_text(celsius if to_unit == "C" else celsius * 9 / 5 + 32, 2)
    if from_unit in ("C", "F") or to_unit in ("C", "F") or _TO_BASE[from_unit][0] != _TO_BASE[to_unit][0]:
        raise ValueError(f"cannot convert {from_unit} to {to_unit}")
    return number_text(value * _TO_BASE[from_unit][1] / _TO_BASE[to_unit][1], 2)


_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_ARTICLE = re.compile(r"^(.*), (The|A|An)$")


def plain_title(title: str) -> str:
    """'Usual Suspects, The (1995)' -> 'The Usual Suspects'."""
    title = _YEAR.sub("", title).strip()
    match = _ARTICLE.match(title)
    return f"{match.group(2)} {match.group(1)}" if match else title


def read_movies(data_dir: Path) -> dict[str, str]:
    """{plain title: release year} of the MovieLens-100K movies whose plain title is unique (ignoring case) and
    whose release date is known, in u.item's order."""
    years: dict[str, tuple[str, set]] = {}
    for line in (Path(data_dir) / MOVIE_FILE).read_text(encoding="latin-1").splitlines():
        fields = line.split("|")
        if len(fields) > 2 and re.fullmatch(r"\d{2}-\w{3}-\d{4}", fields[2]):
            title = plain_title(fields[1])
            years.setdefault(title.lower(), (title, set()))[1].add(fields[2][-4:])
    return {title: next(iter(found)) for title, found in years.values() if len(found) == 1}


def make_tools(movies: dict[str, str]) -> dict[str, Tool]:
    """The three tools; movie_year answers from `movies` (read_movies)."""
    by_key = {title.lower(): year for title, year in movies.items()}

    def movie_year(title: str) -> str:
        key = plain_title(title).lower()
        if key not in by_key:
            raise KeyError(f"no movie titled {title!r}")
        return by_key[key]

    tools = [
        Tool("calculator", "Evaluate an arithmetic expression with + - * / and parentheses",
             {"type": "object", "properties": {"expression": {"type": "string", "maxLength": 200}},
              "required": ["expression"], "additionalProperties": False}, calculate),
        Tool("convert_units", "Convert a quantity between units (km, mi, kg, lb, C, F)",
             {"type": "object", "properties": {"value": {"type": "number"},
                                               "from_unit": {"type": "string", "enum": UNITS},
                                               "to_unit": {"type": "string", "enum": UNITS}},
              "required": ["value", "from_unit", "to_unit"], "additionalProperties": False}, convert),
        Tool("movie_year", "The year a movie was released",
             {"type": "object", "properties": {"title": {"type": "string", "maxLength": 200}},
              "required": ["title"], "additionalProperties": False}, movie_year),
    ]
    return {tool.name: tool for tool in tools}
