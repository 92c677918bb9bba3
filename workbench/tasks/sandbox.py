"""Run untrusted (model-written) Python in a locked-down child process.

Layers, outermost first; each one alone contains the failures it names:

1. A separate process in its own session and process group, with a wall-clock timeout; on overrun,
   and always once the child has exited, the whole group is killed (SIGKILL) before the child is
   reaped, so no descendant outlives the call (infinite loops, sleeping or orphaned children).
2. A fresh network namespace (``unshare --net``) when running as root: no interface but a down
   loopback (sockets).
3. ``resource`` limits, soft = hard: CPU seconds, address space (huge allocations raise
   MemoryError), file size, open files, and RLIMIT_NPROC (fork bombs; as root it binds only
   after layer 4).
4. As root, the child drops to ``nobody`` before running the code, so RLIMIT_NPROC applies and the
   file system's permissions refuse writes outside the throw-away folder it owns.
5. An audit hook (``sys.addaudithook``), installed before the code runs and impossible to remove:
   it refuses fork/exec/spawn/``os.system``/``subprocess``, sockets, ctypes, signals to other
   processes, raising limits, and creating, changing or removing files outside the folder.
6. A throw-away working folder, removed afterwards; stdin, stdout, stderr and the result channel
   are unnamed temp files, so nothing can block on a pipe and output is capped by RLIMIT_FSIZE.

The child imports only the standard library (``python -I -S``); a small allow-list of pure modules
(:data:`PRELOAD`) is imported before privileges drop, others only where the file system lets
``nobody`` read them.
"""

from __future__ import annotations

import json
import math
import os
import pwd
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

CHILD = Path(__file__).with_name("sandbox_child.py")
PRELOAD = ("math", "itertools", "functools", "collections", "operator", "heapq", "bisect", "re",
           "string", "copy", "random", "statistics", "fractions", "decimal")
MAX_OUTPUT_BYTES = 1 << 20


@dataclass
class SandboxResult:
    """What one sandboxed run did."""

    ok: bool  # the code ran to the end without an exception, timeout or signal
    stdout: str  # what the code printed (capped)
    stderr: str  # what it wrote to stderr (capped)
    error: str | None  # why it failed, one line
    timed_out: bool = False
    returncode: int | None = None
    duration: float = 0.0
    records: list[dict] = field(default_factory=list)  # the child's result records (internal)


@dataclass
class CaseResult:
    """One call of the function on one input."""

    ok: bool
    value: Any = None  # the return value as JSON (non-JSON types are tagged {"type", "repr"})
    error: str | None = None


@dataclass
class FunctionRun:
    """A function called on a list of inputs in one sandboxed child."""

    ok: bool  # the code loaded and every call returned (values may still be wrong)
    cases: list[CaseResult]
    error: str | None
    timed_out: bool = False
    duration: float = 0.0


def run_python(code: str, *, timeout: float = 5.0, memory_mb: int = 512, file_mb: int = 8,
               open_files: int = 32, processes: int = 1, audit_hook: bool = True) -> SandboxResult:
    """Run ``code`` as a script in the sandbox; ``ok`` when it finished without error.

    ``audit_hook=False`` leaves only the OS-level layers, to test them alone.
    """
    payload = {"code": code, "function": None, "inputs": []}
    result = _run_child(payload, timeout=timeout, memory_mb=memory_mb, file_mb=file_mb,
                        open_files=open_files, processes=processes, audit_hook=audit_hook)
    result.error = _failure(result)
    result.ok = result.error is None
    return result


def run_function(code: str, fname: str, inputs: list, *, timeout: float = 5.0, memory_mb: int = 512,
                 audit_hook: bool = True) -> FunctionRun:
    """Define ``code`` in the sandbox and return ``fname(x)`` for each of ``inputs`` (one child in all)."""
    payload = {"code": code, "function": fname, "inputs": list(inputs)}
    result = _run_child(payload, timeout=timeout, memory_mb=memory_mb, file_mb=8, open_files=32,
                        processes=1, audit_hook=audit_hook)
    error = _failure(result)
    by_index = {r["i"]: r for r in result.records if "i" in r}
    cases = [CaseResult(ok=by_index[i]["ok"], value=by_index[i].get("value"), error=by_index[i].get("error"))
             if i in by_index else CaseResult(ok=False, error=error) for i in range(len(inputs))]
    if error is None:
        error = next((f"input {i}: {c.error}" for i, c in enumerate(cases) if not c.ok), None)
    return FunctionRun(ok=error is None, cases=cases, error=error, timed_out=result.timed_out,
                       duration=result.duration)


def _failure(result: SandboxResult) -> str | None:
    """Why the run did not finish: overrun or signal, the code's exception, or an early exit; else None."""
    if result.error:
        return result.error
    fatal = next((r["fatal"] for r in result.records if "fatal" in r), None)
    if fatal:
        return fatal
    if not any(r.get("done") for r in result.records):
        last = result.stderr.strip().splitlines()[-1:] or ["nothing on stderr"]
        return f"the code exited before finishing (exit status {result.returncode}; {last[0][:200]})"
    return None


def _run_child(payload: dict, *, timeout: float, memory_mb: int, file_mb: int, open_files: int,
               processes: int, audit_hook: bool) -> SandboxResult:
    """Start the child on ``payload``, enforce the wall clock, clean up, parse its records."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    nonce = secrets.token_hex(16)
    workdir = Path(tempfile.mkdtemp(prefix="wb-sandbox-"))
    try:
        uid, gid = _unprivileged_ids()
        if uid is not None:
            os.chown(workdir, uid, gid)
        payload = {**payload, "nonce": nonce, "workdir": str(workdir), "preload": list(PRELOAD),
                   "audit": audit_hook, "uid": uid, "gid": gid,
                   "limits": {"cpu_seconds": math.ceil(timeout) + 1, "memory_mb": memory_mb,
                              "file_mb": file_mb, "open_files": open_files, "processes": processes}}
        return _supervise(_command(), payload, workdir, timeout, nonce)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _command() -> list[str]:
    """The child's command line: the sandbox program under ``python -I -S``, in a new netns if possible."""
    python = [sys.executable, "-I", "-S", "-B", "-X", "utf8", "-c", CHILD.read_text(encoding="utf-8")]
    return ["unshare", "--net", "--", *python] if _can_unshare_net() else python


def _supervise(cmd: list[str], payload: dict, workdir: Path, timeout: float, nonce: str) -> SandboxResult:
    """Run ``cmd`` to completion or timeout, kill its process group, and collect its output."""
    start = time.monotonic()
    with (tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr,
          tempfile.TemporaryFile() as fres):
        fin.write(json.dumps({**payload, "result_fd": fres.fileno()}).encode("utf-8"))
        fin.seek(0)
        proc = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=ferr, cwd=workdir, env=_child_env(),
                                start_new_session=True, close_fds=True, pass_fds=(fres.fileno(),))
        try:
            exited = _wait_exit(proc.pid, timeout)
        finally:
            _kill_group(proc.pid)  # before reaping: the zombie leader keeps the group id from reuse
            proc.wait()
        out, err, records = _read_capped(fout), _read_capped(ferr), _read_records(fres, nonce)
    duration = time.monotonic() - start
    error = None if exited else f"timed out after {timeout:g} s (wall clock)"
    if exited and proc.returncode < 0:
        error = f"killed by {_signal_name(-proc.returncode)}"
    return SandboxResult(ok=error is None, stdout=out, stderr=err, error=error, timed_out=not exited,
                         returncode=proc.returncode, duration=duration, records=records)


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` exits (without reaping it); False on timeout."""
    deadline = time.monotonic() + timeout
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout)
            return bool(ready)
        finally:
            os.close(pidfd)
    while time.monotonic() < deadline:  # kernels without pidfd: poll without reaping
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(0.005)
    return False


def _kill_group(pgid: int) -> None:
    """SIGKILL every process in the group (it is fine if none is left)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_capped(f, limit: int = MAX_OUTPUT_BYTES) -> str:
    """At most ``limit`` bytes of a temp file, decoded leniently."""
    f.seek(0)
    return f.read(limit).decode("utf-8", errors="replace")


def _read_records(f, nonce: str) -> list[dict]:
    """The child's JSON records: the lines of its result file that start with the nonce."""
    records = []
    for line in _read_capped(f).splitlines():
        if line.startswith(nonce):
            try:
                records.append(json.loads(line[len(nonce):]))
            except json.JSONDecodeError:
                continue  # a record cut short by the size caps
    return records


def _signal_name(signum: int) -> str:
    """SIGXCPU (CPU time limit) and friends, readable."""
    names = {signal.SIGXCPU: "SIGXCPU (CPU time limit)", signal.SIGKILL: "SIGKILL (limit or overrun)",
             signal.SIGSEGV: "SIGSEGV (crash, possibly out of memory)", signal.SIGXFSZ: "SIGXFSZ (file size limit)"}
    return names.get(signum, signal.Signals(signum).name if signum in signal.valid_signals() else str(signum))


def _child_env() -> dict[str, str]:
    """A minimal environment: nothing of the caller's (tokens, paths) leaks into the child."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}


@lru_cache(maxsize=1)
def _unprivileged_ids() -> tuple[int | None, int | None]:
    """(uid, gid) of ``nobody`` when running as root, else (None, None): nothing to drop."""
    if os.geteuid() != 0:
        return None, None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return 65534, 65534
    return entry.pw_uid, entry.pw_gid


@lru_cache(maxsize=1)
def _can_unshare_net() -> bool:
    """Whether ``unshare --net`` works here (root, or a kernel and container that allow it)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def isolation() -> dict[str, bool]:
    """Which OS-level layers are active on this machine (for reports and tests)."""
    uid, _ = _unprivileged_ids()
    return {"network_namespace": _can_unshare_net(), "drops_to_nobody": uid is not None,
            "audit_hook": True, "process_group_kill": True}
