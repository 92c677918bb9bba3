"""The program the sandbox runs in its child process (standard library only, run with ``python -I -S``).

It reads one JSON payload from stdin, then, in this order: imports the allowed modules, sets the
resource limits, drops root privileges, enters the throw-away folder, installs the audit hook,
and only then runs the untrusted code. Results go to their own file descriptor, on lines prefixed
by a per-run nonce, so that whatever the code prints cannot be mistaken for a result.
"""

import json
import os
import resource
import sys

BLOCKED_EVENTS = {
    "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.kill",
    "os.killpg", "subprocess.Popen", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.setprofile", "sys.settrace",
}
BLOCKED_PREFIXES = ("socket.", "ctypes.", "_ctypes.", "winreg.", "msvcrt.")
BLOCKED_MODULES = {"_posixsubprocess", "_ctypes", "ctypes", "multiprocessing", "_multiprocessing",
                   "subprocess", "pty", "_socket", "socket", "ssl"}
# Events that create, change or remove a file system entry: the argument positions holding paths.
PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (0, 1), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "os.chflags": (0,), "os.mkfifo": (0,), "os.mknod": (0,),
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
    """An audit hook refusing processes, sockets, ctypes and file changes outside ``workdir``."""
    root = os.path.realpath(workdir)

    def inside(path):
        if isinstance(path, int):
            return True  # an already open descriptor (0, 1, 2): nothing new is reached
        real = os.path.realpath(os.fsdecode(path))
        return real == root or real.startswith(root + os.sep) or real == os.devnull

    def hook(event, args):
        if event in BLOCKED_EVENTS or event.startswith(BLOCKED_PREFIXES):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args[0].split(".")[0] in BLOCKED_MODULES:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "object.__setattr__" and args[1] == "__code__":
            raise PermissionError("sandbox: replacing a function's code is not allowed")
        if event == "open" and args[0] is not None and not inside(args[0]):
            mode, flags = args[1], args[2]
            if (mode and any(c in mode for c in "wax+")) or (flags & WRITE_FLAGS):
                raise PermissionError(f"sandbox: writing {args[0]!r} outside the sandbox folder")
            if os.path.isdir(args[0]):  # a folder descriptor would let dir_fd= reach outside
                raise PermissionError(f"sandbox: opening the folder {args[0]!r} outside the sandbox folder")
        for i in PATH_EVENTS.get(event, ()):
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
    """``TypeError: message``, short."""
    return f"{type(exc).__name__}: {exc}"[:500]


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


def main():
    """Read the payload, lock the process down, run the code."""
    payload = json.loads(sys.stdin.read())
    sys.stdin.close()
    for name in payload["preload"]:
        __import__(name)
    set_limits(payload["limits"])
    drop_privileges(payload["uid"], payload["gid"])
    os.chdir(payload["workdir"])
    out, nonce = os.fdopen(payload["result_fd"], "w", encoding="utf-8"), payload["nonce"]

    def emit(line):
        out.write("\n" + nonce + line + "\n")
        out.flush()

    if payload["audit"]:
        sys.addaudithook(make_audit_hook(payload["workdir"]))
    del payload["nonce"]
    run(payload, emit)


if __name__ == "__main__":  # run by the sandbox as `python -I -S -c <this source>`
    main()
