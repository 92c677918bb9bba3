"""Helpers for the preference_ui tests: items, stores, free ports, server processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def wait_for_http(url: str, timeout: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers (any HTTP status)."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def start_server_process(db: Path, port: int, log: Path) -> subprocess.Popen:
    """`workbench annotate serve` in its own process (so it can be SIGKILLed)."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "annotate", "serve", "--db", str(db), "--port", str(port),
         "--set", "annotation.lease_seconds=600"],
        cwd=REPO, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_http(f"http://127.0.0.1:{port}/", proc=proc)
    return proc
