"""agent/rag: retrieval-augmented answering over TinyShakespeare's speeches, under MLPerf LoadGen.

    python agent/rag/serve.py --variant baseline --seed 1 [--smoke] [--data-dir data] [--log-file result_1.txt]

Initialisation (untimed): the corpus (corpus.py: the first `speeches` speeches of the play, one passage each) is
embedded once with all-MiniLM-L6-v2 (sentence-transformers, unit vectors), and the retrieval of every question is
scored once (recall@k and MRR, torchmetrics; logged as the event `retrieval` and gated by quality: gates:
recall_at_k). Also logged: the two trivial baselines' accuracy (the corpus's most frequent speaker; the speaker of
the top-1 passage, no LLM).

One query is one question 'Who says: "<line>"?': embed it (stage embed), exact cosine search over every passage,
top k (stage search), then SmolLM2-135M-Instruct reads the k passages and the question and answers with the
speaker's name (stage generate). Graded by contains-match with the speaker's name (common/grading.py).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402
import retrieval  # noqa: E402
from common import smollm2  # noqa: E402
from common.agent import AgentSUT, ChatModel, Episode  # noqa: E402
from common.grading import grade_text  # noqa: E402
from common.inference import Gate, InferenceRun, exit_now  # noqa: E402

SYSTEM = "You answer questions about speeches from Shakespeare's plays. Reply with the speaker's name only."
# One worked example (adapted from Measure for Measure, far outside the corpus's speeches): without it SmolLM2-135M
# mostly describes the passage ("The passage is a continuation of ...") instead of naming a speaker.
EXAMPLE = [("LUCIO says:\nGood morrow, friar.\nI come to seek the duke.\n\nISABELLA says:\nAlas, what poor "
            "ability's in me\nTo do him good!\n\nWho says: \"To do him good!\"?", "ISABELLA")]


def as_context(passage: str) -> str:
    """A passage as the prompt shows it: "NAME says:" for "NAME:", which matches the question's "Who says"."""
    speaker, lines = passage.split(":\n", 1)
    return f"{speaker} says:\n{lines}"


def messages(question: str, passages: list[str]) -> list[dict]:
    """The chat: the worked example, then the retrieved passages (best first) and the question."""
    chat = [{"role": "system", "content": SYSTEM}]
    for asked, answer in EXAMPLE:
        chat += [{"role": "user", "content": asked}, {"role": "assistant", "content": answer}]
    context = "\n\n".join(as_context(passage) for passage in passages)
    return chat + [{"role": "user", "content": f"{context}\n\n{question}"}]


def baseline_accuracy(answers: list[str], questions: list[corpus.Question]) -> float:
    return sum(grade_text(a, q.expected, "contains").score for a, q in zip(answers, questions)) / len(questions)


def main(argv=None) -> int:
    run = InferenceRun.from_command_line(__doc__, HERE, argv)
    config = run.sut_config
    k = config["top_k"]
    speeches = corpus.read_speeches(run.data_dir, config["speeches"])
    questions = corpus.make_questions(speeches, config["tasks"])
    run.log_event("task_set", corpus.fingerprint(speeches, questions))

    start = time.perf_counter()
    index = retrieval.Index.build(retrieval.load_encoder(run.device), [s.passage for s in speeches])
    run.log_event("corpus_embedded", {"passages": len(speeches), "dim": int(index.embeddings.shape[1]),
                                      "seconds": round(time.perf_counter() - start, 3)})
    # Retrieval is deterministic, so it is scored once here over every question, not per LoadGen query.
    scores = index.scores(index.embed([q.text for q in questions]))
    metrics = retrieval.retrieval_metrics(scores, [q.speech for q in questions], k)
    run.log_event("retrieval", metrics)
    top1 = scores.argmax(dim=1).tolist()
    run.log_event("baselines", {
        "most_frequent_speaker": baseline_accuracy([corpus.most_frequent_speaker(speeches)] * len(questions),
                                                   questions),
        "top1_passage_speaker": baseline_accuracy([speeches[i].speaker for i in top1], questions)})

    tokenizer, model, record = smollm2.load(run.definition, run.data_dir, run.device)
    run.log_event("model", record)
    chat = ChatModel(tokenizer, model, max_new_tokens=config["max_new_tokens"])

    def solve(task: int) -> Episode:
        question = questions[task].text
        t0 = time.perf_counter()
        query = index.embed(question)
        if query.is_cuda:  # CUDA runs asynchronously: wait, so that the embedding's time is not counted as search's
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        top = index.search(query, k)
        t2 = time.perf_counter()
        reply = chat.complete(messages(question, [speeches[i].passage for i in top]), stop=("\n",))
        t3 = time.perf_counter()
        return Episode(answer=reply.strip(), stages={"embed": t1 - t0, "search": t2 - t1, "generate": t3 - t2})

    def grade(task: int, answer: str):
        return grade_text(answer, questions[task].expected, "contains")

    gates = []
    for key, gate in run.quality["gates"].items():
        if key not in metrics:
            raise SystemExit(f"error: benchmark.yaml gates {key!r}, which serve.py does not measure "
                             f"(it measures {', '.join(m for m in metrics if m not in ('k', 'queries'))})")
        gates.append(Gate(key, metrics[key], gate["target"], gate["direction"]))
    return run.serve(AgentSUT(chat, solve), total_samples=len(questions), grade=grade, gates=gates)


if __name__ == "__main__":
    exit_now(main())
