"""What the agent/ workloads share: SmolLM2 as a timed chat model, tools whose calls are JSON checked against a
JSON Schema, and the system under test that runs one task per LoadGen query and measures itself.

    chat = ChatModel(tokenizer, model)                    # greedy; every call timed (per-call latency)
    reply = chat.complete(messages, stop=["}}"])
    call = parse_tool_call(reply, tools)                  # ToolCallError (one sentence) when invalid: counted
    sut = AgentSUT(chat, solve)                           # solve(index) -> Episode (answer text, steps, calls)
    return run.serve(sut, total_samples=len(tasks), grade=grade)

A task's answer is text; the workload grades it (common/grading.py) and LoadGen times it. Invalid tool calls never
end a run: the episode records them and goes on (or answers without the tool).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

from common.inference import SystemUnderTest


@dataclass
class ModelCall:
    seconds: float
    prompt_tokens: int
    new_tokens: int


class ChatModel:
    """SmolLM2 answering chat messages greedily (transformers' generate with a KV cache), stopping at the end of
    its turn, after max_new_tokens, or after one of `stop`. Every call is timed into `calls`."""

    def __init__(self, tokenizer, model, max_new_tokens: int = 64):
        self.tokenizer, self.model, self.max_new_tokens = tokenizer, model, max_new_tokens
        self.calls: list[ModelCall] = []

    def render(self, messages: list[dict], prefix: str = "") -> str:
        """The prompt text: the chat template with the assistant's turn opened (and begun with `prefix`)."""
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefix

    def complete(self, messages: list[dict], stop: tuple[str, ...] = (), max_new_tokens: int | None = None,
                 prefix: str = "") -> str:
        """The assistant's reply (after `prefix`, which the prompt already holds), cut just after the first stop
        string when one occurs."""
        return self.complete_text(self.render(messages, prefix), stop, max_new_tokens)

    def complete_text(self, prompt: str, stop: tuple[str, ...] = (), max_new_tokens: int | None = None) -> str:
        """The greedy continuation of a plain-text prompt (no chat template: agent/codegen's few-shot prompt),
        cut just after the first stop string when one occurs."""
        import torch

        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.model.device)
        prompt_tokens = ids["input_ids"].shape[1]
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(**ids, max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=False,
                                      num_beams=1, stop_strings=list(stop) or None, tokenizer=self.tokenizer,
                                      pad_token_id=self.tokenizer.eos_token_id, top_p=None, top_k=None,
                                      temperature=None)
        new = out[0, prompt_tokens:]
        self.calls.append(ModelCall(time.perf_counter() - start, prompt_tokens, len(new)))
        reply = self.tokenizer.decode(new, skip_special_tokens=True)
        for marker in stop:
            if marker in reply:
                reply = reply[:reply.index(marker) + len(marker)]
        return reply


# --- tools ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict              # the JSON Schema of the arguments object
    function: Callable[..., str]  # called with the validated arguments; returns the observation

    def spec(self) -> str:
        """The tool as the prompt shows it: one JSON line."""
        return json.dumps({"name": self.name, "description": self.description, "parameters": self.parameters})


class ToolCallError(ValueError):
    """A reply that is not a valid tool call, in one sentence (counted, never fatal)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict


def parse_tool_call(reply: str, tools: dict[str, Tool]) -> ToolCall:
    """The first JSON object of `reply` as {"name": tool, "arguments": {...}}, its arguments valid against the
    tool's JSON Schema (jsonschema, Draft 2020-12); else ToolCallError."""
    import jsonschema

    start = reply.find("{")
    if start < 0:
        raise ToolCallError("no JSON object in the reply")
    try:
        call, _ = json.JSONDecoder().raw_decode(reply[start:])
    except ValueError as error:
        raise ToolCallError(f"not valid JSON ({error.args[0] if error.args else error})") from None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not isinstance(call.get("arguments"),
                                                                                              dict):
        raise ToolCallError('not an object {"name": <tool>, "arguments": {...}}')
    tool = tools.get(call["name"])
    if tool is None:
        raise ToolCallError(f"no tool named {call['name'][:60]!r}")
    try:
        jsonschema.validate(call["arguments"], tool.parameters, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as error:
        raise ToolCallError(f"arguments of {tool.name} invalid: {error.message[:160]}") from None
    return ToolCall(tool.name, call["arguments"])


def run_tool(tool: Tool, arguments: dict) -> str:
    """The tool's observation; a tool that fails says why instead of ending the task."""
    try:
        return str(tool.function(**arguments))
    except Exception as error:  # noqa: BLE001 - any tool failure is an observation the agent reads
        return f"error: {type(error).__name__}: {error}"


# --- the system under test --------------------------------------------------------------------------------------
@dataclass
class Episode:
    """One task as the agent did it."""
    answer: str
    steps: int = 1                 # model calls
    tool_calls: int = 0            # calls attempted (valid or not)
    invalid_calls: int = 0         # replies that were no valid call (ToolCallError)
    right_tool: bool | None = None # the first call named the tool the task needs (None: not applicable)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (e.g. embed, search, generate)


def percentiles_ms(seconds: list[float]) -> dict:
    import numpy as np

    if not seconds:
        return {}
    values = np.asarray(seconds) * 1e3
    return {"p50": round(float(np.percentile(values, 50)), 3), "p90": round(float(np.percentile(values, 90)), 3),
            "mean": round(float(values.mean()), 3), "count": len(values)}


class AgentSUT(SystemUnderTest):
    """One task per query: solve(index) -> Episode; the episode's answer text is LoadGen's response."""

    def __init__(self, chat: ChatModel, solve: Callable[[int], Episode]):
        self.chat, self.solve = chat, solve
        self.episodes: list[Episode] = []
        self.task_seconds: list[float] = []

    def answer(self, queries):
        for query in queries:
            start = time.perf_counter()
            episode = self.solve(query.index)
            self.task_seconds.append(time.perf_counter() - start)
            self.episodes.append(episode)
            query.complete(episode.answer)

    def statistics(self) -> dict:
        episodes, calls, tasks = self.episodes, self.chat.calls, self.task_seconds
        self.episodes, self.chat.calls, self.task_seconds = [], [], []
        if not episodes:
            return {}
        attempted = sum(e.tool_calls for e in episodes)
        invalid = sum(e.invalid_calls for e in episodes)
        dispatch = [e.right_tool for e in episodes if e.right_tool is not None]
        generated = sum(c.new_tokens for c in calls)
        stages = sorted({name for e in episodes for name in e.stages})
        return {
            "tasks": len(episodes), "task_latency_ms": percentiles_ms(tasks),
            "model_calls": len(calls), "model_call_latency_ms": percentiles_ms([c.seconds for c in calls]),
            "steps_per_task": round(sum(e.steps for e in episodes) / len(episodes), 3),
            "tool_calls": attempted, "invalid_tool_calls": invalid,
            "valid_call_rate": round((attempted - invalid) / attempted, 4) if attempted else None,
            "dispatch_accuracy": round(sum(dispatch) / len(dispatch), 4) if dispatch else None,
            "prompt_tokens_mean": round(sum(c.prompt_tokens for c in calls) / max(1, len(calls)), 1),
            "generated_tokens": generated,
            "generated_tokens_per_second": round(generated / max(1e-9, sum(c.seconds for c in calls)), 2),
            "stage_latency_ms": {name: percentiles_ms([e.stages[name] for e in episodes if name in e.stages])
                                 for name in stages},
        }
