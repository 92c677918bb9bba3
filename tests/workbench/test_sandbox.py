"""The sandbox contains hostile code: each attack fails as a reported check, never hangs or harms the caller."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from workbench.tasks.sandbox import isolation, run_function, run_python

HANG = 1.0  # wall clock for the code that never ends
OK = 10.0  # generous: these finish in a tenth of a second unless the machine is very busy


def test_ordinary_code_runs_and_its_output_is_captured():
    result = run_python("import math\nprint(math.factorial(5))", timeout=OK)
    assert result.ok and result.stdout == "120\n" and result.error is None


def test_an_infinite_loop_is_killed_at_the_wall_clock():
    start = time.monotonic()
    result = run_python("while True:\n    pass", timeout=HANG)
    assert not result.ok and result.timed_out and "timed out" in result.error
    assert time.monotonic() - start < HANG + 3


def test_a_fork_bomb_is_refused():
    result = run_python("import os\nwhile True:\n    os.fork()", timeout=OK)
    assert not result.ok and "os.fork" in result.error


def test_a_fork_bomb_that_ignores_errors_is_killed_on_overrun():
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except Exception:\n        pass"
    result = run_python(code, timeout=HANG)
    assert not result.ok and result.timed_out


def test_without_the_audit_hook_the_process_limit_still_stops_forks():
    # Bounded on purpose: at most 5 sleeping children, and the process group is killed afterwards.
    code = ("import os, time\nn = 0\nfor _ in range(5):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n"
            "    n += 1\nprint('forked', n)")
    result = run_python(code, timeout=OK, audit_hook=False)
    assert result.ok and result.stdout.strip() == "forked 0"


def test_a_huge_allocation_fails_with_memory_error():
    result = run_python("x = bytearray(8 * 1024 ** 3)", timeout=OK, memory_mb=256)
    assert not result.ok and "MemoryError" in result.error


def test_growing_memory_hits_the_address_space_limit():
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(32 * 1024 ** 2))"
    result = run_python(code, timeout=OK, memory_mb=256)
    assert not result.ok and "MemoryError" in result.error


@pytest.mark.parametrize("where", ["tmp_path", "world_writable"])
def test_writing_outside_its_folder_is_refused(where, tmp_path):
    target = tmp_path / "escape.txt" if where == "tmp_path" else Path("/tmp") / f"wb-escape-{uuid.uuid4().hex}"
    try:
        result = run_python(f"open({str(target)!r}, 'w').write('pwned')", timeout=OK)
        assert not result.ok and "outside the sandbox folder" in result.error
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_writing_outside_through_a_folder_descriptor_is_refused():
    code = "import os\nfd = os.open('/tmp', os.O_RDONLY)\nos.open('x', os.O_WRONLY | os.O_CREAT, dir_fd=fd)"
    result = run_python(code, timeout=OK)
    assert not result.ok and "opening the folder" in result.error


def test_removing_files_outside_its_folder_is_refused(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    result = run_python(f"import os\nos.remove({str(victim)!r})", timeout=OK)
    assert not result.ok and victim.read_text() == "precious"


def test_writing_inside_its_folder_works_and_the_folder_is_removed():
    code = "import os\nopen('note.txt', 'w').write('x')\nprint(os.getcwd())\nprint(open('note.txt').read())"
    result = run_python(code, timeout=OK)
    workdir, content = result.stdout.split()
    assert result.ok and content == "x" and not Path(workdir).exists()


@pytest.mark.parametrize("code", [
    "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
    "import _socket\n_socket.socket()",
])
def test_opening_a_socket_is_refused(code):
    result = run_python(code, timeout=OK)
    assert not result.ok and "socket" in result.error


@pytest.mark.skipif(not isolation()["network_namespace"], reason="no working bwrap jail on this machine")
def test_the_child_has_no_network_interface_but_loopback():
    result = run_python("print(open('/proc/net/dev').read())", timeout=OK)
    interfaces = {line.split(":")[0].strip() for line in result.stdout.splitlines() if ":" in line}
    assert result.ok and interfaces == {"lo"}


def test_os_system_is_refused(tmp_path):
    marker = Path("/tmp") / f"wb-system-{uuid.uuid4().hex}"
    try:
        result = run_python(f"import os\nos.system('touch {marker}')", timeout=OK)
        assert not result.ok and "os.system" in result.error and not marker.exists()
    finally:
        marker.unlink(missing_ok=True)


@pytest.mark.parametrize("code", [
    "import subprocess\nsubprocess.run(['true'])",
    "import os\nos.execv('/bin/true', ['true'])",
    "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
    "import os\nos.kill(os.getpid(), 0)",  # signal 0: harmless even if it were let through
])
def test_processes_signals_and_limit_changes_are_refused(code):
    result = run_python(code, timeout=OK)
    assert not result.ok and "not allowed" in result.error


def test_without_the_audit_hook_the_jail_still_refuses_writes(tmp_path):
    # The host's folders are not in the jail, and the jail's root is read-only.
    target = tmp_path / "escape.txt"
    result = run_python(f"open({str(target)!r}, 'w')", timeout=OK, audit_hook=False)
    assert not result.ok and "No such file or directory" in result.error and not target.exists()
    result = run_python("open('/escape.txt', 'w')", timeout=OK, audit_hook=False)
    assert not result.ok and "Read-only file system" in result.error


def test_exiting_early_is_a_failure():
    assert not run_python("import sys\nsys.exit(0)", timeout=OK).ok
    assert not run_python("import os\nos._exit(0)", timeout=OK).ok


def test_output_is_capped():
    result = run_python("print('x' * 10 ** 7)", timeout=OK, file_mb=1)
    assert not result.ok and "File too large" in result.error and len(result.stdout) <= 1024 ** 2


def test_run_function_calls_the_function_on_every_input_in_one_child():
    run = run_function("def f(xs):\n    return sorted(xs)", "f", [[3, 1, 2], [], [5, -5]], timeout=OK)
    assert run.ok and [c.value for c in run.cases] == [[1, 2, 3], [], [-5, 5]]


def test_run_function_reports_per_input_errors_and_foreign_types():
    run = run_function("def f(xs):\n    return (xs[0],)", "f", [[1], []], timeout=OK)
    assert not run.ok
    assert run.cases[0].ok and run.cases[0].value == {"type": "tuple", "repr": "(1,)"}
    assert not run.cases[1].ok and "IndexError" in run.cases[1].error


def test_run_function_keeps_the_results_before_a_hang():
    code = "def f(xs):\n    while xs == [9]:\n        pass\n    return len(xs)"
    run = run_function(code, "f", [[1, 2], [9], [3]], timeout=HANG)
    assert run.timed_out and run.cases[0].ok and run.cases[0].value == 2
    assert not run.cases[1].ok and not run.cases[2].ok


def test_run_function_reports_missing_functions_and_syntax_errors():
    assert "does not define" in run_function("def g(xs):\n    return 1", "f", [[1]], timeout=OK).error
    assert "SyntaxError" in run_function("def f(xs) return 1", "f", [[1]], timeout=OK).error
