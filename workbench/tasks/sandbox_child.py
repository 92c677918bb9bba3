"""The program the sandbox runs inside its jail (standard library only, run as ``python -I -S -c``).

Two processes. The harness reads the payload from stdin, imports the allowed modules, drops root
to ``nobody`` when the jail started it as root, and forks the runner. The runner keeps only
stdin (``/dev/null``), stdout, stderr and the write end of a pipe to the harness, sets the
resource limits, installs the audit hook and only then runs the untrusted code, writing one JSON
record per line (its claims: return values, exceptions, "done") up the pipe. The harness forwards
each line, quoted as a JSON string, on the result descriptor (which the runner never holds),
bounded in size, and ends with the runner's exit status as it observed it. So nothing the code
writes can pass for the harness's own report, and the parent parses every claim as untrusted.
"""

import json
import os
import resource
import sys

MAX_LINE = 64 * 1024  # one claim; longer lines are reported as oversized, not forwarded
MAX_FORWARDED = 1 << 20  # all claims of one run; the rest is drained and dropped
BLOCKED_EVENTS = frozenset({
    "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.kill",
    "os.killpg", "subprocess.Popen", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.setprofile", "sys.settrace",
    "sys.addaudithook", "os.unshare", "os.setns",
})
BLOCKED_PREFIXES = ("socket.", "ctypes.", "_ctypes.", "winreg.", "msvcrt.")
BLOCKED_MODULES = frozenset({"_posixsubprocess", "_ctypes", "ctypes", "multiprocessing", "_multiprocessing",
                             "subprocess", "pty", "_socket", "socket", "ssl"})
# Events that create, change or remove a file system entry (or move the working folder): the
# argument positions holding paths.
PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (0, 1), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "os.chflags": (0,), "os.mkfifo": (0,), "os.mknod": (0,),
    "os.chdir": (0,),
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def set_limits(limits):
    """Apply the resource limits (soft = hard, so the code cannot raise them again)."""
    mb = 1024 * 1024
    for name, value in (("RLIMIT_CPU", limits["cpu_seconds"]), ("RLIMIT_AS", limits["memory_mb"] * mb),
                        ("RLIMIT_FSIZE", limits["file_mb"] * mb), ("RLIMIT_NOFILE", limits["open_files"]),
                        ("RLIMIT_NPROC", limits["processes"]), ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))


def drop_privileges(uid, gid):
    """Become ``uid``/``gid`` (e.g. nobody) when started as root; a no-op otherwise."""
    if uid is None or os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def make_audit_hook(workdir):
    """An audit hook refusing processes, sockets, ctypes and file changes outside ``workdir``.

    Everything it consults is bound here, as frozen values and local names, so the code cannot
    loosen it by editing module globals or replacing ``os.path.realpath``, ``isinstance`` and the
    like. It remains an in-process check (the code could still replace what ``realpath`` calls
    inside ``posixpath``); the jail is the boundary, this hook a second layer.
    """
    realpath, isdir, fsdecode, devnull = os.path.realpath, os.path.isdir, os.fsdecode, os.devnull
    blocked, prefixes, modules, path_events = BLOCKED_EVENTS, BLOCKED_PREFIXES, BLOCKED_MODULES, dict(PATH_EVENTS)
    write_flags, sep, root, int_type, str_type = WRITE_FLAGS, os.sep, realpath(workdir), int, str
    # Extension modules load only from the interpreter's own folders (sys.path before the code ran):
    # the work folder is not noexec, so a shared object written there would run native code.
    startswith, library_folders = str.startswith, tuple(p + sep for p in sys.path if p.startswith(sep))

    def native_allowed(filename):
        return (type(filename) is str_type and sep + ".." not in filename
                and startswith(filename, library_folders))

    def inside(path):
        if type(path) is int_type:
            return True  # an open descriptor; folders outside can never be opened, so it is inside
        text = fsdecode(path)
        if ".." in text.split(sep):
            return False  # relative to a dir_fd the hook cannot see, ".." could leave the folder
        real = realpath(text)
        return real == root or real.startswith(root + sep) or real == devnull

    def hook(event, args):
        if event in blocked or event.startswith(prefixes):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args[0].split(".")[0] in modules:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "import" and args[1] is not None and not native_allowed(args[1]):
            raise PermissionError(f"sandbox: loading the extension module {args[1]!r} is not allowed")
        if event == "object.__setattr__" and args[1] == "__code__":
            raise PermissionError("sandbox: replacing a function's code is not allowed")
        if event == "open" and args[0] is not None and not inside(args[0]):
            mode, flags = args[1], args[2]
            if (mode and any(c in mode for c in "wax+")) or (flags & write_flags):
                raise PermissionError(f"sandbox: writing {args[0]!r} outside the sandbox folder")
            if isdir(args[0]):  # a folder descriptor would let dir_fd= reach outside
                raise PermissionError(f"sandbox: opening the folder {args[0]!r} outside the sandbox folder")
        for i in path_events.get(event, ()):
            if not inside(args[i]):
                raise PermissionError(f"sandbox: {event} on {args[i]!r} outside the sandbox folder")

    return hook


def plain(value):
    """``value`` as JSON, with anything but ints, bools, strings, None and lists tagged by its type."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if type(value) is list:
        return [plain(v) for v in value]
    return {"type": type(value).__name__, "repr": repr(value)[:200]}


def describe(exc):
    """``TypeError: message``, short (and never failing, whatever the exception's ``__str__`` does)."""
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except BaseException:  # noqa: BLE001 (a hostile __str__)
        return "an exception whose message cannot be shown"


def run(payload, emit):
    """Execute the code, then call the requested function on each input, emitting one record each."""
    namespace = {"__name__": "__sandbox__", "__builtins__": __builtins__}
    try:
        exec(compile(payload["code"], "<sandbox>", "exec"), namespace)
    except BaseException as exc:  # noqa: BLE001 (the untrusted code may raise anything, SystemExit too)
        emit(json.dumps({"fatal": describe(exc)}))
        return
    fname = payload.get("function")
    func = namespace.get(fname) if fname else None
    if fname and not callable(func):
        emit(json.dumps({"fatal": f"NameError: the code does not define a function {fname!r}"}))
        return
    for i, arg in enumerate(payload["inputs"] if fname else ()):
        try:
            line = json.dumps({"i": i, "ok": True, "value": plain(func(arg))})
        except BaseException as exc:  # noqa: BLE001
            line = json.dumps({"i": i, "ok": False, "error": describe(exc)})
        emit(line)
    emit(json.dumps({"done": True}))


def runner(payload, claims_fd):
    """The forked runner: shed every other descriptor, lock down, run the code; never returns."""
    status = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        keep = sorted({0, 1, 2, claims_fd})
        for low, high in zip(keep, keep[1:] + [os.sysconf("SC_OPEN_MAX")]):
            os.closerange(low + 1, high)
        out = os.fdopen(claims_fd, "w", encoding="utf-8")

        def emit(line):
            out.write(line + "\n")
            out.flush()

        set_limits(payload["limits"])
        os.chdir(payload["workdir"])
        if payload["audit"]:
            sys.addaudithook(make_audit_hook(payload["workdir"]))
        run(payload, emit)
        status = 0
    except BaseException as exc:  # noqa: BLE001 (the harness's own reporting broke, e.g. builtins replaced)
        os.write(2, f"sandbox runner: {describe(exc)}\n".encode("utf-8", errors="replace"))
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()  # os._exit skips the interpreter's own flush
            except BaseException:  # noqa: BLE001 (a full or closed stream: what was written stays)
                pass
        os._exit(status)


def forward(claims_fd, result_fd):
    """Copy the runner's lines to the result descriptor as JSON strings, bounded; drain the rest."""
    out = os.fdopen(result_fd, "w", encoding="utf-8")
    buffer, forwarded, oversized = b"", 0, False
    while chunk := os.read(claims_fd, 65536):
        *lines, buffer = (buffer + chunk).split(b"\n")
        for line in lines:
            if oversized or len(line) > MAX_LINE:
                record, oversized = {"oversized": True}, False
            elif not line:
                continue
            else:
                record = {"claim": line.decode("utf-8", errors="replace")}
            text = json.dumps(record) + "\n"
            forwarded += len(text)
            if forwarded <= MAX_FORWARDED:
                out.write(text)
                out.flush()
        if len(buffer) > MAX_LINE:
            buffer, oversized = b"", True  # the rest of this line is dropped with it
    return out


def main():
    """Read the payload, fork the runner, forward its claims, report its exit status."""
    payload = json.loads(sys.stdin.read())
    for name in payload["preload"]:
        __import__(name)
    drop_privileges(payload["uid"], payload["gid"])
    claims_read, claims_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(claims_read)
        os.close(payload["result_fd"])
        runner(payload, claims_write)
    os.close(claims_write)
    out = forward(claims_read, payload["result_fd"])
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        out.write(json.dumps({"signal": os.WTERMSIG(status)}) + "\n")
    else:
        out.write(json.dumps({"exit": os.waitstatus_to_exitcode(status)}) + "\n")
    out.flush()


if __name__ == "__main__":  # run by the sandbox as `python -I -S -c <this source>`
    main()
