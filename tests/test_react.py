"""agent/react: the ReAct loop on a scripted stand-in for the model (every kind of invalid call is counted, fed back
and never fatal; the step limit ends an episode), the task set (fixed, its answers the tools' own), and one smoke
run through run_and_time.sh that the submission checker accepts and rejects once tampered with."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from common import benchmark
from common.agent import run_tool
from common.agent_tools import make_tools, read_movies
from common.bench import read_log
from common.grading import grade_text
from conftest import REPO_ROOT, agent_smoke_env, agent_smoke_run, baseline_dir

WORKLOAD = REPO_ROOT / "agent" / "react"
sys.path.insert(0, str(WORKLOAD))

import serve  # noqa: E402
import task_set  # noqa: E402

MOVIES = {"Heat": "1995", "Jaws": "1975", "Alien": "1979", "Fargo": "1996", "Picnic": "1955", "Cobb": "1994",
          "Gaslight": "1944", "Ran": "1985", "Big": "1988", "Babe": "1995", "Kids": "1995", "Shine": "1996"}
TOOLS = make_tools(MOVIES)


class ScriptedChat:
    """Stands in for common.agent.ChatModel: replies with the given texts in turn and records each prefix (the
    transcript the loop fed back)."""

    def __init__(self, *replies: str):
        self.replies, self.prefixes = list(replies), []

    def complete(self, messages, stop=(), max_new_tokens=None, prefix=""):
        assert messages[-1]["role"] == "user" and set(stop) == {"}}", "Observation:"}
        self.prefixes.append(prefix)
        return self.replies.pop(0)


def action(name: str, **arguments) -> str:
    return f"Thought: I act.\nAction: {json.dumps({'name': name, 'arguments': arguments})}"


def episode(chat: ScriptedChat, first_tool: str = "movie_year", max_steps: int = 4):
    return serve.run_episode(chat, [{"role": "user", "content": "q"}], TOOLS, first_tool, max_steps)


# --- the loop -------------------------------------------------------------------------------------------------------
def test_a_valid_call_is_run_and_its_observation_fed_back_before_the_final_answer():
    chat = ScriptedChat(action("movie_year", title="Fargo"), "Thought: I know it.\nFinal Answer: 1996\nmore")
    result = episode(chat)
    assert (result.answer, result.steps, result.tool_calls, result.invalid_calls, result.right_tool) == \
        ("1996", 2, 1, 0, True)
    assert chat.prefixes == ["", action("movie_year", title="Fargo") + "\nObservation: 1996\n"]
    assert set(result.stages) == {"generate", "tools"}


@pytest.mark.parametrize("reply, reason", [
    ('Thought: x\nAction: {"name": "calculator", "arguments": {"expression": "1 +', "not valid JSON"),
    (action("search_web", query="Fargo"), "no tool named 'search_web'"),
    (action("convert_units", value="ten", from_unit="km", to_unit="mi"), "arguments of convert_units invalid"),
    (action("movie_year", title="Fargo", year=1996), "arguments of movie_year invalid"),
    ("Thought: I wonder.", "no JSON object in the reply"),
    ('Action: ["movie_year"]', "no JSON object in the reply"),
])
def test_an_invalid_call_is_counted_and_fed_back_and_the_agent_goes_on(reply, reason):
    chat = ScriptedChat(reply, action("movie_year", title="Fargo"), "Final Answer: 1996")
    result = episode(chat)
    assert (result.answer, result.steps, result.tool_calls, result.invalid_calls) == ("1996", 3, 2, 1)
    assert result.right_tool is False  # the first call was not a valid call of the right tool
    fed_back = chat.prefixes[1]
    assert fed_back.startswith(reply.rstrip()) and f"\nObservation: invalid call: {reason}" in fed_back


def test_a_tool_that_fails_is_an_observation_not_a_crash():
    chat = ScriptedChat(action("movie_year", title="No Such Movie"), action("convert_units", value=5, from_unit="C",
                                                                              to_unit="km"), "Final Answer: ?")
    result = episode(chat)
    assert (result.tool_calls, result.invalid_calls, result.answer) == (2, 0, "?")
    assert "Observation: error: KeyError" in chat.prefixes[1]
    assert "Observation: error: ValueError: cannot convert C to km" in chat.prefixes[2]


def test_at_the_step_limit_the_answer_is_the_last_valid_observation():
    chat = ScriptedChat(action("movie_year", title="Jaws"), action("movie_year", title="Alien"),
                        action("calculator", expression="1979 - 1975"), "not asked")
    result = episode(chat, max_steps=3)
    assert (result.answer, result.steps, result.tool_calls, result.invalid_calls) == ("4", 3, 3, 0)
    assert chat.replies == ["not asked"]  # exactly max_steps model calls


def test_at_the_step_limit_without_a_valid_call_the_answer_is_empty():
    chat = ScriptedChat("Action: {not json}", action("nothing"), "Thought: still thinking")
    result = episode(chat, max_steps=3)
    assert (result.answer, result.steps, result.tool_calls, result.invalid_calls) == ("", 3, 3, 3)
    assert chat.prefixes[2].count("Observation: invalid call:") == 2


def test_an_invented_observation_is_cut_and_the_real_one_fed_back():
    chat = ScriptedChat("Thought: look up\nAction: {\"name\": \"movie_year\", \"arguments\": {\"title\": \"Ran\"}}"
                        "\nObservation:", "Final Answer: 1985")
    assert episode(chat).answer == "1985"
    assert chat.prefixes[1].endswith('"Ran"}}\nObservation: 1985\n') and chat.prefixes[1].count("Observation") == 1


def test_dispatch_is_judged_on_the_first_call_and_a_direct_answer_used_no_tool():
    wrong_first = episode(ScriptedChat(action("calculator", expression="2 * 3"), action("movie_year", title="Big"),
                                       "Final Answer: 1988"))
    assert (wrong_first.right_tool, wrong_first.answer) == (False, "1988")
    direct = episode(ScriptedChat("Thought: I know it.\nFinal Answer: 1996"))
    assert (direct.tool_calls, direct.steps, direct.right_tool, direct.answer) == (0, 1, False, "1996")


def test_a_final_answer_after_an_action_in_the_same_reply_is_not_taken():
    chat = ScriptedChat(action("movie_year", title="Babe") + "\nFinal Answer: 2001", "Final Answer: 1995")
    result = episode(chat)
    assert (result.answer, result.tool_calls) == ("1995", 1)


# --- the tasks -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def movies(data_dir):
    return read_movies(data_dir)


def test_the_task_set_is_fixed_and_mixes_one_and_two_step_kinds(movies):
    count = benchmark.load("react")["sut"]["tasks"]
    tasks = task_set.make_tasks(movies, count)
    assert tasks == task_set.make_tasks(movies, count)
    assert task_set.fingerprint(tasks) == task_set.fingerprint(task_set.make_tasks(movies, count))
    assert task_set.make_tasks(movies, count + 6)[:count] == tasks  # a longer set only adds tasks
    assert Counter(t.kind for t in tasks) == {kind.__name__: count // 6 for kind in task_set.KINDS}
    asked = [title for t in tasks for title in movies if f"movie {title} released" in t.question
             or f"movies {title} and" in t.question or f"and {title} released" in t.question]
    assert len(asked) == len(set(asked)) and not set(asked) & set(task_set.EXAMPLE_MOVIES)


def test_expected_answers_are_the_tools_own_output_for_the_right_chain(movies):
    tools = make_tools(movies)
    for task in task_set.make_tasks(movies, 24):
        q = task.question
        if task.kind == "years_apart":
            first, second = q.removeprefix("How many years apart were the movies ").removesuffix(" released?") \
                .split(" and ", 1)
            years = sorted(int(run_tool(tools["movie_year"], {"title": t})) for t in (first, second))
            expected = run_tool(tools["calculator"], {"expression": f"{years[1]} - {years[0]}"})
            assert int(expected) > 0
        elif task.kind == "convert_then_add":
            value, source, _, target, extra = q.removeprefix("Convert ").rstrip(".").replace(", then add", "").split()
            units = {name: unit for unit, name in task_set.UNIT_NAMES.items()}
            converted = run_tool(tools["convert_units"], {"value": int(value), "from_unit": units[source],
                                                          "to_unit": units[target]})
            expected = run_tool(tools["calculator"], {"expression": f"{converted} + {extra}"})
        elif task.kind == "movie_year":
            expected = run_tool(tools["movie_year"], {"title": q.removeprefix("In what year was the movie ")
                                                      .removesuffix(" released?")})
        else:
            continue  # arithmetic, product_plus, conversion: checked by the examples below
        assert task.expected == expected, task
    assert task_set.product_plus.__name__ in {t.kind for t in task_set.make_tasks(movies, 6)}
    assert task_set.calculate("16 * 9 + 87") == "231" and task_set.convert(50, "mi", "km") == "80.47"


def test_the_prompt_teaches_the_format_with_every_tool_and_no_task(movies):
    tasks = task_set.make_tasks(movies, 12)
    chat = task_set.messages(tasks[0], make_tools(movies))
    assert chat[-1] == {"role": "user", "content": tasks[0].question}
    assert [json.loads(line)["name"] for line in chat[0]["content"].split("Tools:\n")[1].splitlines()] == list(TOOLS)
    assert [m["content"] for m in chat if m["role"] == "assistant"] == [t for _, t in task_set.EXAMPLES]
    assert not {q for q, _ in task_set.EXAMPLES} & {t.question for t in tasks}


@pytest.mark.parametrize("question, transcript", task_set.EXAMPLES)
def test_each_worked_example_is_what_the_loop_and_the_tools_write(movies, question, transcript):
    """Replayed step by step through the loop with the real tools, an example comes out unchanged: its observations
    are the tools' outputs and its format is the one the loop parses."""
    replies = re.split(r"\nObservation: [^\n]*\n", transcript)
    chat = ScriptedChat(*replies)
    result = serve.run_episode(chat, [{"role": "user", "content": question}], make_tools(movies), "calculator", 4)
    assert chat.prefixes[-1] + replies[-1] == transcript
    assert result.invalid_calls == 0 and result.answer == replies[-1].removeprefix("Final Answer: ")


def test_constant_answers_stay_below_the_target(movies):
    definition = benchmark.load("react")
    tasks = task_set.make_tasks(movies, definition["sut"]["tasks"])
    most_common = Counter(t.expected for t in tasks).most_common(1)[0][0]
    for constant in ("0", "1", most_common):
        accuracy = sum(grade_text(constant, t.expected).score for t in tasks) / len(tasks)
        assert accuracy < definition["quality"]["target"], constant


# --- one smoke run through run_and_time.sh ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_results(data_dir, tmp_path_factory):
    """The weights prepared as a submitter prepares them (download_dataset.sh; shared with the other SmolLM2
    workloads' tests through the data folder), then one smoke run of every variant."""
    results = tmp_path_factory.mktemp("react_results")
    prepare = subprocess.run(["bash", str(WORKLOAD / "download_dataset.sh")], env=agent_smoke_env(data_dir, results),
                             capture_output=True, text=True, timeout=900)
    assert prepare.returncode == 0, prepare.stdout[-2000:] + prepare.stderr[-2000:]
    return agent_smoke_run("react", data_dir, results)


def test_the_smoke_run_counts_its_invalid_calls_and_is_valid(smoke_results):
    events, problems = read_log(baseline_dir(smoke_results, "react") / "result_0.txt")
    assert not problems, problems
    by_key = {e["key"]: e for e in events}
    assert by_key["result_validity"]["value"] == "VALID" and by_key["run_stop"]["metadata"]["status"] == "success"
    smoke = benchmark.load("react", smoke=True)["sut"]
    assert by_key["task_set"]["value"]["tasks"] == smoke["tasks"]
    accuracy_stats = [e for e in events if e["key"] == "sut_statistics"][0]["value"]
    # replies cut at 8 tokens are never a whole call: every step is an invalid call, counted, until the step limit
    assert accuracy_stats["tasks"] == smoke["tasks"]
    assert accuracy_stats["steps_per_task"] == smoke["max_steps"]
    assert accuracy_stats["tool_calls"] == accuracy_stats["invalid_tool_calls"] == smoke["tasks"] * smoke["max_steps"]
    assert accuracy_stats["valid_call_rate"] == 0.0 and accuracy_stats["dispatch_accuracy"] == 0.0


def test_checker_passes_the_real_smoke_results(smoke_results):
    from submission_checker import checker

    report = checker.check(smoke_results, smoke=True)
    assert report.valid, report.errors + [e for r in report.results for e in r.errors]


def test_checker_fails_a_tampered_answer(smoke_results, tmp_path):
    from submission_checker import checker

    copy = tmp_path / "results"
    shutil.copytree(smoke_results, copy)
    accuracy_log = baseline_dir(copy, "react") / "loadgen_0" / "accuracy" / "mlperf_log_accuracy.json"
    entries = json.loads(accuracy_log.read_text())
    entries[0]["data"] = "31393936"  # "1996" in hex, as LoadGen writes answer bytes
    accuracy_log.write_text(json.dumps(entries))
    report = checker.check(copy, smoke=True)
    problems = " | ".join(report.errors + [e for r in report.results for e in r.errors])
    assert not report.valid and "mlperf_log_accuracy.json" in problems, problems
