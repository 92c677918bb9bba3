"""Run untrusted (model-written) Python in a jail.

Threat model: the code is hostile and knows this source. It must not read or change anything
of the machine (project source, databases, other runs), reach the network, outlive its time,
exhaust the machine, disturb another sample's check, or make the caller crash or report a
result it did not get. Layers, outermost first:

1. A bubblewrap jail (Debian ``bubblewrap``), the boundary: fresh mount, PID, network, IPC and
   UTS namespaces. The child sees a read-only root holding only the interpreter, the shared
   libraries it loads and the standard library, a fresh ``/proc`` and minimal ``/dev``, and its
   working folder: a tmpfs capped at ``disk_mb`` in all. No network interface but the jail's
   own loopback; no process outside its own namespace can be seen or signalled. As root the jail
   starts the program as root without user namespace and it drops to ``nobody``; as another
   user bwrap builds an unprivileged user namespace. On x86-64 a seccomp filter answers the
   system calls Python never makes but native code could attack the kernel through (ptrace,
   mounts, namespaces, keyrings, bpf, io_uring, ...) with ENOSYS. Without a working bwrap no model
   code runs: :class:`SandboxUnavailable` says what to install (never a silently weaker sandbox).
2. Resource limits in the runner, soft = hard: CPU seconds, address space, file size, open
   files, processes; a wall-clock timeout after which the whole jail is killed.
3. Two processes inside: a harness that holds the result channel, and the runner it forks,
   which closes that channel before the code runs. The runner's records are claims; the
   harness forwards them bounded and adds the runner's exit status; this module parses every
   claim with a size cap, a depth cap and an exact schema, and any malformed claim fails the run.
4. An audit hook in the runner (a second layer, in the code's own process): it refuses
   fork/exec/``os.system``/``subprocess``, sockets, ctypes, signals, raising limits, file
   changes outside the folder and extension modules from outside the interpreter's folders
   (the tmpfs is not noexec), and consults only values it captured when installed.

The child imports only the standard library (``python -I -S``); a small allow-list of pure modules
(:data:`PRELOAD`) is imported before privileges drop. Extension modules that need shared libraries
beyond the interpreter's own (ctypes, ssl, sqlite3, zlib, ...) cannot load in the jail.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import pwd
import re
import shutil
import signal
import struct
import subprocess
import sys
import select
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

CHILD = Path(__file__).with_name("sandbox_child.py")
PRELOAD = ("math", "itertools", "functools", "collections", "operator", "heapq", "bisect", "re",
           "string", "copy", "random", "statistics", "fractions", "decimal")
MAX_OUTPUT_BYTES = 1 << 20
MAX_RESULT_BYTES = 2 << 20  # the harness forwards at most 1 MiB of claims plus its own records
MAX_CLAIM_CHARS = 64 * 1024
MAX_CLAIM_DEPTH = 64  # nesting of one claim's JSON (a value of depth 62 inside a record)
MAX_INT_DIGITS = 1000
# A JSON string (an unterminated one runs to the end, so the scan stays linear) or a bracket.
STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
WORKDIR = "/sandbox"  # the working folder's path inside the jail (a tmpfs; nothing of the host)
INSTALL_HINT = ("install Debian's bubblewrap (`apt-get install bubblewrap`; scripts/setup.sh does it); "
                "as a non-root user the kernel must also allow unprivileged user namespaces "
                "(user.max_user_namespaces > 0, and on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0)")


class SandboxUnavailable(RuntimeError):
    """The jail cannot run on this machine; no model code is run without it."""


@dataclass
class SandboxResult:
    """What one sandboxed run did."""

    ok: bool  # the code ran to the end without an exception, timeout or signal
    stdout: str  # what the code printed (capped)
    stderr: str  # what it wrote to stderr (capped)
    error: str | None  # why it failed, one line
    timed_out: bool = False
    returncode: int | None = None  # the runner's exit status (negative: killed by that signal)
    duration: float = 0.0
    records: list[dict] = field(default_factory=list)  # the runner's claims that passed the schema (internal)


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


def run_python(code: str, *, timeout: float = 5.0, memory_mb: int = 512, file_mb: int = 8, disk_mb: int = 16,
               open_files: int = 32, processes: int = 1, audit_hook: bool = True) -> SandboxResult:
    """Run ``code`` as a script in the sandbox; ``ok`` when it finished without error.

    ``audit_hook=False`` leaves only the OS-level layers, to test them alone.
    """
    payload = {"code": code, "function": None, "inputs": []}
    result = _run_child(payload, timeout=timeout, memory_mb=memory_mb, file_mb=file_mb, disk_mb=disk_mb,
                        open_files=open_files, processes=processes, audit_hook=audit_hook)
    result.error = _failure(result)
    result.ok = result.error is None
    return result


def run_function(code: str, fname: str, inputs: list, *, timeout: float = 5.0, memory_mb: int = 512,
                 audit_hook: bool = True) -> FunctionRun:
    """Define ``code`` in the sandbox and return ``fname(x)`` for each of ``inputs`` (one child in all)."""
    payload = {"code": code, "function": fname, "inputs": list(inputs)}
    result = _run_child(payload, timeout=timeout, memory_mb=memory_mb, file_mb=8, disk_mb=16, open_files=32,
                        processes=1, audit_hook=audit_hook)
    error = _failure(result)
    by_index = {r["i"]: r for r in result.records if "i" in r}
    if error is None and any(i >= len(inputs) for i in by_index):
        error = "the sandbox's runner sent a result for an input it was not given"
    cases = [CaseResult(ok=by_index[i]["ok"], value=by_index[i].get("value"), error=by_index[i].get("error"))
             if i in by_index else CaseResult(ok=False, error=error or "no result for this input")
             for i in range(len(inputs))]
    if error is None:
        error = next((f"input {i}: {c.error}" for i, c in enumerate(cases) if not c.ok), None)
    return FunctionRun(ok=error is None, cases=cases, error=error, timed_out=result.timed_out,
                       duration=result.duration)


def _failure(result: SandboxResult) -> str | None:
    """Why the run did not finish: overrun, signal, malformed claim, the code's exception, an early exit."""
    if result.error:
        return result.error
    fatal = next((r["fatal"] for r in result.records if "fatal" in r), None)
    if fatal:
        return fatal
    if result.returncode != 0 or not any(r.get("done") for r in result.records):
        last = result.stderr.strip().splitlines()[-1:] or ["nothing on stderr"]
        return f"the code exited before finishing (exit status {result.returncode}; {last[0][:200]})"
    return None


def _run_child(payload: dict, *, timeout: float, memory_mb: int, file_mb: int, disk_mb: int, open_files: int,
               processes: int, audit_hook: bool) -> SandboxResult:
    """Start the jail on ``payload``, enforce the wall clock, clean up, parse its records."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    _check_jail()
    uid, gid = _unprivileged_ids()
    payload = {**payload, "workdir": WORKDIR, "preload": list(PRELOAD), "audit": audit_hook, "uid": uid,
               "gid": gid, "limits": {"cpu_seconds": math.ceil(timeout) + 1, "memory_mb": memory_mb,
                                      "file_mb": file_mb, "open_files": open_files, "processes": processes}}
    return _supervise(payload, timeout, disk_mb)


def _python() -> list[str]:
    """The sandbox program under the real interpreter, ``python -I -S`` (no site, no environment)."""
    return [os.path.realpath(sys.executable), "-I", "-S", "-B", "-X", "utf8", "-c", CHILD.read_text(encoding="utf-8")]


def _jail_args(disk_mb: int, seccomp_fd: int | None) -> list[str]:
    """bwrap's options: namespaces, a read-only root of the interpreter's files, the tmpfs folder, seccomp."""
    if os.geteuid() == 0:  # no user namespace: the program starts as root and drops to nobody itself
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                      "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:  # an unprivileged user namespace, in which no further one can be made
        namespaces = ["--unshare-all", "--unshare-user", "--disable-userns"]
    files = _interpreter_files()
    folders = sorted({str(parent) for _, dest in files for parent in Path(dest).parents if str(parent) != "/"}
                     | {"/tmp"}, key=lambda p: (p.count("/"), p))
    # No --new-session: the jail's init must stay in our process group, so that the one killpg on
    # overrun reaches it and its death kills the whole PID namespace (a setsid() inside included);
    # the group is a new session already, without a controlling terminal.
    args = [_bwrap(), *namespaces, "--die-with-parent", "--clearenv"]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    for name, value in _child_env().items():
        args += ["--setenv", name, value]
    for folder in folders:  # bwrap would copy the host's modes (e.g. /root 0700), locking nobody out
        args += ["--perms", "0755", "--dir", folder]
    for source, dest in files:
        args += ["--ro-bind", source, dest]
    # /dev is a tmpfs the unprivileged jail's user owns: read-only, or it would be an uncapped folder.
    args += ["--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc", "--perms", "1777",
             "--size", str(disk_mb * 1024 * 1024), "--tmpfs", WORKDIR, "--chdir", WORKDIR, "--remount-ro", "/", "--"]
    return args


def _bwrap() -> str:
    """The bwrap executable; SandboxUnavailable when it is not installed."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(f"the sandbox cannot run model code: bwrap is not installed; {INSTALL_HINT}")
    return path


@lru_cache(maxsize=1)
def _interpreter_files() -> tuple[tuple[str, str], ...]:
    """(host path, path in the jail) of the interpreter, the shared libraries it loads and the stdlib."""
    exe = os.path.realpath(sys.executable)
    try:
        listing = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"the sandbox cannot list the shared libraries of {exe} with ldd: {exc}") from exc
    libraries = re.findall(r"(/\S+) \(0x[0-9a-f]+\)", listing)  # "x => /lib/.../x (0x...)" and the loader
    folders = [sysconfig.get_path("stdlib"), sysconfig.get_config_var("DESTSHARED")]
    folders = [folders[0]] + [f for f in folders[1:] if f and not f.startswith(folders[0] + os.sep)]
    return tuple((os.path.realpath(dest), dest) for dest in dict.fromkeys([exe, *libraries, *folders]))


# x86-64 system calls that Python never makes and that only widen the kernel's surface for native
# code that got past the audit hook: ptrace and process_vm_*, mounts, namespaces, keyrings, bpf,
# perf, userfaultfd, io_uring, modules and kexec, chroot, swap, reboot, acct, syslog, file handles.
DENIED_SYSCALLS_X86_64 = {
    "ptrace": 101, "syslog": 103, "personality": 135, "pivot_root": 155, "chroot": 161, "acct": 163,
    "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "init_module": 175,
    "delete_module": 176, "kexec_load": 246, "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272,
    "perf_event_open": 298, "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313, "kexec_file_load": 320, "bpf": 321,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435,
    "mount_setattr": 442,
}
CLONE_NAMESPACES = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


@lru_cache(maxsize=1)
def _seccomp_program() -> bytes | None:
    """A classic-BPF seccomp filter (x86-64 only, else None): the denied calls fail with ENOSYS.

    Other ABIs (i386 through int 0x80, x32) are killed or refused outright, since their numbers
    differ; clone3 gets ENOSYS so that glibc falls back to clone, whose flags the filter can read.
    """
    if platform.machine() != "x86_64":
        return None
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ/JGE/JSET|K, BPF_RET|K
    allow, deny, kill = 0x7FFF0000, 0x00050000 | errno.ENOSYS, 0x80000000
    numbers = sorted(DENIED_SYSCALLS_X86_64.values())
    n = len(numbers)
    # Jump offsets count instructions to skip; the three returns close the program: allow, deny, kill.
    program = [(ld, 0, 0, 4), (jeq, 0, n + 7, 0xC000003E),  # arch is x86-64, else kill
               (ld, 0, 0, 0), (jge, n + 4, 0, 0x40000000)]  # x32 numbers: deny
    program += [(jeq, n - i + 3, 0, nr) for i, nr in enumerate(numbers)]
    program += [(jeq, 0, 2, 56),  # clone: look at its flags
                (ld, 0, 0, 16), (jset, 1, 0, CLONE_NAMESPACES),
                (ret, 0, 0, allow), (ret, 0, 0, deny), (ret, 0, 0, kill)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


@contextmanager
def _seccomp_fd() -> Iterator[int | None]:
    """A descriptor bwrap reads the seccomp filter from (a fresh one per jail), or None without a filter."""
    program = _seccomp_program()
    if program is None:
        yield None
        return
    with tempfile.TemporaryFile() as f:
        f.write(program)
        f.seek(0)
        yield f.fileno()


@lru_cache(maxsize=1)
def _check_jail() -> None:
    """Run the jail once on an empty program; SandboxUnavailable with bwrap's own message when it fails."""
    try:
        with _seccomp_fd() as seccomp:
            command = _jail_args(1, seccomp) + [os.path.realpath(sys.executable), "-I", "-S", "-c", "pass"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                  pass_fds=() if seccomp is None else (seccomp,))
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"the sandbox cannot start bwrap ({exc}); {INSTALL_HINT}") from exc
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SandboxUnavailable(f"the sandbox cannot run model code: bwrap fails here ({why}); {INSTALL_HINT}")


def _supervise(payload: dict, timeout: float, disk_mb: int) -> SandboxResult:
    """Run the jail to completion or timeout, kill its process group, and collect its output."""
    start = time.monotonic()
    with (tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr,
          tempfile.TemporaryFile() as fres, _seccomp_fd() as seccomp):
        fin.write(json.dumps({**payload, "result_fd": fres.fileno()}).encode("utf-8"))
        fin.seek(0)
        passed = (fres.fileno(),) if seccomp is None else (fres.fileno(), seccomp)
        proc = subprocess.Popen(_jail_args(disk_mb, seccomp) + _python(), stdin=fin, stdout=fout, stderr=ferr,
                                cwd="/", env=_child_env(), start_new_session=True, close_fds=True, pass_fds=passed)
        try:
            exited = _wait_exit(proc.pid, timeout)
        finally:
            _kill_group(proc.pid)  # before reaping: the zombie leader keeps the group id from reuse
            proc.wait()
        out, err = _read_capped(fout), _read_capped(ferr)
        records, status, problem = _read_records(fres)
    duration = time.monotonic() - start
    error = None if exited else f"timed out after {timeout:g} s (wall clock)"
    if error is None and status is not None and status < 0:
        error = f"killed by {_signal_name(-status)}"
    if error is None:
        error = problem
    if error is None and status is None:
        error = f"the sandbox's harness did not report (jail exit status {proc.returncode})"
    return SandboxResult(ok=error is None, stdout=out, stderr=err, error=error, timed_out=not exited,
                         returncode=status, duration=duration, records=records)


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
    """SIGKILL every process in the group (it is fine if none is left); the jail's namespace dies with it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_capped(f, limit: int = MAX_OUTPUT_BYTES) -> str:
    """At most ``limit`` bytes of a temp file, decoded leniently."""
    f.seek(0)
    return f.read(limit).decode("utf-8", errors="replace")


def _read_records(f) -> tuple[list[dict], int | None, str | None]:
    """The runner's valid claims, its exit status (None if unreported) and the first problem with its claims."""
    claims, status, problem, seen = [], None, None, set()
    for number, line in enumerate(_read_capped(f, MAX_RESULT_BYTES).splitlines(), 1):
        record = _harness_record(line)
        if isinstance(record, str):
            problem = problem or f"the sandbox's harness wrote a malformed line {number}: {record}"
            continue
        if "exit" in record or "signal" in record:
            status = record.get("exit", -record.get("signal", 0))
            continue
        claim = parse_claim(record["claim"]) if "claim" in record else "a record longer than the size cap"
        if isinstance(claim, dict) and claim.get("i") in seen:
            claim = f"a second result for input {claim['i']}"
        if isinstance(claim, str):
            problem = problem or f"the code sent a malformed result record: {claim}"
            continue
        seen.add(claim.get("i"))
        claims.append(claim)
    return claims, status, problem


def _harness_record(line: str) -> dict | str:
    """One line of the harness: {"claim": str}, {"oversized": true}, {"exit": int} or {"signal": int}."""
    record = _bounded_json(line, MAX_CLAIM_CHARS * 7 + 64)  # a claim, JSON-quoted (\uXXXX escapes)
    if isinstance(record, str):
        return record
    shapes = {"claim": str, "oversized": bool, "exit": int, "signal": int}
    if not (isinstance(record, dict) and len(record) == 1 and next(iter(record)) in shapes
            and type(next(iter(record.values()))) is shapes[next(iter(record))]):
        return f"unexpected record {line[:80]!r}"
    return record


def parse_claim(text: str) -> dict | str:
    """One claim of the runner checked against the exact schema; the reason as a string when it fails."""
    data = _bounded_json(text, MAX_CLAIM_CHARS)
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return f"expected an object, got {type(data).__name__}"
    keys = set(data)
    if keys == {"done"} and data["done"] is True:
        return data
    if keys == {"fatal"} and isinstance(data["fatal"], str):
        return data
    if keys in ({"i", "ok", "value"}, {"i", "ok", "error"}) and type(data["i"]) is int and data["i"] >= 0:
        if data["ok"] is True and "value" in data and _valid_value(data["value"]):
            return data
        if data["ok"] is False and isinstance(data.get("error"), str):
            return data
    return f"not a result record of the expected shape: {text[:120]!r}"


def _valid_value(value: Any) -> bool:
    """Whether ``value`` is what the runner's ``plain`` produces: scalars, lists, {"type", "repr"} tags."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(item)
        elif type(item) is dict:
            if set(item) != {"type", "repr"} or not all(type(v) is str for v in item.values()):
                return False
        elif item is not None and type(item) not in (bool, int, str):
            return False
    return True


def _bounded_json(text: str, max_chars: int) -> Any:
    """``json.loads`` within a size, depth and integer-length cap, without floats; a string says why not."""
    if len(text) > max_chars:
        return f"longer than {max_chars} characters"
    depth = deepest = 0
    for token in STRING_OR_BRACKET.findall(text):
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    if deepest > MAX_CLAIM_DEPTH:
        return f"nested more than {MAX_CLAIM_DEPTH} levels deep"
    try:
        return json.loads(text, parse_int=_bounded_int, parse_float=_no_number, parse_constant=_no_number)
    except (ValueError, RecursionError) as exc:
        return f"not valid JSON ({str(exc)[:120]})"


def _bounded_int(digits: str) -> int:
    """An integer of at most MAX_INT_DIGITS digits."""
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _no_number(text: str) -> None:
    """Floats and NaN never come from the runner (it tags them), so one in a claim is a forgery."""
    raise ValueError(f"an untagged number {text[:40]!r}")


def _signal_name(signum: int) -> str:
    """SIGXCPU (CPU time limit) and friends, readable."""
    names = {signal.SIGXCPU: "SIGXCPU (CPU time limit)", signal.SIGKILL: "SIGKILL (limit or overrun)",
             signal.SIGSEGV: "SIGSEGV (crash, possibly out of memory)", signal.SIGXFSZ: "SIGXFSZ (file size limit)"}
    return names.get(signum, signal.Signals(signum).name if signum in signal.valid_signals() else str(signum))


def _child_env() -> dict[str, str]:
    """A minimal environment: nothing of the caller's (tokens, paths) leaks into the jail."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent", "TMPDIR": WORKDIR}


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


def isolation() -> dict[str, bool]:
    """Which layers are active on this machine (for reports and tests); the jail is required to run code."""
    try:
        _check_jail()
        jail = True
    except SandboxUnavailable:
        jail = False
    uid, _ = _unprivileged_ids()
    return {"jail": jail, "mount_namespace": jail, "pid_namespace": jail, "network_namespace": jail,
            "seccomp": jail and _seccomp_program() is not None, "drops_to_nobody": jail and uid is not None,
            "audit_hook": True, "process_group_kill": True}
