"""Run untrusted, model-written Python (MBPP solutions and their asserts) inside a bubblewrap sandbox.

Threat model: the program is arbitrary code from a language model. It may be wrong, loop forever, fork-bomb,
allocate without bound, print without bound, fill the disk, read secrets (the repository, $HOME, /etc, the
host's environment) or reach the network. It must not be able to do any of that to the host; it only gets a
verdict. The layers:
  - bubblewrap (bwrap) puts it in new user/pid/net/ipc/uts namespaces: it sees /usr read-only, its own /proc
    and a minimal /dev, and a small tmpfs /tmp as its working directory -- nothing else of the host's files
    exist for it. The network namespace has only its own loopback. The environment is cleared.
  - It runs as an unprivileged uid (nobody, 65534, when we are root; otherwise our own uid), because the kernel
    does not enforce RLIMIT_NPROC for root.
  - rlimits bound what namespaces cannot: processes (fork bombs), address space (memory bombs), CPU seconds
    (busy loops), file size (huge writes, endless printing: stdout/stderr go to size-capped host files).
  - A wall-clock timeout kills the whole process group; bwrap's pid namespace takes every descendant with it.
The source goes in on stdin (never through a shell, never in argv); /usr/bin/python3 runs it with -I -B.
Known gaps: CPU and memory limits are per process (a fork bomb gets `processes` times as much until the wall
clock ends it), and with several sandboxes running at once as nobody they share one process allowance.
"""
from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BWRAP = "bwrap"  # looked up on PATH; tests point it elsewhere to simulate a machine without bubblewrap
PYTHON = "/usr/bin/python3"  # the system interpreter: a venv's may live under the repository, which stays hidden
NOBODY = 65534
OUTPUT_CAP = 64 * 1024  # bytes of stderr we ever read back


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0  # ends sleeping/blocked programs and fork bombs; the last word on time
    cpu_seconds: int = 5  # per process: a busy loop dies of SIGXCPU
    memory_bytes: int = 512 * 1024 * 1024  # address space per process: allocations beyond raise MemoryError
    processes: int = 32  # threads+processes the sandbox may add for its uid: contains fork bombs
    file_bytes: int = 1024 * 1024  # largest file it may write, stdout/stderr included
    tmp_bytes: int = 16 * 1024 * 1024  # size of the tmpfs working directory: many small files cannot fill a disk


@dataclass
class Verdict:
    passed: bool
    outcome: str  # "passed", "failed", "timeout", "killed" or "error"
    detail: str  # the last line of stderr (at most 300 chars), or a sentence
    seconds: float


class SandboxUnavailable(RuntimeError):
    pass


def _sandbox_argv(bwrap: str, limits: Limits, command: list[str]) -> list[str]:
    return [bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
            "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp", "--chdir", "/tmp",
            "--clearenv", "--setenv", "PATH", "/usr/bin", "--setenv", "LANG", "C.UTF-8", *command]


def _threads_of(uid: int) -> int:
    """Threads the uid already runs: RLIMIT_NPROC counts them all, so the allowance goes on top."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields.get("Threads", "1"))
        except (OSError, ValueError, KeyError):
            continue  # the process ended while we looked
    return total


def _preexec(limits: Limits, uid: int, existing: int):
    def drop_privileges_and_limit():  # runs in the child between fork and exec
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        # the +1 is this very process, which already counts for the uid
        for kind, value in [(resource.RLIMIT_NPROC, existing + 1 + limits.processes),
                            (resource.RLIMIT_AS, limits.memory_bytes),
                            (resource.RLIMIT_CPU, limits.cpu_seconds),  # hard limit 1 s later: SIGXCPU first
                            (resource.RLIMIT_FSIZE, limits.file_bytes),
                            (resource.RLIMIT_CORE, 0)]:  # a SIGXCPU core dump would land on the host
            resource.setrlimit(kind, (value, value + (kind == resource.RLIMIT_CPU)))
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die if the host process dies
    return drop_privileges_and_limit


def _sandbox_uid() -> int:
    return NOBODY if os.geteuid() == 0 else os.getuid()


@functools.cache
def _probe() -> tuple[str, str]:
    """(path of bwrap, "") when a trivial command runs in the sandbox, else ("", why not)."""
    bwrap = shutil.which(BWRAP)
    if bwrap is None:
        return "", ("agent/codegen runs generated code inside bubblewrap, which is not installed: "
                    "apt-get install bubblewrap")
    uid = _sandbox_uid()
    try:
        probe = subprocess.run(_sandbox_argv(bwrap, Limits(), [PYTHON, "-I", "-c", "pass"]),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env={"PATH": "/usr/bin"},
                               preexec_fn=_preexec(Limits(), uid, _threads_of(uid)), start_new_session=True)
        why = (probe.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {probe.returncode}"])[-1]
        ok = probe.returncode == 0
    except (OSError, subprocess.SubprocessError) as error:
        why, ok = str(error), False
    if not ok:  # keep one sentence: bwrap's own message may have several
        return "", (f"agent/codegen runs generated code inside bubblewrap, which cannot create a sandbox here "
                    f"({why.split('. ')[0][:200]}): allow unprivileged user namespaces (Debian: sysctl "
                    f"kernel.unprivileged_userns_clone=1, Ubuntu: kernel.apparmor_restrict_unprivileged_userns=0)")
    return bwrap, ""


def check_available() -> str:
    """The path of a working bwrap; raises SandboxUnavailable (one sentence) otherwise. Probed once, then cached."""
    bwrap, problem = _probe()
    if problem:
        raise SandboxUnavailable(problem)
    return bwrap


check_available.cache_clear = _probe.cache_clear  # type: ignore[attr-defined]


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - OUTPUT_CAP))
        return f.read(OUTPUT_CAP).decode(errors="replace")


def run_program(source: str, limits: Limits = Limits()) -> Verdict:
    """Run Python `source` in the sandbox; passed iff it exits 0 within the limits."""
    bwrap = check_available()
    uid = _sandbox_uid()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="codegen-sandbox-") as host_dir:  # 0700: only we see it
        program, stdout, stderr = (Path(host_dir) / name for name in ("program.py", "stdout", "stderr"))
        program.write_text(source)
        argv = _sandbox_argv(bwrap, limits, [PYTHON, "-I", "-B", "-"])  # "-": the program comes on stdin
        timed_out = False
        try:
            with open(program, "rb") as fin, open(stdout, "wb") as fout, open(stderr, "wb") as ferr:
                proc = subprocess.Popen(argv, stdin=fin, stdout=fout, stderr=ferr, env={"PATH": "/usr/bin"},
                                        preexec_fn=_preexec(limits, uid, _threads_of(uid)), start_new_session=True)
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # bwrap dies, and its pid namespace with it
                except ProcessLookupError:
                    pass
                proc.wait()
        except (OSError, subprocess.SubprocessError) as error:
            return Verdict(False, "error", f"the sandbox could not start: {error}"[:300], time.monotonic() - start)
        seconds = time.monotonic() - start
        lines = [line.strip() for line in _tail(stderr).splitlines() if line.strip()]
    last = lines[-1][:300] if lines else ""
    code = proc.returncode
    if timed_out:
        return Verdict(False, "timeout", f"still running after the {limits.wall_seconds:g} s wall-clock limit", seconds)
    if code == 0:
        return Verdict(True, "passed", last, seconds)
    if code < 0 or code > 128:  # bwrap reports a child killed by signal N as 128+N
        number = -code if code < 0 else code - 128
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
        return Verdict(False, "killed", f"killed by {name}" + (f" ({last})" if last else ""), seconds)
    if code == 1 and last.startswith("bwrap:"):
        return Verdict(False, "error", last, seconds)
    return Verdict(False, "failed", last or f"exited with status {code}", seconds)


def run_tests(solution: str, tests: list[str], setup: str = "", limits: Limits = Limits()) -> Verdict:
    """The MBPP protocol: setup, then the solution, then the asserts, as one program; passed iff it exits 0."""
    return run_program(setup + "\n" + solution + "\n" + "\n".join(tests), limits)
