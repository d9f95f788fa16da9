"""agent/codegen/sandbox.py: MBPP verdicts, and containment of hostile model-written programs."""
from __future__ import annotations

import ast
import os
import resource
import socket
import time
from pathlib import Path

import pytest

from agent.codegen import sandbox
from agent.codegen.sandbox import Limits, SandboxUnavailable, run_program, run_tests

HOSTILE = Limits(wall_seconds=3, cpu_seconds=2)
SANDBOX_UID = 65534 if os.geteuid() == 0 else os.getuid()


def sandbox_processes() -> set[int]:
    """Live pids of the sandbox's uid that are bwrap or python3 (what a run leaves behind if containment leaks).
    Zombies are dead already: the sandbox's init is reparented to the host's init, which reaps them when it will."""
    pids = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            status = (proc / "status").read_text()
            uid = int(status.split("\nUid:")[1].split()[0])
            zombie = status.split("\nState:")[1].split()[0] == "Z"
            if uid == SANDBOX_UID and not zombie and (proc / "comm").read_text().strip() in ("bwrap", "python3"):
                pids.add(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return pids


def children_of_this_process() -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                kids.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def assert_nothing_left(before: set[int]):
    deadline = time.monotonic() + 3
    while (left := sandbox_processes() - before) or children_of_this_process():
        if time.monotonic() > deadline:
            pytest.fail(f"sandbox processes left behind: {left}, children: {children_of_this_process()}")
        time.sleep(0.1)


def test_correct_solution_passes():
    verdict = run_tests("def add(a, b):\n    return a + b", ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"])
    assert (verdict.passed, verdict.outcome) == (True, "passed")


def test_setup_code_runs_first():
    verdict = run_tests("def f():\n    return math.pi", ["assert f() > 3"], setup="import math")
    assert verdict.outcome == "passed", verdict


def test_wrong_solution_fails_with_assertion_error():
    verdict = run_tests("def add(a, b):\n    return a - b", ["assert add(1, 2) == 3"])
    assert (verdict.passed, verdict.outcome) == (False, "failed")
    assert "AssertionError" in verdict.detail


def test_syntax_error_fails():
    verdict = run_tests("def add(a, b:\n    return a + b", ["assert add(1, 2) == 3"])
    assert verdict.outcome == "failed" and "SyntaxError" in verdict.detail, verdict


def test_fork_bomb_is_contained():
    before = sandbox_processes()
    fork_bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    verdict = run_program(fork_bomb, HOSTILE)
    assert verdict.outcome in ("timeout", "killed"), verdict
    assert verdict.seconds < HOSTILE.wall_seconds + 2
    assert_nothing_left(before)


def test_sleeping_forever_times_out_at_the_wall_clock():
    before = sandbox_processes()
    verdict = run_program("import time\nwhile True:\n    time.sleep(1)", Limits(wall_seconds=1.5))
    assert verdict.outcome == "timeout", verdict
    assert 1.5 <= verdict.seconds < 3.5
    assert_nothing_left(before)


def test_busy_loop_is_killed_by_the_cpu_limit():
    verdict = run_program("while True:\n    pass", Limits(wall_seconds=10, cpu_seconds=1))
    assert verdict.outcome in ("killed", "timeout") and verdict.seconds < 6, verdict  # timeout only if starved
    if verdict.outcome == "killed":
        assert "SIGXCPU" in verdict.detail


def test_memory_bomb_gets_memory_error_and_the_host_is_unaffected():
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    verdict = run_program("x = bytearray(2 << 30)", HOSTILE)
    assert verdict.outcome in ("failed", "killed"), verdict
    if verdict.outcome == "failed":
        assert "MemoryError" in verdict.detail
    # growing step by step stops below the address-space limit
    verdict = run_program("chunks = []\ntry:\n    while True:\n        chunks.append(bytearray(16 << 20))\n"
                          "except MemoryError:\n    raise SystemExit(str(16 * len(chunks)))", HOSTILE)
    assert verdict.outcome == "failed", verdict
    assert 64 < int(verdict.detail) < HOSTILE.memory_bytes >> 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024  # KiB


@pytest.mark.parametrize("where", ["/work/main/PWNED", "/usr/PWNED", "HOME", "REPO", "/tmp/../etc/PWNED"])
def test_writing_outside_the_sandbox_fails(where):
    repo_root = Path(__file__).resolve().parents[1]
    target = {"HOME": str(Path.home() / "PWNED"), "REPO": str(repo_root / "PWNED")}.get(where, where)
    assert not Path(target).exists()
    verdict = run_program(f"open({target!r}, 'w').write('pwned')", HOSTILE)
    assert verdict.outcome == "failed", verdict
    assert "FileNotFoundError" in verdict.detail or "Read-only file system" in verdict.detail, verdict
    assert not Path(target).exists()


def test_huge_write_in_the_working_directory_is_stopped_by_the_file_size_limit():
    verdict = run_program("with open('big', 'wb') as f:\n    f.write(b'x' * (50 << 20))", HOSTILE)
    assert verdict.outcome in ("failed", "killed"), verdict
    if verdict.outcome == "failed":
        assert "File too large" in verdict.detail


def test_many_files_cannot_outgrow_the_tmpfs():
    verdict = run_program("n = 0\ntry:\n    while True:\n        open(f'f{n}', 'wb').write(b'x' * (512 << 10))\n"
                          "        n += 1\nexcept OSError as e:\n    raise SystemExit(str(n // 2))", HOSTILE)
    assert verdict.outcome == "failed", verdict
    assert int(verdict.detail) <= HOSTILE.tmp_bytes >> 20


def test_network_is_unreachable():
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        verdict = run_program("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)", HOSTILE)
        assert verdict.outcome == "failed" and "unreachable" in verdict.detail, verdict
        verdict = run_program(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)", HOSTILE)
        assert verdict.outcome == "failed" and "ConnectionRefusedError" in verdict.detail, verdict
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked on the host's socket
    finally:
        listener.close()


def test_the_repository_and_host_directories_are_invisible():
    verdict = run_program(f"print(open({str(Path(__file__).resolve())!r}).read())", HOSTILE)
    assert verdict.outcome == "failed" and "FileNotFoundError" in verdict.detail, verdict
    verdict = run_program("import os\nraise SystemExit(repr(sorted(os.listdir('/'))))", HOSTILE)
    root = ast.literal_eval(verdict.detail)
    assert "usr" in root and "tmp" in root
    assert not {"work", "home", "root", "etc", "farm", "mnt", "opt"} & set(root), root


def test_host_environment_is_invisible(monkeypatch):
    monkeypatch.setenv("CODEGEN_SANDBOX_SECRET", "hunter2-do-not-leak")
    verdict = run_program("import os, glob\nseen = repr(dict(os.environ))\nfor p in glob.glob('/proc/*/environ'):\n"
                          "    try:\n        seen += open(p, 'rb').read().decode(errors='replace')\n"
                          "    except OSError:\n        pass\nraise SystemExit(seen.replace(chr(10), ' '))", HOSTILE)
    assert "LANG" in verdict.detail and "PATH" in verdict.detail, verdict  # the program did report its environment
    assert "hunter2" not in verdict.detail and "CODEGEN_SANDBOX_SECRET" not in verdict.detail


def test_printing_forever_neither_hangs_nor_eats_memory():
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    verdict = run_program("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * (1 << 20))", HOSTILE)
    assert verdict.outcome in ("failed", "killed"), verdict  # stdout is a file capped by the file-size limit
    assert verdict.seconds < HOSTILE.wall_seconds
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * 1024  # KiB


@pytest.mark.parametrize("bwrap, reason", [("/nonexistent/bwrap", "not installed"), ("/bin/false", "cannot create")])
def test_missing_or_broken_bubblewrap_raises_one_sentence(monkeypatch, bwrap, reason):
    monkeypatch.setattr(sandbox, "BWRAP", bwrap)
    sandbox.check_available.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable) as raised:
            run_tests("def f():\n    return 1", ["assert f() == 1"])
    finally:
        sandbox.check_available.cache_clear()
    message = str(raised.value)
    assert reason in message and "bubblewrap" in message
    assert "\n" not in message and message.count(". ") == 0
