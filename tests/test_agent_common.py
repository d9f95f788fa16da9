"""What the agent/ workloads share, without the model: tool calls parsed and validated against their JSON Schema
(invalid ones one sentence, never a crash), the tools themselves, grading, and the SUT's statistics."""
from __future__ import annotations

import pytest

from common import agent_tools, grading
from common.agent import AgentSUT, Episode, ModelCall, ToolCallError, parse_tool_call, run_tool

MOVIES = {"Toy Story": "1995", "The Usual Suspects": "1995", "Heat": "1995"}
TOOLS = agent_tools.make_tools(MOVIES)


def test_a_valid_call_is_parsed_from_the_first_json_object():
    call = parse_tool_call('Sure! {"name": "calculator", "arguments": {"expression": "2 + 3"}} and then {}', TOOLS)
    assert (call.name, call.arguments) == ("calculator", {"expression": "2 + 3"})
    assert run_tool(TOOLS[call.name], call.arguments) == "5"


@pytest.mark.parametrize("reply, reason", [
    ("The answer is 5.", "no JSON object"),
    ('{"name": "calculator", "arguments": {"expression": "2 +', "not valid JSON"),
    ('{"tool": "calculator", "args": {}}', 'not an object {"name"'),
    ('{"name": "divide_by_16", "arguments": {"divisor": 1024}}', "no tool named 'divide_by_16'"),
    ('{"name": "convert_units", "arguments": {"value": 12, "from_unit": "km", "to_unit": "m"}}',
     "arguments of convert_units invalid: 'm' is not one of"),
    ('{"name": "convert_units", "arguments": {"title": "Toy Story"}}', "arguments of convert_units invalid"),
    ('{"name": "movie_year", "arguments": {"title": "Heat", "year": 1995}}', "Additional properties"),
    ('{"name": "calculator", "arguments": {"expression": 42}}', "42 is not of type 'string'"),
])
def test_an_invalid_call_is_one_sentence(reply, reason):
    with pytest.raises(ToolCallError, match=None) as error:
        parse_tool_call(reply, TOOLS)
    assert reason in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("expression, result", [("(17 + 5) * 3", "66"), ("1024 / 16", "64"), ("10 / 4", "2.5"),
                                                ("-3 - 4", "-7"), ("1 / 3", "0.3333")])
def test_calculator(expression, result):
    assert agent_tools.calculate(expression) == result


@pytest.mark.parametrize("expression", ["__import__('os').system('true')", "2 ** 10", "9 ** 9 ** 9", "x + 1",
                                        "len('abc')", "1 if 1 else 2", "1e300 * 1e300"])
def test_the_calculator_evaluates_arithmetic_only(expression):
    observation = run_tool(TOOLS["calculator"], {"expression": expression})
    assert observation.startswith("error: "), observation


def test_unit_conversions_and_their_refusals():
    assert agent_tools.convert(12, "mi", "km") == "19.31"
    assert agent_tools.convert(98.6, "F", "C") == "37"
    assert agent_tools.convert(10, "lb", "kg") == "4.54"
    assert run_tool(TOOLS["convert_units"], {"value": 3, "from_unit": "km", "to_unit": "kg"}) == \
        "error: ValueError: cannot convert km to kg"


def test_movie_titles_are_found_with_or_without_the_moved_article():
    assert agent_tools.plain_title("Usual Suspects, The (1995)") == "The Usual Suspects"
    assert TOOLS["movie_year"].function("the usual suspects") == "1995"
    assert TOOLS["movie_year"].function("Usual Suspects, The") == "1995"
    assert run_tool(TOOLS["movie_year"], {"title": "Nonexistent"}).startswith("error: KeyError")


def test_the_movie_table_is_read_from_movielens(data_dir):
    movies = agent_tools.read_movies(data_dir)
    assert movies["Toy Story"] == "1995" and movies["GoldenEye"] == "1995" and len(movies) > 1500


@pytest.mark.parametrize("answer, expected, how, right", [
    ("51.57", "51.57", "exact", True), ("51.570", "51.57", "exact", True), (" 1,995. ", "1995", "exact", True),
    ("1996", "1995", "exact", False), ("The answer is 1995", "1995", "exact", False),
    ("MENENIUS", "Menenius", "exact", True),
    ("It is Menenius.", "MENENIUS", "contains", True), ("First Citizen says it", "first citizen", "contains", True),
    ("Second Citizen", "Citizen Kane", "contains", False), ("MENENIUSX", "MENENIUS", "contains", False),
    ("anything", "", "contains", False),
])
def test_grading(answer, expected, how, right):
    assert grading.matches(answer, expected, how) is right


def test_the_reference_document_binds_each_grade_to_its_answer():
    responses = {0: b"79", 1: b""}
    grades = {0: grading.grade_text("79", "79"), 1: grading.grade_text("", "51.57")}
    document = grading.reference_document("task_exact_match", responses, grades)
    assert document["samples"]["0"]["answer_sha256"] == grading.sha256_hex(b"79")
    assert grading.mean_grade(responses, document["samples"], 2) == (0.5, [1])
    assert grading.mean_grade({0: b"79"}, document["samples"], 2) == (0.5, [1])  # an unanswered sample scores 0


def test_the_sut_reports_its_own_latencies_and_calls():
    class FakeChat:
        calls: list = []

    chat = FakeChat()

    def solve(index):
        chat.calls.append(ModelCall(0.1 * (index + 1), 100, 10))
        return Episode(answer=str(index), tool_calls=1, invalid_calls=index % 2, right_tool=index == 0,
                       stages={"generate": 0.1})

    class Query:
        def __init__(self, index):
            self.index, self.answer = index, None

        def complete(self, answer):
            self.answer = answer

    sut = AgentSUT(chat, solve)
    queries = [Query(i) for i in range(4)]
    sut.answer(queries)
    assert [q.answer for q in queries] == ["0", "1", "2", "3"]
    stats = sut.statistics()
    assert stats["tasks"] == 4 and stats["model_calls"] == 4 and stats["invalid_tool_calls"] == 2
    assert stats["valid_call_rate"] == 0.5 and stats["dispatch_accuracy"] == 0.25
    assert stats["model_call_latency_ms"]["p50"] == pytest.approx(250.0)
    assert stats["stage_latency_ms"]["generate"]["count"] == 4
    assert sut.statistics() == {}  # each call starts afresh (the accuracy run, then the performance run)
