"""The training harness (common/training.py), the results layout (common/results.py), the narrow released-code
hash (common/provenance.py), `invoke bench` (common/bench.py) and the tasks' handling of hostile input."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common import bench, benchmark, provenance, results
from common.mlperf_log import LogFileError, MLPerfLogger
from conftest import REPO_ROOT, run_workload

ALL_WORKLOADS = sorted(benchmark.workload_dirs())
WORKLOADS = sorted(name for name in ALL_WORKLOADS if benchmark.load(name)["kind"] == "training")


def _train(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    script = Path(benchmark.load(name)["directory"]) / "train.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", **(env or {})})


def _one_sentence(stderr: str) -> str:
    # argparse prints its usage (a first line and indented continuations) and the error; the harness one line
    lines = [line for line in stderr.strip().splitlines() if line.strip() and not line.startswith(("usage:", " "))]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[-1]


# --- train.py: the harness owns setup and bookkeeping ----------------------------------------------------------
@pytest.mark.parametrize("name", WORKLOADS)
def test_train_py_keeps_only_the_loop(name):
    """No workload repeats the harness's bookkeeping: the definition, distributed init, seeding, period loss
    sums, cadence arithmetic, run_stop and the exit code all live in common/training.py."""
    source = (Path(benchmark.load(name)["directory"]) / "train.py").read_text()
    for repeated in ("init_distributed", "seed_everything", "parse_args", "benchmark.load", "run_stop",
                     "all_reduce_sum(block_loss", "eval_every_steps", "ctx.shutdown", "DistributedDataParallel"):
        assert repeated not in source, f"{name}/train.py still does {repeated} itself"
    main = source[source.index("def main("):source.index('if __name__ == "__main__":')]
    # run.finish gets the evaluated model (the trained one, or its EMA copy where that is what is scored)
    assert "TrainingRun.from_command_line(" in main and re.search(r"return run\.finish\((model|ema)\)", main)
    assert len(main.splitlines()) <= 45, f"{name}: main() has {len(main.splitlines())} lines"


@pytest.mark.parametrize("seed,message", [("abc", "the seed must be a whole number, not 'abc'"),
                                          (str(2**64), "the seed must be between 0 and"),
                                          ("-1", "the seed must be between 0 and")])
def test_bad_seed_is_one_sentence(seed, message, data_dir):
    proc = _train("micro_gcn", "--seed", seed, "--smoke", "--data-dir", str(data_dir))
    assert proc.returncode == 2 and message in _one_sentence(proc.stderr)


def test_existing_log_file_is_refused_and_kept(data_dir, tmp_path):
    log = tmp_path / "result_0.txt"
    log.write_text("an earlier run's log\n")
    proc = _train("micro_gcn", "--seed", "1", "--smoke", "--data-dir", str(data_dir), "--log-file", str(log))
    assert proc.returncode == 1
    assert "exists already; a run never overwrites a result" in _one_sentence(proc.stderr)
    assert log.read_text() == "an earlier run's log\n"


def test_locked_or_existing_log_is_refused_by_the_logger(tmp_path):
    path = tmp_path / "log.txt"
    first = MLPerfLogger(path, echo=False)
    with pytest.raises(LogFileError, match="exists already"):
        MLPerfLogger(path, echo=False)  # a second run on the same LOGFILE can never splice into the first
    first.close()


def test_unwritable_log_directory_is_one_sentence(data_dir, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")  # a file where the log's folder should be: fails for root too
    proc = _train("micro_gcn", "--seed", "1", "--smoke", "--data-dir", str(data_dir),
                  "--log-file", str(blocker / "sub" / "log.txt"))
    assert proc.returncode == 1 and _one_sentence(proc.stderr).startswith("error: cannot create log file")


def test_missing_dataset_is_one_sentence(tmp_path):
    proc = _train("micro_gcn", "--seed", "1", "--smoke", "--data-dir", str(tmp_path), "--log-file",
                  str(tmp_path / "log.txt"))
    assert proc.returncode == 1 and "run download_dataset.sh first" in _one_sentence(proc.stderr)
    assert not (tmp_path / "log.txt").exists()  # no half log left to block the next run or fail a check


def test_flop_probe_counts_one_step_and_writes_no_log(data_dir, tmp_path):
    out = tmp_path / "flops.json"
    proc = _train("nanogpt", "--seed", "1", "--smoke", "--data-dir", str(data_dir), "--count-flops", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(out.read_text())
    # forward + backward of a 1-layer, 32-wide GPT over 32 sequences of 32 characters: a few tens of MFLOP
    assert record["benchmark"] == "nanogpt" and 1e6 < record["flops_per_step"] < 1e9
    assert '"key": "run_stop"' not in proc.stdout and not list(tmp_path.glob("*.txt"))  # never a scored run


# --- the results layout -------------------------------------------------------------------------------------------
def test_run_and_time_writes_the_results_layout_and_never_overwrites(data_dir, tmp_path):
    env = {"RESULTS_DIR": str(tmp_path / "results"), "LOGFILE": ""}
    for expected in ("result_0.txt", "result_1.txt"):
        proc = run_workload("micro_gcn", 3, data_dir, Path(""), extra_env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        bench_dir = tmp_path / "results" / "reference" / "results" / "local_cpu" / "micro_gcn"
        assert (bench_dir / expected).is_file()
    system = json.loads((tmp_path / "results" / "reference" / "systems" / "local_cpu.json").read_text())
    assert system["system_name"] == "local_cpu" and system["accelerators_per_node"] == 0
    from submission_checker import checker

    report = checker.check(tmp_path / "results", smoke=True)
    messages = " ".join(report.errors + [e for r in report.results for e in r.errors])
    assert "2 result files, the benchmark requires 5" in messages  # the layout is read; only the count is short
    assert all("missing system description" not in m for m in [messages])


def test_next_result_file_takes_the_lowest_free_index(tmp_path):
    assert results.next_result_file(tmp_path).name == "result_0.txt"
    for i in (0, 1, 3):
        (tmp_path / f"result_{i}.txt").write_text("")
    assert results.next_result_file(tmp_path).name == "result_2.txt"


# --- the narrow released-code hash ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_WORKLOADS)
def test_code_hash_covers_what_a_run_executes_and_no_tooling(name):
    definition = benchmark.load(name)
    files = {p.relative_to(REPO_ROOT).as_posix() for p in provenance.harness_files(Path(definition["directory"]))}
    loop = {"common/inference.py", "common/loadgen.py"} if definition["kind"] == "inference" else \
        {"common/training.py"}
    assert loop | {"common/mlperf_log.py", "common/runtime.py", "common/timed_run.sh", "common/fetch.py",
                   "common/provenance.py", "common/benchmark.py"} <= files
    assert not {f for f in files if f.startswith(("common/bench.py", "common/containers", "tasks", "docker/",
                                                   "submission_checker/"))}


def test_tooling_edits_and_new_workloads_change_no_reference_hash(tmp_path):
    """A copy of the repository: editing bench (tooling) or adding a workload leaves nanogpt's hashes alone;
    editing a harness module it imports changes them."""
    root = tmp_path / "repo"
    for rel in ["common", "language/nanogpt"]:
        shutil.copytree(REPO_ROOT / rel, root / rel, ignore=shutil.ignore_patterns("__pycache__"))
    workload = root / "language" / "nanogpt"

    def hashes():
        return provenance.tree_hash(workload), provenance.files_hash(provenance.harness_files(workload, root), root)

    before = hashes()
    (root / "common" / "bench.py").write_text("# edited tooling\n")
    (root / "vision" / "new_workload").mkdir(parents=True)
    (root / "vision" / "new_workload" / "train.py").write_text("from common import training\n")
    assert hashes() == before
    with open(root / "common" / "training.py", "a") as f:
        f.write("# a harness edit\n")
    assert hashes()[1] != before[1] and hashes()[0] == before[0]


def test_every_definition_records_the_current_reference_hash():
    """The released hashes in the definitions are those of this checkout (`invoke rehash` after a code change)."""
    for name in ALL_WORKLOADS:
        definition = benchmark.load(name)
        assert definition["reference_code"] == provenance.code_hashes(Path(definition["directory"])), name


# --- invoke bench ---------------------------------------------------------------------------------------------------
def test_bench_reads_with_the_checker_reader_and_scores_olympic(tmp_path):
    log = MLPerfLogger(tmp_path / "result_0.txt", echo=False)
    log._mllog.start(key="init_start", time_ms=1_000_000)
    log._mllog.start(key="run_start", time_ms=1_004_000)
    log._mllog.start(key="eval_start", time_ms=1_030_000, metadata={"samples_count": 640})
    log._mllog.event(key="eval_accuracy", value=1.55, time_ms=1_034_000, metadata={"samples_count": 640})
    log._mllog.end(key="eval_stop", time_ms=1_034_000, metadata={"samples_count": 640})
    log._mllog.end(key="run_stop", time_ms=1_064_000, metadata={"status": "success", "steps": 10,
                                                                "harness_overhead_ms": 6.0})
    log.close()
    figures = bench.summarise_log(bench.RunFigures(5, str(tmp_path / "result_0.txt"), 0), "eval_accuracy",
                                  started=998.5, ended=1065.0)
    assert (figures.success, figures.scored_s, figures.steps, figures.eval_s) == (True, 60.0, 10, 4.0)
    assert (figures.before_init_s, figures.init_s, figures.after_stop_s) == (1.5, 4.0, 1.0)
    runs = [bench.RunFigures(s, "x", 0, success=True, scored_s=t, steps=10, eval_s=0.0)
            for s, t in zip(range(5), (60, 61, 62, 63, 90))]
    assert bench.olympic_minutes(runs) == pytest.approx(62 / 60)  # slowest and fastest dropped
    eff = bench.efficiency(runs, {"flops_per_step": 6e9}, {"fp32_flops_per_s": 1e10, "bf16_flops_per_s": 1e9})
    assert eff["achieved_flops_per_s"] == pytest.approx(6e10 / 62)
    assert "share_of_bf16_peak" not in eff  # slower than fp32 here: no meaningful share
    report = bench.format_report("nanogpt", benchmark.load("nanogpt"), runs, {"flops_per_step": 6e9},
                                 {"device": "cpu", "matrix_size": 1024, "fp32_flops_per_s": 1e10,
                                  "bf16_flops_per_s": 1e9})
    assert "reached target: 5/5" in report and "olympic score" in report and "6 GFLOP" in report


def test_bench_refuses_a_folder_that_holds_results(tmp_path):
    bench_dir = results.benchmark_dir(tmp_path, "micro_gcn", results.system_name("local", "cpu"))
    bench_dir.mkdir(parents=True)
    (bench_dir / "result_0.txt").write_text("")
    with pytest.raises(bench.BenchError, match="already holds 1 result"):
        bench.run_seeds("micro_gcn", [1], tmp_path, smoke=True, env={"DEVICE": "cpu"})


# --- tasks: argument lists, never shell strings --------------------------------------------------------------------
def test_tasks_build_no_shell_strings():
    source = (REPO_ROOT / "tasks.py").read_text()
    assert "c.run(" not in source and "shell=True" not in source


def test_check_of_a_path_with_quotes_runs_no_command(tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"{tmp_path}/x'; touch '{marker}'; echo '"
    proc = subprocess.run([sys.executable, "-m", "invoke", "check", hostile, "--out", str(tmp_path / "report")],
                          cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode != 0 and not marker.exists()


@pytest.mark.parametrize("seed", ["abc", str(2**64)])
def test_invoke_run_bad_seed_is_one_sentence(seed):
    proc = subprocess.run([sys.executable, "-m", "invoke", "run", "micro_gcn", "--smoke", "--seed", seed],
                          cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 2 and _one_sentence(proc.stderr).startswith("error: the seed must be")


def test_ci_changes_no_machine_configuration():
    """.ci/run runs on the submitting machine: it may install into its own venv and start services, but never
    delete or rewrite the machine's configuration (pip settings go through the environment instead)."""
    commands = [line.split("#", 1)[0] for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    for line in commands:
        assert not ("rm " in line and "/etc" in line), line
        assert not (">" in line and "/etc/" in line.split(">", 1)[1]), line
    assert any("PIP_CONSTRAINT=/dev/null" in line and "pip install" in line for line in commands)
