"""agent/codegen: SmolLM2-135M-Instruct writes Python for MBPP problems; each program is run against the problem's
tests in a sandbox, under MLPerf LoadGen.

    python agent/codegen/serve.py --variant baseline --seed 1 [--smoke] [--data-dir data] [--log-file result_1.txt]

One query is one task (task_set.py): the model continues MBPP's 3-shot prompt as plain text (no chat template),
greedily, until "[DONE]" or max_new_tokens; the code before "[DONE]" is the task's answer. It is run with the
task's setup code and asserts inside bubblewrap (sandbox.py) and scores 1 when the program exits 0 (pass@1).
Both stages are timed per task (sut_statistics: stage_latency_ms generate / execute), as is every model call.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)
sys.path.insert(0, str(HERE))

import sandbox  # noqa: E402
import task_set  # noqa: E402
from common import smollm2  # noqa: E402
from common.agent import AgentSUT, ChatModel, Episode  # noqa: E402
from common.grading import Grade  # noqa: E402
from common.inference import InferenceRun, exit_now  # noqa: E402


def main(argv=None) -> int:
    run = InferenceRun.from_command_line(__doc__, HERE, argv)
    config = run.sut_config
    try:
        sandbox.check_available()  # before the model loads: a machine that cannot sandbox cannot grade
    except sandbox.SandboxUnavailable as error:
        raise SystemExit(f"error: {error}") from None
    limits = sandbox.Limits(wall_seconds=config["sandbox_wall_seconds"])
    mbpp = task_set.read_mbpp(run.data_dir)
    tasks = task_set.first_test_tasks(mbpp, config["tasks"])
    prompts = [task_set.prompt(task, mbpp) for task in tasks]
    tokenizer, model, record = smollm2.load(run.definition, run.data_dir, run.device)
    run.log_event("model", record)
    run.log_event("task_set", task_set.fingerprint(tasks, prompts))
    chat = ChatModel(tokenizer, model, max_new_tokens=config["max_new_tokens"])
    executed: dict[int, tuple[str, sandbox.Verdict]] = {}  # each task's latest code and its sandbox verdict

    def solve(index: int) -> Episode:
        task = tasks[index]
        start = time.perf_counter()
        code = task_set.solution_of(chat.complete_text(prompts[index], stop=(task_set.DONE,)))
        generated = time.perf_counter()
        executed[index] = code, sandbox.run_tests(code, list(task.test_list), task.test_setup_code, limits)
        return Episode(answer=code, stages={"generate": generated - start, "execute": time.perf_counter() - generated})

    def grade(index: int, answer: str) -> Grade:
        """The verdict of the code LoadGen returned: the one solve() ran, or (should LoadGen's bytes differ) a
        fresh run of them, so that the grade is always that of the answer it is bound to."""
        code, verdict = executed.get(index, (None, None))
        if code != answer:
            task = tasks[index]
            verdict = sandbox.run_tests(answer, list(task.test_list), task.test_setup_code, limits)
        return Grade(1.0 if verdict.passed else 0.0, "executed", None,
                     verdict.outcome + (f": {verdict.detail}" if verdict.detail else ""))

    return run.serve(AgentSUT(chat, solve), total_samples=len(tasks), grade=grade)


if __name__ == "__main__":
    exit_now(main())
