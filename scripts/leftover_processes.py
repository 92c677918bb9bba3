"""After the test suite: fail, naming them, if processes it started are still running (then stop them).

Every process started during the suite inherits the marker variable that scripts/test.sh sets, so the
check finds them whoever their parent is now (a leaked server is re-parented to init).
Usage: python scripts/leftover_processes.py MARKER_VALUE [--grace SECONDS]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import psutil

MARKER = "WORKBENCH_TEST_RUN"


def leftovers(value: str) -> list[psutil.Process]:
    """Running processes (not this one) whose environment carries MARKER=value."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.status() != psutil.STATUS_ZOMBIE \
                    and proc.environ().get(MARKER) == value:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("value")
    parser.add_argument("--grace", type=float, default=15.0, help="seconds to let exiting processes finish")
    args = parser.parse_args()
    deadline = time.monotonic() + args.grace
    while (procs := leftovers(args.value)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not procs:
        print("leftover processes: none")
        return 0
    print(f"leftover processes: {len(procs)} started by the test suite are still running:", file=sys.stderr)
    for proc in procs:
        try:
            print(f"  pid {proc.pid}: {' '.join(proc.cmdline())[:300]}", file=sys.stderr)
            proc.kill()
        except psutil.Error:
            pass
    return 1


if __name__ == "__main__":
    sys.exit(main())
