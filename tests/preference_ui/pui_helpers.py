"""Helpers for the preference_ui tests: items, stores, free ports, server processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from preference_ui.items import validate_item
from preference_ui.store import Store

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}


def make_items(n: int, prefix: str = "it", round: int = 1, task: bool = False) -> list:
    """n items "What is k + 1?" with a correct response a and a wrong response b."""
    items = []
    for k in range(n):
        meta = {}
        if task:
            meta["task"] = {"family": "math", "template": "math.add", "prompt": f"What is {k} + 1?",
                            "reference": str(k + 1), "solution": f"{k} + 1 = {k + 1}\nAnswer: {k + 1}",
                            "meta": {"a": k, "b": 1}}
        items.append(validate_item({"id": f"{prefix}{k:03d}", "prompt": f"What is {k} + 1?",
                                    "responses": [f"Answer: {k + 1}", f"Answer: {k + 2}"],
                                    "models": ["policy-new", "policy-old"], "round": round, "meta": meta},
                                   "test"))
    return items


def new_store(path: Path, users=("alice", "bob"), admin=("alice",), **kwargs) -> Store:
    """A store at ``path`` with the named accounts (passwords from PASSWORDS)."""
    store = Store(path, **kwargs)
    for name in users:
        store.add_user(name, PASSWORDS[name], admin=name in admin)
    return store


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Start-up imports gradio, torch and transformers: seconds on a quiet machine, minutes on a loaded one.
SERVER_START_TIMEOUT = float(os.environ.get("WORKBENCH_TEST_SERVER_TIMEOUT", "600"))


def wait_for_http(url: str, timeout: float = SERVER_START_TIMEOUT, proc: subprocess.Popen | None = None,
                  log: Path | None = None) -> None:
    """Wait until ``url`` answers (any HTTP status); fail at once if ``proc`` exits, with its log."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}{_log_tail(log)}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s{_log_tail(log)}")


def _log_tail(log: Path | None, lines: int = 40) -> str:
    """The last lines of a server log, for an error message."""
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    if not tail:
        return f"\n({log} is empty)"
    return f"\n--- last {len(tail)} lines of {log} ---\n" + "\n".join(tail)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGKILL the process's whole group (it was started in a session of its own) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(60)


@contextlib.contextmanager
def server_process(db: Path, port: int, log: Path) -> Iterator[subprocess.Popen]:
    """`workbench annotate serve` in its own process (so it can be SIGKILLed), stopped on every path."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rounds.main", "annotate", "serve", "--db", str(db), "--port", str(port),
             "--set", "annotation.lease_seconds=600"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", proc=proc, log=log)
        yield proc
    finally:
        stop_process(proc)
