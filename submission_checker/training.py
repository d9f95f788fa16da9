"""Our suite's training benchmarks: what one log must show against its benchmark definition (the clock, the
quality evals, hyperparameters, provenance, agreement with the system description), what the runs of one result
must share, convergence (RCP-style) and the score. Every number comes from the definition
(<suite>/<workload>/benchmark.yaml) and rules/common.yaml: there is no per-benchmark code here.
"""
from __future__ import annotations

import math

from common import benchmark as definitions_lib
from submission_checker import layout, logrules, scoring, suite
from submission_checker.suite import check_code_folder, check_provenance, check_system_agreement
from submission_checker.util import is_count, is_integer, is_number, rel, same, show

QUALITY_KEY = "{quality.log_key}"
EVALS_MARGIN = 10   # quality evals kept beyond what the cadence allows (all are checked; the kept ones are plotted)


# --- key rules (the definitions are read by suite.py) --------------------------------------------------------------
def key_rules(rules, definition, log_key) -> dict:
    """Common key rules + the definition's hyperparameter keys + its log_rules (merged key by key)."""
    keys = {}
    for key, rule in rules["keys"].items():
        keys[log_key if key == QUALITY_KEY else key] = dict(rule)
    for key in definition.get("hyperparameters") or {}:
        keys.setdefault(key, {"occurs": "at_most_one", "where": "init"})
    for key, rule in (definition.get("log_rules") or {}).items():
        keys[key] = {**keys.get(key, {}), **rule}
    return keys


# --- one benchmark folder -----------------------------------------------------------------------------------------
def check_benchmark(result, bench_dir, root, code_root, system, definitions, definition_error, rules, smoke):
    found = suite.definition_of(result, definitions, definition_error, smoke)
    if found is None:
        return
    definition, smoke_section = found
    quality = definition["quality"]  # validated by common/benchmark.schema.json, defaults set by benchmark.load
    log_key = quality["log_key"]
    result.quality = {"metric": quality["metric"], "log_key": log_key, "target": quality["target"],
                      "direction": quality["direction"]}
    result.required_runs = definition["required_runs"]
    keys = key_rules(rules, definition, log_key)
    files = layout.result_files(result, bench_dir, root)
    layout.check_indices(result, files)
    division = result.division
    for index, path in files:
        evals = EvalRules(definition, log_key)
        run = logrules.read_run(path, rel(path, root), index, keys, rules, log_key, on_eval=evals,
                                keep_evals=evals.keep)
        division = division or run.value("submission_division")
        check_run(run, result, definition, rules, system, division or "closed", smoke, evals)
        result.runs.append(run)
    result.division = division
    check_runs_together(result, definition, rules, smoke, smoke_section, code_root, root)


# --- one log ------------------------------------------------------------------------------------------------------
def check_run(run, result, definition, rules, system, division, smoke, evals):
    """Every rule that one log must satisfy on its own (the evals were checked while the log was read)."""
    suite.check_identity(run, result.benchmark, smoke)
    suite.check_clock(run)
    suite.check_status(run, "run_stop status aborted (did not converge)")
    # quality: the first eval inside the timed region that reaches the target
    evals.finish(run)
    if evals.reached:
        run.samples_to_target = evals.reached.get("samples_count")
        run.epochs_to_target = evals.reached.get("epoch_num")
    elif run.status == "success":
        quality = definition["quality"]
        run.error(f"run_stop says success but no {evals.log_key} inside the timed region reached the target "
                  f"({quality['direction']} to {quality['target']}; best {show(evals.best)})",
                  run.first["run_stop"][0])
    suite.check_init_time(run, definition)
    check_hyperparameters(run, definition, division, rules)
    check_provenance(run, definition, division)
    if system:
        check_system_agreement(run, system, rules)
    run.first = {}  # bounded memory: the rest of the checks use what was extracted above


class EvalRules:
    """The quality evals of one log, checked as the log streams by (so a log of any length is checked whole in
    bounded memory): each a number; a positive integer `step`, later than the eval before (the same step twice is a
    repeat); on the definition's cadence (every quality.eval_every_steps and at quality.max_steps, never after
    max_steps; a definition without eval_every_steps evaluates at any step up to max_steps; a run whose logged
    global_batch_size differs from the definition's, as the open division may, keeps the same cadence in training
    samples: an eval at the first step that reaches each multiple of eval_every_steps x the definition's batch,
    none after the step that reaches max_steps x that batch, as MLPerf evaluates every so many samples); samples_count = step x
    the logged global_batch_size, and epoch_num = samples_count // train_samples where both are logged (the numbers
    the convergence test reads cannot be forged alone); at most quality.max_evaluations evals."""

    def __init__(self, definition: dict, log_key: str):
        quality = definition["quality"]
        self.log_key, self.quality = log_key, quality
        self.every, self.max_steps = quality.get("eval_every_steps"), quality.get("max_steps")
        self.most = quality.get("max_evaluations")
        self.needs_batch = "global_batch_size" in (definition.get("hyperparameters") or {})
        self.definition_batch = (definition.get("hyperparameters") or {}).get("global_batch_size")
        allowed = logrules.KEEP_EVALS
        if self.max_steps:
            allowed = self.max_steps // self.every + 1 if self.every else self.max_steps
        self.keep = min(allowed, self.most or allowed, logrules.KEEP_EVALS) + EVALS_MARGIN
        self.count, self.previous, self.reached, self.best = 0, None, None, None
        self.off, self.n_off = [], 0  # (lineno, step) of the first 5 evals off the cadence, and how many
        self.counted = {}             # kind -> [lineno, message, n]: the first eval with that problem, and how many
        self.batch = self.train_samples = None

    def __call__(self, run, lineno, time_ms, value, metadata):
        self.count += 1
        if self.count == 1:
            self._read_counts(run, lineno)
        if not is_number(value):
            run.error(f"{self.log_key} value {show(value)} is not a number", lineno)
        else:
            if self.reached is None and definitions_lib.target_reached(value, self.quality):
                self.reached = metadata
            if self.best is None or (value < self.best if self.quality["direction"] == "minimize"
                                     else value > self.best):
                self.best = value
        if self.most and self.count == self.most + 1:
            run.error(f"{self.log_key} eval number {self.count}; the definition allows at most {self.most} "
                      "(quality.max_evaluations)", lineno)
        step = metadata.get("step")
        if not is_count(step):
            what = f"metadata step {show(step)} is not a positive integer" if "step" in metadata else \
                "metadata has no step"
            run.error(f"{self.log_key} {what} (each quality eval records the optimizer step it follows)", lineno)
            return
        if self.previous is not None and step <= self.previous[1]:
            if step == self.previous[1]:
                run.error(f"{self.log_key} at step {show(step)} repeats the eval at line {self.previous[0]} (one eval "
                          "per step)", lineno)
            else:
                run.error(f"{self.log_key} at step {show(step)} comes after the eval at step "
                          f"{show(self.previous[1])} (line {self.previous[0]}): steps go back", lineno)
            return
        self.previous = (lineno, step)
        if self._off_cadence(step):
            self.n_off += 1
            if len(self.off) < 5:
                self.off.append((lineno, step))
        if self.batch is None:
            return
        samples, expected = metadata.get("samples_count"), step * self.batch
        if not same(samples, expected):
            self._count("samples", lineno, lambda: f"samples_count {show(samples)} is not step {show(step)} x "
                                                   f"global_batch_size {self.batch} = {show(expected)}")
        elif self.train_samples and "epoch_num" in metadata and \
                not same(metadata["epoch_num"], expected // self.train_samples):
            self._count("epochs", lineno, lambda: f"epoch_num {show(metadata['epoch_num'])} is not samples_count "
                                                  f"{show(expected)} // train_samples {self.train_samples} = "
                                                  f"{show(expected // self.train_samples)}")

    def _off_cadence(self, step: int) -> bool:
        """Whether an eval after this step is off the definition's cadence (in steps, or in samples when the run's
        batch is not the definition's)."""
        if self.batch is None or not is_count(self.definition_batch) or self.batch == self.definition_batch:
            return bool((self.max_steps and step > self.max_steps) or
                        (self.every and step % self.every and step != self.max_steps))
        done, before = step * self.batch, (step - 1) * self.batch  # samples after this step, and before it
        last = self.max_steps * self.definition_batch if self.max_steps else None
        if last is not None and before >= last:
            return True  # after the step that reached max_steps' samples
        reaches_last = last is not None and done >= last
        if not self.every:
            return False
        period = self.every * self.definition_batch
        return not (done // period > before // period or reaches_last)

    def _count(self, kind, lineno, message):
        """One more eval with this kind of problem; the message (a callable) is written for the first only."""
        if kind not in self.counted:
            self.counted[kind] = [lineno, message(), 0]
        self.counted[kind][2] += 1

    def _read_counts(self, run, lineno):
        """global_batch_size and train_samples, logged during initialisation, before the first eval."""
        batch = run.first.get("global_batch_size")
        if batch is not None and is_count(batch[2]):
            self.batch = batch[2]
        elif self.needs_batch:
            where = batch[0] if batch else lineno
            what = f"global_batch_size {show(batch[2])} is not a positive integer" if batch else \
                "no global_batch_size logged before the first eval"
            run.error(f"{what}: the evals' samples_count cannot be checked", where)
        samples = run.first.get("train_samples")
        self.train_samples = samples[2] if samples is not None and is_count(samples[2]) else None

    def finish(self, run):
        """Report what was counted over the whole log (one message per kind, at its first line)."""
        if self.off:
            steps = ", ".join(show(step, 20) for _, step in self.off) + (", ..." if self.n_off > len(self.off) else "")
            cadence = f"every {self.every} steps and at max_steps {self.max_steps}" if self.every else \
                f"by max_steps {self.max_steps}"
            run.error(f"{self.n_off} eval{'s' if self.n_off > 1 else ''} off the definition's cadence ({cadence}): "
                      f"step {steps}", self.off[0][0])
        for lineno, message, n in self.counted.values():
            run.error(message + (f" (and {n - 1} more evals)" if n > 1 else ""), lineno)


def check_hyperparameters(run, definition, division, rules):
    """Closed: every key of the definition's hyperparameters logged, with an allowed value, and no unknown opt_*
    key. Open: the keys listed in open_division_relaxes may take any value (or be absent); the rest as closed."""
    expected = definition.get("hyperparameters") or {}
    relaxed = set(definition["open_division_relaxes"]) if division == "open" else set()
    for key, spec in expected.items():
        if key in relaxed:
            continue
        if key not in run.first:
            run.error(f"hyperparameter {key} is not logged (the {division} division requires {describe(spec)})")
        elif not value_allowed(spec, run.value(key)):
            run.error(f"hyperparameter {key} = {show(run.value(key))}; the {division} division requires "
                      f"{describe(spec)}", run.first[key][0])
    if division == "closed":
        prefixes = tuple(rules.get("hyperparameter_prefixes") or ())
        for key, (lineno, *_) in run.first.items():
            if prefixes and key.startswith(prefixes) and key not in expected:
                run.error(f"hyperparameter {key} is not in the benchmark definition (closed division)", lineno)


def value_allowed(spec, value) -> bool:
    """A definition's hyperparameter entry: a value (exact), a list (allowed set; a logged list must equal the
    whole list or one member), {one_of: [...]} or a range {min: , max: } (either bound optional)."""
    if isinstance(spec, dict) and spec and set(spec) <= {"min", "max"}:
        return is_number(value) and spec.get("min", -math.inf) <= value <= spec.get("max", math.inf)
    if isinstance(spec, dict) and set(spec) == {"one_of"}:
        return any(same(value, member) for member in spec["one_of"])
    if isinstance(spec, list):
        return same(value, spec) or any(same(value, member) for member in spec)
    return same(value, spec)


def describe(spec) -> str:
    if isinstance(spec, dict) and set(spec) <= {"min", "max"}:
        return f"a value in [{spec.get('min', '-inf')}, {spec.get('max', 'inf')}]"
    if isinstance(spec, dict) and set(spec) == {"one_of"}:
        return f"one of {show(spec['one_of'])}"
    if isinstance(spec, list):
        return f"one of {show(spec)}"
    return show(spec)


# --- the runs of one result -----------------------------------------------------------------------------------------
def check_runs_together(result, definition, rules, smoke, smoke_section, code_root, root):
    """Rules over the set of runs: seeds, shared provenance, failed runs, convergence; then the score."""
    runs = result.runs
    seeds = {}
    for run in runs:
        if not is_integer(run.seed):
            continue  # reported with its line (or as missing) by check_run
        if run.seed in seeds:
            result.errors.append(f"{run.file}:{run.seed_line}: seed {run.seed} already used by {seeds[run.seed]} "
                                 "(seeds must differ)")
        seeds.setdefault(run.seed, run.file)
    digests = suite.check_shared_provenance(result)
    suite.collect_run_problems(result)
    check_code_folder(result, code_root, root, digests)
    suite.note_reference_code(result, definition)
    failed = [run for run in runs if run.failed]
    limit = int(rules.get("max_failed_runs", 1))
    for run in failed:
        result.notes.append(f"{run.file}: failed run ({run.failed}); counts as the slowest run")
    if len(failed) > limit:
        result.errors.append(f"{len(failed)} failed runs; olympic scoring tolerates at most {limit}")
    if not result.errors:
        check_convergence(result, definition, rules, smoke, smoke_section)
    scoring.score_result(result, drop=limit)


def check_convergence(result, definition, rules, smoke, smoke_section):
    reference = definition.get("reference_convergence") or {}
    if result.division != "closed" or not reference:
        if result.division == "closed":
            result.notes.append("the definition has no reference_convergence: convergence not compared")
        return
    if smoke and "reference_convergence" not in smoke_section:
        result.notes.append("--smoke: the definition's reference convergence is for the full configuration; skipped")
        return
    unit = "samples_to_target" if "samples_to_target" in reference else "epochs_to_target"
    points = [float(x) for x in reference.get(unit) or []]
    if len(points) < 3:
        result.warnings.append(f"reference_convergence.{unit} has {len(points)} points; at least 3 needed")
        return
    submission = []
    for run in result.runs:
        value = getattr(run, unit)
        submission.append(math.inf if run.failed or not is_number(value) else float(value))
    test = scoring.convergence_test(points, submission, result.required_runs or len(submission),
                                    float(rules.get("convergence_alpha", 0.05)))
    test["unit"] = unit
    result.convergence = test
    if not test["passed"]:
        result.errors.append(
            f"converges significantly faster than the reference: trimmed mean {test['submission_mean']:.6g} "
            f"{unit.replace('_', ' ')} < {test['min_acceptable_mean']:.6g}, the smallest a one-sided t-test "
            f"(alpha {test['alpha']}) accepts against the reference trimmed mean {test['reference_mean']:.6g}")
    elif test["score_scale"] > 1:
        result.scaling_factor = test["score_scale"]
        result.notes.append(f"converges faster than the reference mean (within the accepted range): score scaled "
                            f"by {test['score_scale']:.4f} = reference mean / submission mean, as MLCommons does")
