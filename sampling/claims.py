"""Pieces of work claimed atomically from a shared folder, with leases that a live worker renews.

Several sampling workers (processes on one machine, or machines over a shared file system) work on
one stage folder. Before a worker does a piece of work (a shard's generation or scoring) it claims
it by hard-linking a complete claim file to ``claims/<key>.json``: of two workers, exactly one link
succeeds. While it works, a thread renews the claim's expiry every third of the lease. A claim whose
expiry has passed belongs to a dead worker: another worker takes it over by renaming the file aside
(only one rename of a file succeeds) and creating its own; a claim of a process of this host that no
longer runs (a crashed run restarted here) is taken over at once. Claims are removed once the work's output
is on disk, so a finished piece is recognised by its output, never by its claim.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Claims:
    """The claims of one worker (``worker`` names it) in ``folder``, each held for ``lease_seconds``."""

    def __init__(self, folder: str | Path, worker: str | None = None, lease_seconds: float = 300.0):
        self.folder = Path(folder)
        self.worker = worker or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.lease_seconds = lease_seconds

    def path(self, key: str) -> Path:
        """The claim file of ``key``."""
        return self.folder / f"{key}.json"

    def _record(self) -> bytes:
        return json.dumps({"worker": self.worker, "host": socket.gethostname(), "pid": os.getpid(),
                           "expires": time.time() + self.lease_seconds}).encode()

    @staticmethod
    def _dead(held: dict) -> bool:
        """True when the claim's lease ran out, or its worker was a process of this host that no longer runs."""
        if held["expires"] <= time.time():
            return True
        if held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
            return False
        try:
            os.kill(held["pid"], 0)
        except ProcessLookupError:
            return True  # a crashed run on this machine: no need to wait out its lease
        except PermissionError:
            return False  # alive, another user's
        return False

    def holder(self, key: str) -> dict | None:
        """The claim on ``key`` (worker, expires), or None when nobody holds it."""
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:  # unreadable (e.g. cut by a full disk): it expires a lease after it was written
            try:
                return {"worker": "?", "expires": self.path(key).stat().st_mtime + self.lease_seconds}
            except FileNotFoundError:
                return None

    def try_claim(self, key: str) -> bool:
        """Claim ``key`` if nobody holds it or its holder's lease expired; True when this worker holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        held = self.holder(key)
        if held is not None:
            if held["worker"] == self.worker:
                return True
            if not self._dead(held):
                return False
            try:  # a dead worker's claim: set it aside; of several workers, one rename succeeds
                path.rename(path.with_name(f"{path.stem}.stale-{uuid.uuid4().hex[:8]}"))
            except FileNotFoundError:
                return False
        # Written whole to a temp file, then hard-linked into place: the link fails if the claim exists
        # (atomic, NFS included), and a worker killed mid-claim never leaves an empty claim behind.
        tmp = self.folder / f".{key}.{self.worker}.tmp"
        tmp.write_bytes(self._record())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def renew(self, key: str) -> bool:
        """Push this worker's lease on ``key`` forward; False when the claim is no longer this worker's."""
        held = self.holder(key)
        if held is None or held["worker"] != self.worker:
            return False
        tmp = self.path(key).with_name(f".{key}.{self.worker}.tmp")
        tmp.write_bytes(self._record())
        os.replace(tmp, self.path(key))
        return True

    def release(self, key: str) -> None:
        """Drop this worker's claim on ``key`` (its output is on disk)."""
        held = self.holder(key)
        if held is not None and held["worker"] == self.worker:
            self.path(key).unlink(missing_ok=True)

    @contextmanager
    def holding(self, key: str) -> Iterator[None]:
        """Renew the claim on ``key`` in the background while the block runs; release it after success."""
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(self.lease_seconds / 3):
                if not self.renew(key):
                    return

        thread = threading.Thread(target=heartbeat, daemon=True, name=f"claim-{key}")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        self.release(key)
