"""The escapes of issue #19, each run as the caller (root in CI) and as ``nobody`` (the unprivileged jail).

The ``nobody`` runs execute byte-identical copies of ``sandbox.py`` and ``sandbox_child.py`` under a
Python interpreter that ``nobody`` can read (the project's own lives under /root), through
``runuser``; there bwrap builds an unprivileged user namespace instead of dropping from root.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from workbench.tasks import sandbox
from workbench.tasks.sandbox import CaseResult, FunctionRun, SandboxResult, parse_claim

OK = 20.0  # generous wall clock: two users' jails may run beside other jobs on two cores
NOBODY = 65534
SANDBOX_FILES = (Path(sandbox.__file__), sandbox.CHILD)
RUNNER = """
import dataclasses, json, sys
sys.path.insert(0, sys.argv[1])
import sandbox
request = json.loads(sys.stdin.read())
result = getattr(sandbox, request["fn"])(*request["args"], **request["kwargs"])
print(json.dumps(dataclasses.asdict(result)))
"""


class AsNobody:
    """run_python / run_function executed by a process of the user ``nobody`` (through runuser)."""

    def __init__(self, python: str, folder: str):
        self.python, self.folder = python, folder

    def _call(self, fn: str, *args, **kwargs) -> dict:
        request = json.dumps({"fn": fn, "args": list(args), "kwargs": kwargs})
        done = subprocess.run(["runuser", "-u", "nobody", "--", self.python, "-I", "-c", RUNNER, self.folder],
                              input=request, capture_output=True, text=True, timeout=120, cwd="/")
        assert done.returncode == 0, f"the sandbox failed as nobody: {done.stderr[-2000:]}"
        return json.loads(done.stdout)

    def run_python(self, code: str, **kwargs) -> SandboxResult:
        """run_python as nobody."""
        return SandboxResult(**self._call("run_python", code, **kwargs))

    def run_function(self, code: str, fname: str, inputs: list, **kwargs) -> FunctionRun:
        """run_function as nobody."""
        data = self._call("run_function", code, fname, inputs, **kwargs)
        return FunctionRun(**{**data, "cases": [CaseResult(**c) for c in data["cases"]]})


def _python_for_nobody() -> str | None:
    """An interpreter of this Python version that nobody can run, or None."""
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"):
        probe = subprocess.run(["runuser", "-u", "nobody", "--", candidate, "-I", "-c", "pass"],
                               capture_output=True, timeout=60, cwd="/")
        if probe.returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def nobody_runner():
    """A runner as nobody, with copies of the sandbox module readable by nobody."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("running as another user needs root and runuser; this run is not root")
    python = _python_for_nobody()
    if python is None:
        pytest.skip(f"no Python {sys.version_info[0]}.{sys.version_info[1]} that nobody can execute")
    folder = tempfile.mkdtemp(prefix="wb-sandbox-nobody-")
    try:
        for path in SANDBOX_FILES:
            shutil.copy(path, folder)
        os.chmod(folder, 0o755)
        yield AsNobody(python, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["caller", "nobody"])
def box(request):
    """The sandbox as the test's own user (root in CI) and as nobody."""
    return sandbox if request.param == "caller" else request.getfixturevalue("nobody_runner")


@pytest.fixture
def nobody_uid():
    """The uid a victim process should run under: nobody when we can switch to it, else our own."""
    return NOBODY if os.geteuid() == 0 else os.geteuid()


def test_the_nobody_runner_really_runs_as_nobody_in_its_own_namespaces(nobody_runner):
    result = nobody_runner.run_python("import os\nprint(os.getpid(), os.getuid())", timeout=OK)
    assert result.ok, result.error
    pid, uid = map(int, result.stdout.split())
    assert pid < 10 and uid == NOBODY  # a fresh PID namespace, mapped to the caller nobody


def test_clearing_the_hooks_rule_sets_through_main_changes_nothing(box):
    code = ("import sys\nm = sys.modules['__main__']\n"
            "for name in ('BLOCKED_EVENTS', 'BLOCKED_MODULES', 'PATH_EVENTS'):\n"
            "    try:\n        getattr(m, name).clear()\n    except AttributeError:\n        pass\n"
            "m.BLOCKED_EVENTS, m.BLOCKED_MODULES, m.BLOCKED_PREFIXES = frozenset(), frozenset(), ()\n"
            "m.PATH_EVENTS = {}\n"
            "import ctypes")
    result = box.run_python(code, timeout=OK)
    assert not result.ok and "importing ctypes is not allowed" in result.error


def test_ctypes_cannot_even_load_without_the_hook(box):
    result = box.run_python("import ctypes", timeout=OK, audit_hook=False)
    assert not result.ok and "ImportError" in result.error and "libffi" in result.error


@pytest.mark.parametrize("how", ["import", "create_dynamic"])
def test_a_shared_object_written_to_the_folder_cannot_be_loaded(box, how):
    # A real extension module of the standard library, copied into the folder: loading it from
    # there is what a hand-made shared object would do to run native code.
    load = {"import": "sys.path.insert(0, '.')\ndel sys.modules['_queue']\nimport _queue",
            "create_dynamic": "import _imp, importlib.machinery\n"
                              "_imp.create_dynamic(importlib.machinery.ModuleSpec('_queue', None, origin=name))"}[how]
    code = ("import _queue, os, shutil, sys\nname = os.path.basename(_queue.__file__)\n"
            f"shutil.copy(_queue.__file__, name)\n{load}")
    result = box.run_python(code, timeout=OK)
    assert not result.ok and "loading the extension module" in result.error and "_queue.cpython" in result.error


def test_the_standard_librarys_extension_modules_still_load(box):
    code = "import _queue, _json, _decimal, _zoneinfo\nprint(_queue.__file__.startswith('/sandbox'))"
    result = box.run_python(code, timeout=OK)
    assert result.ok and result.stdout == "False\n", result.error


def test_a_socket_cannot_reach_a_local_listener_without_the_hook(box):
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
        result = box.run_python(code, timeout=OK, audit_hook=False)
        with pytest.raises(TimeoutError):
            server.accept()
    # The jail's loopback is its own: nothing listens there, and the host's listener saw no one.
    assert not result.ok and "Connection refused" in result.error


def test_replacing_realpath_and_isinstance_does_not_open_the_host(box, tmp_path):
    target = tmp_path / "escape.txt"
    write = f"open({str(target)!r}, 'w').write('pwned')"
    code = f"import os\nos.path.realpath = lambda p, **k: '/sandbox/x'\nos.fsdecode = lambda p: '/sandbox/x'\n{write}"
    result = box.run_python(code, timeout=OK)
    assert not result.ok and "outside the sandbox folder" in result.error and not target.exists()
    result = box.run_python(code, timeout=OK, audit_hook=False)
    assert not result.ok and "No such file or directory" in result.error and not target.exists()
    # A replaced isinstance also breaks the runner's own reporting (json uses it): still a failure.
    result = box.run_python(f"import builtins\nbuiltins.isinstance = lambda *a: True\n{write}", timeout=OK)
    assert not result.ok and "sandbox runner: TypeError" in result.error and not target.exists()


@pytest.mark.parametrize("call", ["os.open('../X', os.O_WRONLY | os.O_CREAT, dir_fd=fd)",
                                  "os.mkdir('../X', dir_fd=fd)"])
def test_a_dir_fd_after_chdir_cannot_leave_the_folder(box, call):
    code = f"import os\nos.mkdir('sub')\nfd = os.open('.', os.O_RDONLY)\nos.chdir('sub')\n{call}"
    result = box.run_python(code, timeout=OK)
    assert not result.ok and "outside the sandbox folder" in result.error
    result = box.run_python(code, timeout=OK, audit_hook=False)
    assert not result.ok and "Read-only file system" in result.error  # '..' of the folder is the jail's root


def test_a_process_outside_the_jail_cannot_be_signalled(box, nobody_uid):
    victim = subprocess.Popen(["sleep", "60"], user=nobody_uid)
    try:
        code = f"import os, signal\nsignal.pidfd_send_signal(os.pidfd_open({victim.pid}), signal.SIGKILL)"
        result = box.run_python(code, timeout=OK)
        assert not result.ok and "ProcessLookupError" in result.error
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_a_sample_cannot_kill_a_sibling_samples_check(box):
    highest = max(int(p) for p in os.listdir("/proc") if p.isdigit()) + 2000
    victim_code = "import time\ndef f(xs):\n    time.sleep(3)\n    return sorted(xs)"
    # The attacker sweeps every pid again and again for 2.5 s, so it overlaps the victim's sleep
    # however slowly either jail starts.
    attack = ("import os, signal, time\nreached = set()\nend = time.monotonic() + 2.5\n"
              "while time.monotonic() < end:\n    for pid in range(1, %d):\n"
              "        if pid in (os.getpid(), os.getppid()):\n            continue\n"
              "        try:\n            fd = os.pidfd_open(pid)\n        except OSError:\n            continue\n"
              "        reached.add(pid)\n"
              "        try:\n            signal.pidfd_send_signal(fd, signal.SIGKILL)\n        except OSError:\n"
              "            pass\n        os.close(fd)\nprint(sorted(reached))" % highest)
    victim: list[FunctionRun] = []
    thread = threading.Thread(target=lambda: victim.append(box.run_function(victim_code, "f", [[2, 1]], timeout=OK)))
    thread.start()
    time.sleep(0.3)
    attacker = box.run_python(attack, timeout=OK)
    thread.join()
    # Only its own jail's processes exist for it: its harness, itself and the namespace's init (pid 1,
    # which the kernel shields from signals sent inside its namespace).
    assert attacker.ok and attacker.stdout.strip() == "[1]", (attacker.error, attacker.stdout)
    assert victim[0].ok and victim[0].cases[0].value == [1, 2]


def test_stdin_is_empty_and_the_result_channel_is_closed_before_the_code_runs(box):
    code = ("import os, sys\nprint(repr(os.read(0, 100)))\n"
            "def target(fd):\n    try:\n        return os.readlink(f'/proc/self/fd/{fd}')\n"
            "    except OSError:\n        return ''\n"
            "fds = {int(fd): target(fd) for fd in os.listdir('/proc/self/fd')}\n"
            "print(sum(target.startswith('pipe:') for target in fds.values()), fds[0])\n"
            "frame, result_fds = sys._getframe(), set()\nwhile frame:\n"
            "    payload = frame.f_locals.get('payload')\n"
            "    if isinstance(payload, dict):\n        result_fds.add(payload['result_fd'])\n"
            "    frame = frame.f_back\n"
            "for fd in result_fds:\n    try:\n        os.write(fd, b'{\"exit\": 0}\\n')\n        print('wrote', fd)\n"
            "    except OSError as exc:\n        print('closed', fd, exc.errno)")
    result = box.run_python(code, timeout=OK)
    lines = result.stdout.splitlines()
    assert result.ok, result.error
    assert lines[0] == "b''" and lines[1] == "1 /dev/null"  # one pipe: the runner's own claims
    assert len(lines) == 3 and lines[2].startswith("closed ")  # the payload named the fd; it is gone


FORGERIES = {
    "missing value": b'{"i": 0, "ok": true}',
    "string index": b'{"i": "0", "ok": true, "value": [2]}',
    "not an object": b"[1, 2]",
    "untagged float": b'{"i": 0, "ok": true, "value": 1.5}',
    "NaN": b'{"i": 0, "ok": true, "value": NaN}',
    "deep nesting": b'{"i": 0, "ok": true, "value": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "huge integer": b'{"i": 0, "ok": true, "value": ' + b"9" * 5000 + b"}",
    "foreign tag": b'{"i": 0, "ok": true, "value": {"type": 1, "repr": "x"}}',
    "input not given": b'{"i": 7, "ok": true, "value": [2]}',
    "second result": b'{"i": 0, "ok": true, "value": [2]}',
    "harness record": b'{"exit": 0}',
    "oversized line": b"x" * 200_000,
    "bad bytes": b'\xff\xfe{"done": true}',
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_records_fail_the_check_with_a_reason(box, name):
    code = ("import os\nfor fd in range(3, 32):\n    try:\n"
            "        if os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:'):\n"
            f"            os.write(fd, {FORGERIES[name]!r} + b'\\n')\n    except OSError:\n        pass\n"
            "def f(xs):\n    return [2]")
    run = box.run_function(code, "f", [[1]], timeout=OK)
    assert not run.ok and ("malformed" in run.error or "not given" in run.error), run.error


def test_done_and_exit_without_running_the_function_is_a_failure(box):
    code = ("import os\nfor fd in range(1, 32):\n    try:\n        os.write(fd, b'{\"done\": true}\\n')\n"
            "    except OSError:\n        pass\nos._exit(0)\ndef f(xs):\n    return xs")
    run = box.run_function(code, "f", [[1]], timeout=OK)
    # "done" is one more claim of the code's own process; a check needs each input's result.
    assert not run.ok and not run.cases[0].ok and run.error == "input 0: no result for this input"


def test_done_on_stdout_and_the_old_result_fd_then_exit_is_a_failure(box):
    code = ("import os, sys\nprint('{\"done\": true}', flush=True)\nframe = sys._getframe()\n"
            "while frame and not isinstance(frame.f_locals.get('payload'), dict):\n    frame = frame.f_back\n"
            "try:\n    os.write(frame.f_locals['payload']['result_fd'], b'{\"done\": true}\\n')\n"
            "except OSError:\n    pass\nos._exit(0)")
    result = box.run_python(code, timeout=OK)
    assert not result.ok and "exited before finishing" in result.error


def test_many_files_stop_at_the_folders_total_size(box):
    code = ("n = 0\ntry:\n    while n < 100:\n        with open(f'f{n}', 'wb') as f:\n"
            "            f.write(b'x' * (8 * 1024 * 1024 - 1))\n        n += 1\nfinally:\n    print(n)")
    start = time.monotonic()
    result = box.run_python(code, timeout=OK, disk_mb=16)
    assert not result.ok and "No space left on device" in result.error
    assert int(result.stdout) == 2 and time.monotonic() - start < OK  # 16 MB hold two files of 8 MB


def test_the_machines_files_are_invisible(box):
    project = Path(__file__).resolve().parents[2]
    paths = [str(project / "workbench" / "tasks" / "sandbox.py"), str(project / "tests"), str(Path.home() / ".bashrc"),
             "/etc/passwd", "/etc", "/home", "/var", "/usr/bin/env", "/bin/sh", "/usr/share"]
    code = (f"import json, os\nprint(json.dumps(sorted(os.listdir('/'))))\n"
            f"print(json.dumps([p for p in {paths!r} if os.path.exists(p)]))\n"
            f"print(json.dumps(sorted(os.listdir({str(project)!r})) if os.path.isdir({str(project)!r}) else []))")
    result = box.run_python(code, timeout=OK, audit_hook=False)
    assert result.ok, result.error
    top, visible, in_project = (json.loads(line) for line in result.stdout.splitlines())
    assert visible == [] and {"etc", "home", "var", "work"}.isdisjoint(top)
    assert {"sandbox", "proc", "dev", "tmp"} <= set(top)
    # a project whose virtual environment holds the interpreter shows that folder (read-only) and nothing else
    assert set(in_project) <= {".venv"}


def test_the_folder_is_the_only_writable_place(box):
    code = ("import os, sys\nfor folder in ('/', '/tmp', '/dev', '/dev/shm', '/proc',\n"
            "               os.path.dirname(sys.executable), os.path.dirname(os.__file__)):\n"
            "    try:\n        open(os.path.join(folder, 'x'), 'w').write('x')\n        print('wrote', folder)\n"
            "    except OSError as exc:\n        print(exc.errno)\nopen('/dev/null', 'w').write('x')")
    result = box.run_python(code, timeout=OK, audit_hook=False)
    assert result.ok and "wrote" not in result.stdout and len(result.stdout.split()) == 7, result.stdout


def test_the_jail_folder_is_a_fresh_tmpfs_each_run(box):
    first = box.run_python("open('mark', 'w').write('x')\nimport os\nprint(os.listdir('.'))", timeout=OK)
    second = box.run_python("import os\nprint(os.listdir('.'))", timeout=OK)
    assert first.ok and first.stdout.strip() == "['mark']" and second.ok and second.stdout.strip() == "[]"


@pytest.mark.parametrize("text", ['{"done": true, "x": 1}', '{"fatal": 3}', '{"i": -1, "ok": false, "error": "e"}',
                                  '{"i": true, "ok": false, "error": "e"}', '{"i": 0, "ok": 1, "value": 1}',
                                  '{"i": 0, "ok": true, "value": {"type": "t", "repr": "r", "x": "y"}}',
                                  '"done"', "", "[" * 100 + "]" * 100, '{"done": true}' * 2])
def test_parse_claim_refuses_what_the_runner_never_writes(text):
    assert isinstance(parse_claim(text), str)


@pytest.mark.parametrize("text", ['"a\\' * 21_000, "[" * 64_000, '"' + "a" * 64_000, '"[\\"' * 16_000])
def test_parse_claim_is_fast_on_the_largest_hostile_claims(text):
    start = time.monotonic()
    assert isinstance(parse_claim(text), str)
    assert time.monotonic() - start < 1.0  # a backtracking scan took 16 s on the first one


def test_parse_claim_accepts_what_the_runner_writes():
    for record in ({"done": True}, {"fatal": "ValueError: x"}, {"i": 3, "ok": False, "error": "E"},
                   {"i": 0, "ok": True, "value": [1, [True, None, "s"], {"type": "tuple", "repr": "(1,)"}]}):
        assert parse_claim(json.dumps(record)) == record


def test_a_bwrap_that_cannot_make_namespaces_stops_code_with_its_own_message(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"  # what bwrap prints where user namespaces are forbidden
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    sandbox._check_jail.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="No permissions to create new namespace.*bubblewrap"):
            sandbox.run_function("def f(xs):\n    return xs", "f", [[1]], timeout=OK)
    finally:
        sandbox._check_jail.cache_clear()


def test_without_bwrap_no_code_runs_and_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without bwrap
    sandbox._check_jail.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
            sandbox.run_python("print(1)", timeout=OK)
    finally:
        sandbox._check_jail.cache_clear()



X86_64_ONLY = pytest.mark.skipif(sandbox._seccomp_program() is None, reason="the seccomp filter is for x86-64 only")


@X86_64_ONLY
def test_the_seccomp_filter_answers_denied_calls_with_enosys(box):
    # chroot is one of the denied calls that Python can make itself; unfiltered, nobody gets EPERM.
    code = "import os\ntry:\n    os.chroot('/sandbox')\nexcept OSError as exc:\n    print(exc.errno)"
    result = box.run_python(code, timeout=OK, audit_hook=False)
    assert result.ok and int(result.stdout) == 38  # ENOSYS


@X86_64_ONLY
def test_fork_and_threads_still_work_under_the_seccomp_filter(box):
    code = ("import os, threading\npid = os.fork()\nif pid == 0:\n    os._exit(7)\n"
            "print(os.waitpid(pid, 0)[1] >> 8)\nthread = threading.Thread(target=print, args=('thread',))\n"
            "thread.start()\nthread.join()")
    result = box.run_python(code, timeout=OK, audit_hook=False, processes=50)
    assert result.ok and result.stdout.split() == ["7", "thread"], result.error


@X86_64_ONLY
def test_the_denied_syscall_numbers_match_the_kernel_headers():
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if not header.exists():
        pytest.skip(f"{header} is not installed (Debian linux-libc-dev)")
    numbers = dict(line.split()[1:3] for line in header.read_text().splitlines() if line.startswith("#define __NR_"))
    assert {name: int(numbers[f"__NR_{name}"]) for name in sandbox.DENIED_SYSCALLS_X86_64} \
        == sandbox.DENIED_SYSCALLS_X86_64
