"""The inference harness: MLPerf LoadGen around a workload's system under test (SUT), so that a workload's serve.py
keeps only its model, its query samples and how it answers them. The counterpart of common/training.py.

    run = InferenceRun.from_command_line(__doc__, HERE)   # arguments, definition, variant, seed, log preamble
    ... load the model, build the query samples ...
    run.log_event("checkpoint", {...})                    # what is served (initialisation, untimed)
    sut = MySUT(...)                                      # a SystemUnderTest: answers lists of Query
    return run.serve(sut, total_samples=len(prompts), reference=full_recompute_answer,
                     gates=[Gate("checkpoint_val_loss", loss, target, "minimize")])

An agent workload answers with text and is graded (exact match, or its code run against the task's tests):
`run.serve(sut, total_samples, grade=grade)` with grade(index, answer_text) -> grading.Grade; the accuracy is
the mean grade and reference_outputs.json holds each sample's grade bound to the sha256 of its answer.

    if __name__ == "__main__":
        exit_now(main())

serve() runs LoadGen twice with the variant's settings from benchmark.yaml (common/loadgen.py sets them field by
field): the accuracy run (AccuracyOnly; every sample once; untimed), scored against the workload's reference
answers and its extra gates, then the performance run, bracketed by run_start/run_stop. LoadGen's own files are
kept beside the log (loadgen_<i>/accuracy/ and loadgen_<i>/performance/ next to result_<i>.txt), with the
reference answers; the log repeats LoadGen's verdict and figures and records the sha256 of every file. The exit
code is 0 only when LoadGen judged the performance run VALID and every gate held.

The log (after the preamble of common/runlog.py):

    inference_variant, loadgen_scenario, loadgen_settings, sut_config, (the workload's events, e.g. checkpoint),
    accuracy_samples, performance_sample_count, init_stop
    eval_start, <gate events>, <quality.log_key> (token agreement or mean grade), [sut_statistics], eval_stop
                                                                                         (accuracy run, untimed)
    run_start, result_validity, result_* (LoadGen's figures), [sut_statistics], loadgen_files, energy,
    run_stop {status}
"""
from __future__ import annotations

import argparse
import array
import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from common import benchmark, fetch, grading, loadgen
from common.energy import EnergyMeter
from common.mlperf_log import LogFileError, MLPerfLogger, constants
from common.runlog import exit_now, open_run_log  # noqa: F401  (exit_now: serve.py imports it from here)
from common.runtime import seed_everything, seed_value, select_device


# --- what a workload implements ------------------------------------------------------------------------------------
class _HarnessClock:
    """Seconds this harness spends between LoadGen and the SUT (answers converted and handed to LoadGen, queries
    created, queued and batched), summed over a LoadGen run: the harness overhead logged at run_stop. The SUT's
    own time (sut.answer less these calls) is not in it."""
    seconds = 0.0


class Query:
    """One query sample LoadGen issued: `index` is the sample's index in the workload's query sample library.
    Answer it with complete(tokens) exactly once; a token-generating SUT calls first_token(tokens) as soon as the
    first token exists (LoadGen's time to first token)."""

    __slots__ = ("id", "index")

    def __init__(self, sample_id: int, index: int):
        self.id, self.index = sample_id, index

    def first_token(self, tokens) -> None:
        import mlperf_loadgen as lg

        t0 = time.perf_counter()
        data = _int32_bytes(tokens)
        lg.FirstTokenComplete([lg.QuerySampleResponse(self.id, data.buffer_info()[0], len(data) * data.itemsize,
                                                      len(data))])
        _HarnessClock.seconds += time.perf_counter() - t0

    def complete(self, tokens) -> None:
        """Answer with tokens (int32 each) or, an agent's answer, with text (sent as UTF-8 bytes)."""
        import mlperf_loadgen as lg

        t0 = time.perf_counter()
        if isinstance(tokens, str):
            data, count = array.array("B", tokens.encode("utf-8")), 0
        else:
            data = _int32_bytes(tokens)  # LoadGen copies the bytes (accuracy run) before QuerySamplesComplete returns
            count = len(data)
        lg.QuerySamplesComplete([lg.QuerySampleResponse(self.id, data.buffer_info()[0], len(data) * data.itemsize,
                                                        count)])
        _HarnessClock.seconds += time.perf_counter() - t0


class _BareQuery(Query):
    """A query answered outside LoadGen (--bare-loop): the answer is counted, not sent."""

    __slots__ = ("tokens",)

    def __init__(self, index: int):
        super().__init__(0, index)
        self.tokens = 0

    def first_token(self, tokens) -> None:
        _int32_bytes(tokens)  # the same conversion cost as a real answer

    def complete(self, tokens) -> None:
        self.tokens = 0 if isinstance(tokens, str) else len(_int32_bytes(tokens))


def _int32_bytes(tokens) -> array.array:
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.tolist()
    return array.array("i", tokens)  # int32, native (little-endian) order: common.loadgen.tokens_of reads it


class SystemUnderTest:
    """What a workload's serve.py subclasses. LoadGen hands the harness query samples; the harness hands the SUT
    lists of at most `max_batch` Query objects (one at a time in SingleStream, chunks of the single query in
    Offline, what has arrived in Server) and the SUT answers every one of them."""

    max_batch = 1   # the most queries the SUT answers together

    def answer(self, queries: list[Query]) -> None:
        raise NotImplementedError

    def load_samples(self, indices: list[int]) -> None:
        """LoadGen's query sample library asks for these samples to be in memory (default: all always are)."""

    def unload_samples(self, indices: list[int]) -> None:
        """...and says these are no longer needed."""

    def statistics(self) -> dict:
        """What the SUT measured itself since the last call (an agent: model calls, tool calls, steps, per-call
        latency); logged as sut_statistics after each LoadGen run when not empty. Calling it starts afresh."""
        return {}


@dataclass
class Gate:
    """An accuracy condition beyond the answers (e.g. the checkpoint's validation loss meets the training target),
    logged as its own event during the accuracy run; a result counts only when it holds."""
    key: str
    value: float
    target: float
    direction: str  # minimize | maximize

    @property
    def holds(self) -> bool:
        return benchmark.target_reached(self.value, {"target": self.target, "direction": self.direction})


def peak_memory_mb() -> float:
    """The process's peak resident memory (Linux reports KiB), or on CUDA the peak memory torch allocated."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- the harness ------------------------------------------------------------------------------------------------
def parse_args(description: str, argv=None) -> argparse.Namespace:
    """The command line every workload's serve.py accepts (run_and_time.sh passes these)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=seed_value, required=True)
    parser.add_argument("--variant", required=True, help="a key of the definition's performance: section")
    parser.add_argument("--smoke", action="store_true", help="tiny configuration used by the tests (seconds)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    parser.add_argument("--log-file", type=Path, default=None,
                        help="MLLOG output; LoadGen's files go to the loadgen_<i>/ folder beside it")
    parser.add_argument("--device", default=os.environ.get("DEVICE"), help="cuda, mps or cpu (default: best available)")
    parser.add_argument("--bare-loop", type=int, default=0, metavar="N",
                        help="measure the harness: answer N queries in a plain loop without LoadGen, print the "
                             "timing, write no log (the README's LoadGen overhead figure)")
    return parser.parse_args(argv)


def loadgen_dir_for(log_file: Path | None) -> Path:
    """result_<i>.txt keeps LoadGen's files in loadgen_<i>/ beside it; another name <stem>.txt in <stem>_loadgen/."""
    if log_file is None:
        return Path("loadgen_output")
    stem = log_file.stem
    name = "loadgen_" + stem[len("result_"):] if stem.startswith("result_") else stem + "_loadgen"
    return log_file.parent / name


class InferenceRun:
    """One run of one variant of an inference benchmark: definition, variant settings, device, seed, MLPerf log."""

    @classmethod
    def from_command_line(cls, description: str, workload_dir: Path, argv=None) -> "InferenceRun":
        args = parse_args(description, argv)
        try:
            return cls(benchmark.load(workload_dir, smoke=args.smoke), args)
        except (benchmark.DefinitionError, fetch.DatasetError, LogFileError) as error:
            raise SystemExit(f"error: {error}") from None

    def __init__(self, definition: dict, args):
        if definition["kind"] != "inference":
            raise SystemExit(f"error: {definition['name']} is a {definition['kind']} benchmark, not inference")
        variants = definition["performance"]
        if args.variant not in variants:
            raise SystemExit(f"error: {definition['name']} has no variant {args.variant!r} "
                             f"(its variants: {', '.join(variants)})")
        self.definition, self.variant_name = definition, args.variant
        self.variant = variants[args.variant]
        if os.environ.get("USER_CONF"):  # the submitter's tuning of target_qps / expected latency (user.conf)
            import yaml

            try:
                user_conf = yaml.safe_load(Path(os.environ["USER_CONF"]).read_text())
                self.variant = loadgen.apply_user_conf(args.variant, self.variant, user_conf)
            except (OSError, yaml.YAMLError, ValueError) as error:
                raise SystemExit(f"error: USER_CONF {os.environ['USER_CONF']}: {error}") from None
        self.scenario = self.variant["scenario"]
        self.sut_config = loadgen.sut_config(definition, args.variant)
        self.quality = loadgen.variant_quality(definition, args.variant)
        self.seed, self.data_dir = args.seed, Path(args.data_dir)
        self.device = select_device(args.device)
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or self.default_threads()))
        seed_everything(self.seed)
        self.loadgen_dir = loadgen_dir_for(args.log_file)
        if self.loadgen_dir.exists():
            raise LogFileError(f"{self.loadgen_dir} already exists: LoadGen's files of another run are there "
                               "(choose a new log file)")
        self.log_file, self.log = args.log_file, None
        self.bare_loop = args.bare_loop
        if self.bare_loop:  # a measurement of the harness, never a result: nothing is logged
            self.log, self.provenance_s = MLPerfLogger(None, enabled=False), 0.0

    def default_threads(self) -> int:
        """torch's CPU threads: every core, except in Server, where LoadGen's issuing thread and the harness's
        worker run alongside the model: one core is left to them (measured on 2 cores: with both cores for torch
        the oversubscribed threads made each decode step 3.3 ms instead of 2.0 ms). OMP_NUM_THREADS overrides."""
        cores = os.cpu_count() or 1
        return max(1, cores - 1) if self.scenario == "Server" else cores

    def _open_log(self) -> None:
        """Create the log at the first event, so that what serve.py checks before (e.g. its checkpoint) can
        still refuse a run without leaving a log behind."""
        if self.log is not None:
            return
        try:
            self.log, self.provenance_s = open_run_log(self.definition, self.data_dir, self.log_file, self.seed)
        except (fetch.DatasetError, LogFileError) as error:
            raise SystemExit(f"error: {error}") from None
        self.log.event("inference_variant", self.variant_name)
        self.log.event("loadgen_scenario", self.scenario)
        self.log.event("loadgen_settings", loadgen.loadgen_settings(self.variant))
        # serve.py's parameters change what is measured (batch size, prompt length): the closed division requires
        # the definition's, so they are logged (benchmark.yaml is data, outside the code hash)
        self.log.event("sut_config", self.sut_config)

    def log_event(self, key: str, value, metadata: dict | None = None) -> None:
        self._open_log()
        self.log.event(key, value, metadata=metadata)

    # --- the two LoadGen runs ---------------------------------------------------------------------------------------
    def serve(self, sut: SystemUnderTest, total_samples: int, reference=None, gates: list[Gate] = (),
              performance_samples: int | None = None, grade=None) -> int:
        """Run the accuracy run and the performance run of this variant on `sut`; log; return the exit code.
        Either reference(index) -> the expected tokens of sample `index` (the workload's full-recompute answer),
        or grade(index, answer_text) -> grading.Grade (answers are text: agents)."""
        if (reference is None) == (grade is None):
            raise ValueError("serve() takes either reference= (token answers) or grade= (text answers)")
        performance_samples = performance_samples or self.variant.get("performance_sample_count") or total_samples
        if self.bare_loop:
            return self._bare_loop(sut, total_samples)
        self._open_log()
        self.log.event("accuracy_samples", total_samples)
        self.log.event("performance_sample_count", performance_samples)
        self.log.end(constants.INIT_STOP)

        # The accuracy run: untimed, every sample once; the answers are scored against the reference.
        self.log.start(constants.EVAL_START, metadata={"samples_count": total_samples})
        for gate in gates:
            self.log.event(gate.key, gate.value, metadata={"target": gate.target, "direction": gate.direction})
        accuracy_dir = self.loadgen_dir / "accuracy"
        sut.statistics()  # start afresh
        self._loadgen_run(sut, total_samples, performance_samples, "AccuracyOnly", accuracy_dir)
        responses = loadgen.read_accuracy(accuracy_dir / loadgen.ACCURACY)
        if grade is None:
            answers = {index: loadgen.tokens_of(data) for index, data in responses.items()}
            expected = {index: [int(t) for t in reference(index)] for index in range(total_samples)}
            document = {"format": "int32 tokens", "samples": {str(i): tokens for i, tokens in expected.items()}}
            agreement, wrong = loadgen.token_agreement(answers, expected)
        else:
            grades = {index: grade(index, data.decode("utf-8", errors="replace")) for index, data in responses.items()}
            document = grading.reference_document(self.quality["metric"], responses, grades)
            agreement, wrong = grading.mean_grade(responses, document["samples"], total_samples)
        (accuracy_dir / loadgen.REFERENCE).write_text(json.dumps(document) + "\n")
        self.log.event(self.quality["log_key"], agreement, metadata={"samples": total_samples, "wrong": wrong[:10],
                                                                     "samples_count": total_samples})
        statistics = sut.statistics()
        if statistics:
            self.log.event("sut_statistics", statistics, metadata={"mode": "AccuracyOnly"})
        self.log.end(constants.EVAL_STOP, metadata={"samples_count": total_samples})
        accurate = benchmark.target_reached(agreement, self.quality) and all(gate.holds for gate in gates)
        print(f"{self.variant_name}: accuracy run: {self.quality['metric']} {agreement:.4f} "
              f"(target {self.quality['target']})" + "".join(f", {g.key} {g.value:.4f} (target {g.target})"
                                                             for g in gates), flush=True)

        # The performance run: the timed region.
        energy = EnergyMeter()
        self.log.start(constants.RUN_START)
        energy.start()
        performance_dir = self.loadgen_dir / "performance"
        self._loadgen_run(sut, total_samples, performance_samples, "PerformanceOnly", performance_dir)
        joules = energy.stop()
        detail = loadgen.read_detail(performance_dir / loadgen.DETAIL)
        for key in loadgen.reported_keys(detail):
            self.log.event(key, detail[key])
        statistics = sut.statistics()
        if statistics:
            self.log.event("sut_statistics", statistics, metadata={"mode": "PerformanceOnly"})
        files = {f"{part}/{name}": fetch.sha256_of(self.loadgen_dir / part / name)
                 for part, names in (("performance", loadgen.PERFORMANCE_FILES), ("accuracy", loadgen.ACCURACY_FILES))
                 for name in names}
        self.log.event("loadgen_files", files)
        self.log.event("energy", joules)
        valid = detail.get("result_validity") == "VALID"
        key, factor = loadgen.metric_key(self.scenario, self.variant["metric"])
        value = detail.get(key)
        value = value * factor if isinstance(value, (int, float)) else None
        status = constants.SUCCESS if valid and accurate else constants.ABORTED
        self.log.end(constants.RUN_STOP, metadata={
            "status": status, "validity": detail.get("result_validity"), "accuracy_gate": accurate,
            "metric": self.variant["metric"], "value": value, "provenance_ms": round(self.provenance_s * 1e3, 1),
            "loadgen_run_ms": round(self.loadgen_seconds * 1e3, 1),
            "harness_overhead_ms": round(self.harness_seconds * 1e3, 3), "peak_memory_mb": peak_memory_mb()})
        self.log.close()
        shown = f"{value:.6g}" if value is not None else "n/a"
        print(f"{self.variant_name}: {self.scenario} {detail.get('result_validity')}, {self.variant['metric']} "
              f"{shown}; accuracy gate {'met' if accurate else 'FAILED'}", flush=True)
        if not valid:
            print(f"{self.variant_name}: LoadGen: {detail.get('result_invalid_reason', 'INVALID')}", flush=True)
        return 0 if status == constants.SUCCESS else 1

    def _bare_loop(self, sut: SystemUnderTest, total: int) -> int:
        """The same queries without LoadGen: SingleStream-like one at a time (mean latency), else in chunks of
        sut.max_batch (throughput). Prints one JSON line; the README compares it with LoadGen's figures."""
        indices = [i % total for i in range(self.bare_loop)]
        one_at_a_time = self.scenario in ("SingleStream", "Server")
        chunk = 1 if one_at_a_time else sut.max_batch
        sut.answer([_BareQuery(i) for i in indices[:chunk]])  # warm-up, as LoadGen's first query also is
        latencies, tokens = [], 0
        start = time.perf_counter()
        for first in range(0, len(indices), chunk):
            queries = [_BareQuery(i) for i in indices[first:first + chunk]]
            t0 = time.perf_counter()
            sut.answer(queries)
            latencies.append(time.perf_counter() - t0)
            tokens += sum(q.tokens for q in queries)
        elapsed = time.perf_counter() - start
        latencies.sort()
        print(json.dumps({"variant": self.variant_name, "bare_loop_queries": len(indices), "seconds": elapsed,
                          "samples_per_second": len(indices) / elapsed, "tokens_per_second": tokens / elapsed,
                          "mean_latency_ms": 1e3 * sum(latencies) / len(latencies),
                          "p90_latency_ms": 1e3 * latencies[int(0.9 * (len(latencies) - 1))]}), flush=True)
        return 0

    def _loadgen_run(self, sut: SystemUnderTest, total: int, performance: int, mode: str, outdir: Path) -> None:
        import mlperf_loadgen as lg

        outdir.mkdir(parents=True, exist_ok=False)
        settings = loadgen.test_settings(self.variant, mode)
        output = lg.LogOutputSettings()
        output.outdir = str(outdir)
        output.copy_summary_to_stdout = False
        log_settings = lg.LogSettings()
        log_settings.log_output = output
        log_settings.enable_trace = False
        issuer = _Issuer(sut, threaded=self.scenario == "Server")
        lg_sut = lg.ConstructSUT(issuer.issue, issuer.flush)
        lg_qsl = lg.ConstructQSL(total, performance, sut.load_samples, sut.unload_samples)
        _HarnessClock.seconds = 0.0
        t0 = time.perf_counter()
        try:
            lg.StartTestWithLogSettings(lg_sut, lg_qsl, settings, log_settings)
            self.loadgen_seconds, self.harness_seconds = time.perf_counter() - t0, _HarnessClock.seconds
        finally:
            issuer.stop()
            lg.DestroyQSL(lg_qsl)
            lg.DestroySUT(lg_sut)
            trace = outdir / "mlperf_log_trace.json"
            if trace.exists() and trace.stat().st_size == 0:  # LoadGen creates it even with tracing off
                trace.unlink()


class _Issuer:
    """LoadGen's issue_query callback. SingleStream, MultiStream and Offline answer on LoadGen's thread, in chunks
    of sut.max_batch; Server queues the queries and one worker answers what has arrived (up to max_batch), so
    that LoadGen's issuing thread never waits for the model."""

    def __init__(self, sut: SystemUnderTest, threaded: bool):
        self.sut = sut
        self.pending: queue.SimpleQueue | None = queue.SimpleQueue() if threaded else None
        self.worker = threading.Thread(target=self._work, daemon=True) if threaded else None
        if self.worker:
            self.worker.start()

    def issue(self, samples) -> None:
        t0 = time.perf_counter()
        queries = [Query(s.id, s.index) for s in samples]
        if self.pending is not None:
            for query in queries:
                self.pending.put(query)
            _HarnessClock.seconds += time.perf_counter() - t0
            return
        answering = 0.0
        for start in range(0, len(queries), self.sut.max_batch):
            t1 = time.perf_counter()
            self.sut.answer(queries[start:start + self.sut.max_batch])
            answering += time.perf_counter() - t1
        _HarnessClock.seconds += time.perf_counter() - t0 - answering

    def flush(self) -> None:
        pass

    def _work(self) -> None:
        while True:
            batch = [self.pending.get()]
            if batch[0] is None:
                return
            t0 = time.perf_counter()
            while len(batch) < self.sut.max_batch:
                try:
                    query = self.pending.get_nowait()
                except queue.Empty:
                    break
                if query is None:
                    self.pending.put(None)
                    break
                batch.append(query)
            _HarnessClock.seconds += time.perf_counter() - t0
            self.sut.answer(batch)

    def stop(self) -> None:
        if self.worker:
            self.pending.put(None)
            self.worker.join()
