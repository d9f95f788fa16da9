"""What every log of this suite says, whatever the kind of benchmark (training or inference): the definitions, the
log's identity (benchmark, smoke configuration, seed), its clock, provenance, agreement with the system description,
and what the runs of one result must share (code, environment, hardware, division; the code folder of the open
division). training.py and inference.py add the rules of their kind; nothing here knows a benchmark.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from common import benchmark as definitions_lib
from submission_checker import layout, schema
from submission_checker.util import is_integer, is_number, rel, show


# --- definitions --------------------------------------------------------------------------------------------------
def find_definitions(definitions_root):
    """({benchmark name: definition folder}, problem suffix for 'unknown benchmark' messages)."""
    root = Path(definitions_root) if definitions_root else definitions_lib.REPO_ROOT
    try:
        return definitions_lib.workload_dirs(root), ""
    except (OSError, definitions_lib.DefinitionError) as error:
        return {}, f"; the benchmark definitions under {root} could not be read: {error}"


@lru_cache(maxsize=None)
def load_definition(directory: Path, smoke: bool) -> tuple[dict, dict]:
    """The definition (smoke overrides applied with --smoke) and its raw smoke section. Callers do not mutate."""
    raw = yaml.safe_load((directory / definitions_lib.DEFINITION_FILE).read_text())
    return definitions_lib.load(directory, smoke=smoke), raw.get("smoke") or {}


def definition_of(result, definitions, definition_error, smoke):
    """(definition, smoke section) of the result's benchmark, or None with the reason added to result.errors."""
    if result.benchmark not in definitions:
        known = ", ".join(sorted(definitions)) or "none"
        result.errors.append(f"{result.path}: unknown benchmark '{result.benchmark}' (benchmarks with a definition: "
                             f"{known}){definition_error}")
        return None
    try:
        return load_definition(definitions[result.benchmark], smoke)
    except (OSError, definitions_lib.DefinitionError) as error:  # the schema has already named file and field
        result.errors.append(f"{result.path}: cannot read the benchmark definition: {error}")
        return None


def kind_of(definitions, name, smoke) -> str:
    """The kind of a benchmark folder's definition; training when it has none or it cannot be read (training.py
    then reports why, as it always has)."""
    try:
        return load_definition(definitions[name], smoke)[0]["kind"] if name in definitions else "training"
    except (OSError, definitions_lib.DefinitionError):
        return "training"


# --- one log ------------------------------------------------------------------------------------------------------
def check_identity(run, benchmark_name, smoke):
    """The log names the folder's benchmark; a smoke run only with --smoke and --smoke only for smoke runs; the
    seed is a JSON integer."""
    logged = run.value("submission_benchmark")
    if "submission_benchmark" in run.first and logged != benchmark_name:
        run.error(f"submission_benchmark {show(logged)} does not match the folder '{benchmark_name}'",
                  run.first["submission_benchmark"][0])
    is_smoke = run.value("smoke_configuration") is True
    if is_smoke and not smoke:
        run.error("smoke configuration run (smoke_configuration=true): accepted only with --smoke",
                  run.first["smoke_configuration"][0])
    if smoke and not is_smoke:
        run.error("--smoke was given but this run is not a smoke run (no smoke_configuration=true)")
    if "seed" in run.first and not is_integer(run.seed):
        run.error(f"seed {show(run.seed)} is not an integer", run.seed_line)


def check_clock(run):
    """run_stop after run_start, in time and in the file."""
    if run.run_start is not None and run.run_stop is not None:
        start_line, stop_line = run.first["run_start"][0], run.first["run_stop"][0]
        if run.run_stop < run.run_start or stop_line < start_line:
            run.error(f"run_stop (line {stop_line}, time_ms {run.run_stop:.0f}) is earlier than run_start "
                      f"(line {start_line}, time_ms {run.run_start:.0f})", stop_line)


def check_status(run, failed_because: str) -> None:
    """run_stop status success or aborted; an aborted run is a failed run (for the reason given)."""
    if run.status not in (None, "success", "aborted"):
        run.error(f"run_stop status {run.status!r} is neither success nor aborted", run.first["run_stop"][0])
    elif run.status == "aborted":
        run.failed = failed_because


def check_init_time(run, definition):
    if "init_start" in run.first and "init_stop" in run.first and "init_time_limit_s" in definition:
        init_s = (run.first["init_stop"][1] - run.first["init_start"][1]) / 1000
        if init_s > definition["init_time_limit_s"]:
            run.error(f"initialisation took {init_s:.1f} s, more than the {definition['init_time_limit_s']} s "
                      "limit (init_start to init_stop)", run.first["init_stop"][0])


def check_provenance(run, definition, division):
    if "provenance" not in run.first:
        return  # the key rule already reported it
    lineno, _, record, _ = run.first["provenance"]
    problem = schema.load("provenance").error(record)  # records repeat across runs: cheap after the first
    if problem:
        run.error(f"provenance: {problem}", lineno)
        return
    expected = {entry["path"]: entry["sha256"] for entry in (definition.get("dataset") or {}).get("files", [])}
    logged = record["dataset_sha256"]
    synthetic = ((definition.get("dataset") or {}).get("synthetic") or {}).get("directory")
    if synthetic and any(path == synthetic or path.startswith(synthetic + "/") for path in logged):
        run.error(f"provenance: the run trained on the synthetic stand-in dataset {synthetic}, not on "
                  f"{definition['dataset']['name']}: a result on synthetic data is never valid", lineno)
        return
    for path in sorted(set(expected) | set(logged)):
        if path not in logged:
            run.error(f"provenance: dataset file {path} was not verified (no sha256 logged)", lineno)
        elif path not in expected:
            run.error(f"provenance: dataset file {path} is not part of the benchmark's dataset", lineno)
        elif logged[path] != expected[path]:
            run.error(f"provenance: dataset {path} sha256 {logged[path]} differs from the definition's "
                      f"{expected[path]}", lineno)
    reference = definition.get("reference_code") or {}
    for name in ("workload_sha256", "common_sha256"):
        if name not in reference:
            continue
        if record["code"][name] != reference[name]:
            message = f"provenance: code {name} {record['code'][name]} differs from the released reference " \
                      f"{reference[name]}"
            if division == "closed":
                run.error(message + " (the closed division runs the released code)", lineno)
            else:
                run.warn(f"{message} (allowed in the open division)", lineno)
    if record["git"].get("dirty"):
        run.warn("produced from a git tree with uncommitted changes", lineno)
    hardware = record["hardware"]
    run.digest = {"code": record["code"], "packages.sha256": record["packages"]["sha256"],
                  "python": record["python"], "torch": record["torch"], "cuda": record["cuda"],
                  "hardware": {k: hardware[k] for k in ("cpu_model", "gpu_name", "gpu_count", "machine")}}


def check_system_agreement(run, system, rules):
    for system_field, log_field in (rules.get("system_agreement") or {}).items():
        stated = system.get(system_field)
        key, *path = log_field.split(".")
        if key in run.first:
            logged_line, _, logged, _ = run.first[key]
            for part in path:
                logged = logged.get(part) if isinstance(logged, dict) else None
            if not agree(stated, logged):
                run.error(f"{log_field} {show(logged)} disagrees with the system description's {system_field} "
                          f"{show(stated)}", logged_line)


def agree(stated, logged) -> bool:
    """Where the system description and a log both state a fact, they must agree (see rules/common.yaml)."""
    missing = (None, "", "n/a", "na", "none")
    if stated is None or logged is None or str(stated).strip().lower() in missing or \
            str(logged).strip().lower() in missing:
        return True
    if is_number(logged) or is_number(stated):
        try:
            return int(str(stated).strip()) == int(str(logged).strip())
        except ValueError:
            return False
    a, b = (" ".join(str(x).casefold().split()) for x in (stated, logged))
    return a in b or b in a


# --- the runs of one result -----------------------------------------------------------------------------------------
def check_shared_provenance(result) -> list:
    """Runs of one result share code, environment and hardware; returns (file, digest) of the runs that have one."""
    digests = [(run.file, run.digest) for run in result.runs if run.digest]
    for file, digest in digests[1:]:
        first_file, first = digests[0]
        for name in digest:
            if digest[name] != first[name]:
                result.errors.append(f"{file}: provenance {name} {show(digest[name])} differs from {first_file}'s "
                                     f"{show(first[name])} (runs of one result share code, environment, hardware)")
    return digests


def collect_run_problems(result):
    """Each run's errors and warnings become the result's; the runs must agree on the division."""
    divisions = {run.file: run.division for run in result.runs}
    for run in result.runs:
        result.errors += run.errors + ([f"{run.file}: ... and {run.hidden_problems} more problems"]
                                       if run.hidden_problems else [])
        result.warnings += run.warnings
    if len(set(show(d) for d in divisions.values() if d)) > 1:
        result.errors.append(f"runs disagree on the division: {show(divisions, 300)}")


def note_reference_code(result, definition):
    if not definition.get("reference_code"):
        result.notes.append("the definition publishes no reference_code: code hashes not compared")


def check_code_folder(result, code_root, root, digests):
    """Open division: code submitted in <submitter>/benchmarks/<benchmark>/ must hash to what the logs record."""
    if result.division != "open":
        return
    code_dir = dict(layout.entries(code_root, root, result.errors)).get(result.benchmark) if code_root else None
    if code_dir is None or not code_dir.is_dir():
        result.warnings.append(f"open division: no code in benchmarks/{result.benchmark}/ to compare with the logs")
        return
    unsafe = []
    list(layout.walk_files(code_dir, root, unsafe))  # links and odd names anywhere in the code: refuse to hash
    if unsafe:
        result.errors += unsafe
        return
    from common.provenance import tree_hash  # hashing only: provenance imports torch inside its functions

    submitted = tree_hash(code_dir)
    for file, digest in digests:
        if digest["code"]["workload_sha256"] != submitted:
            result.errors.append(f"{file}: logged workload_sha256 {digest['code']['workload_sha256']} is not the "
                                 f"hash of the code in {rel(code_dir, root)} ({submitted})")
            break
