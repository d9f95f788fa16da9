"""agent/react: SmolLM2-135M-Instruct answers each question in a ReAct loop (think, act, observe), under MLPerf LoadGen.

    python agent/react/serve.py --variant baseline --seed 1 [--smoke] [--data-dir data] [--log-file result_1.txt]

One query is one task (task_set.py), which needs one or two tool calls. At each step the model continues its own
transcript, in the format of six worked examples: "Thought: ...\\nAction: {json call}" or "Final Answer: ...".
An action is parsed and validated against its tool's JSON Schema (common.agent.parse_tool_call); a valid one runs
and "Observation: <result>" is appended; an invalid one is counted and "Observation: invalid call: <why>" is
appended instead, so that the model may correct itself. The episode ends at a final answer or after max_steps model
calls; then the answer is the last valid call's observation (empty when there was none). Graded by exact match
with the tools' own output for the right chain of calls (common/grading.py). Logged per run (sut_statistics):
steps (model calls) per task, tool calls, valid-call rate, dispatch accuracy (the first call names the right tool),
latency per task, per model call and per stage (generation, tools).
"""
from __future__ import annotations

import re
import sys
import time
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

# A reply ends after its action's JSON (the arguments object closes it: "}}") or where the model starts to invent
# the observation itself; a final answer ends with the model's turn (the examples end there).
STOP = ("}}", "Observation:")
FINAL = re.compile(r"Final Answer:[ \t]*([^\n]*)")


def run_episode(chat, messages: list[dict], tools: dict, first_tool: str, max_steps: int) -> Episode:
    """One task: at most max_steps model calls, each continuing the transcript (the assistant turn's prefix).
    `chat` is a common.agent.ChatModel or anything with its complete(messages, stop=, prefix=)."""
    transcript, answer = "", ""
    calls = invalid = 0
    right_tool = False  # stays False when the model answers without calling any tool: every task needs one
    stages = {"generate": 0.0, "tools": 0.0}
    for step in range(1, max_steps + 1):
        start = time.perf_counter()
        reply = chat.complete(messages, stop=STOP, prefix=transcript)
        stages["generate"] += time.perf_counter() - start
        final = FINAL.search(reply)
        action_at = reply.find("Action:")
        if final and (action_at < 0 or final.start() < action_at):
            return Episode(answer=final.group(1).strip(), steps=step, tool_calls=calls, invalid_calls=invalid,
                           right_tool=right_tool, stages=stages)
        reply = reply.removesuffix("Observation:").rstrip()
        calls += 1
        start = time.perf_counter()
        try:
            call = parse_tool_call(reply[action_at:] if action_at >= 0 else reply, tools)
        except ToolCallError as error:
            invalid += 1
            observation = f"invalid call: {error}"
        else:
            if calls == 1:
                right_tool = call.name == first_tool
            observation = answer = run_tool(tools[call.name], call.arguments)
        stages["tools"] += time.perf_counter() - start
        transcript += f"{reply}\nObservation: {observation}\n"
    return Episode(answer=answer, steps=max_steps, tool_calls=calls, invalid_calls=invalid, right_tool=right_tool,
                   stages=stages)


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
        return run_episode(chat, task_set.messages(task, tools), tools, task.tool, config["max_steps"])

    def grade(index: int, answer: str):
        return grade_text(answer, tasks[index].expected, "exact")

    return run.serve(AgentSUT(chat, solve), total_samples=len(tasks), grade=grade)


if __name__ == "__main__":
    exit_now(main())
