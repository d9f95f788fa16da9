"""agent/toolcall: SmolLM2-135M-Instruct answers each question with one structured tool call, under MLPerf LoadGen.

    python agent/toolcall/serve.py --variant baseline --seed 1 [--smoke] [--data-dir data] [--log-file result_1.txt]

One query is one task (task_set.py): the model sees the three tools as JSON Schemas and six worked examples, and
replies with {"name": ..., "arguments": {...}}. The reply is parsed and validated against the tool's schema
(jsonschema); a valid call is executed and its output is the task's answer; an invalid one is counted and the
answer is empty. Graded by exact match with the right tool's output for the right arguments (common/grading.py).
Logged per run (sut_statistics): valid-call rate, dispatch accuracy (the right tool named), latency per task and
per model call.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)
sys.path.insert(0, str(HERE))

import task_set  # noqa: E402
from common import smollm2  # noqa: E402
from common.agent import AgentSUT, ChatModel, Episode, ToolCallError, parse_tool_call, run_tool  # noqa: E402
from common.agent_tools import make_tools, read_movies  # noqa: E402
from common.grading import grade_text  # noqa: E402
from common.inference import InferenceRun, exit_now  # noqa: E402


def main(argv=None) -> int:
    run = InferenceRun.from_command_line(__doc__, HERE, argv)
    config = run.sut_config
    tokenizer, model, record = smollm2.load(run.definition, run.data_dir, run.device)
    run.log_event("model", record)
    movies = read_movies(run.data_dir)
    tools = make_tools(movies)
    tasks = task_set.make_tasks(movies, config["tasks"])
    run.log_event("task_set", task_set.fingerprint(tasks))
    chat = ChatModel(tokenizer, model, max_new_tokens=config["max_new_tokens"])

    def solve(index: int) -> Episode:
        task = tasks[index]
        reply = chat.complete(task_set.messages(task, tools), stop=("}}",))
        try:
            call = parse_tool_call(reply, tools)
        except ToolCallError:
            return Episode(answer="", tool_calls=1, invalid_calls=1, right_tool=False)
        return Episode(answer=run_tool(tools[call.name], call.arguments), tool_calls=1,
                       right_tool=call.name == task.tool)

    def grade(index: int, answer: str):
        return grade_text(answer, tasks[index].expected, "exact")

    return run.serve(AgentSUT(chat, solve), total_samples=len(tasks), grade=grade)


if __name__ == "__main__":
    exit_now(main())
