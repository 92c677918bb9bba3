"""The annotation store: one SQLite file holding annotators, items, claims, annotations and an audit log.

Every client (the Gradio app, the CLI, the simulated annotator, the round orchestrator) goes through
:class:`Store`. The rules it enforces:

- an item needs ``overlap`` annotations from distinct annotators; nobody annotates an item twice;
- an annotator works on an item only after :meth:`Store.claim_next` handed it to them; the claim is
  a lease that expires, after which the item's slot may go to someone else;
- a submission for an item the annotator has not claimed, or whose expired lease was taken over, is
  refused; so is malformed input, and a refused call writes nothing;
- the two responses are shown in an order randomised per (item, annotator), recorded with the claim;
  the annotation stores both the shown choice (A/B) and the fixed winner (a/b as imported);
- an admin may reopen an item: its live answers are superseded (withdrawn, kept with who reopened
  it and why) and it is open again;
- every action is appended to ``audit``, which triggers make append-only;
- passwords are stored as salted scrypt hashes.

SQLite runs in WAL mode with a busy timeout; claims, submissions and every other write run in
``BEGIN IMMEDIATE`` transactions, so concurrent threads and processes never double-assign a slot.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from preference_ui.agreement import krippendorff_alpha, level_score, signed_score
from preference_ui.items import Item
from workbench.preferences import LEVEL_LABELS, LEVELS, Preference

SCHEMA_VERSION = 2  # 2: an annotation may be an outcome (tie, both bad, cannot judge) with no winner
OUTCOMES = ("tie", "both_bad", "cannot_judge")
OUTCOME_LABELS = {"tie": "tie (equally good)", "both_bad": "both bad", "cannot_judge": "cannot judge"}
BUSY_TIMEOUT_S = 30.0
MAX_REASON_CHARS = 1000
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_CHARS = 8
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

ANNOTATIONS_COLUMNS = """
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL REFERENCES items(id),
    user TEXT NOT NULL REFERENCES users(name),
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie', 'both_bad', 'cannot_judge')),  -- as shown, or an outcome
    winner TEXT CHECK (winner IN ('a', 'b')),   -- as imported; NULL for an outcome
    level TEXT,                                  -- NULL for an outcome
    edited TEXT,
    swapped INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    created_at REAL NOT NULL,
    undone_at REAL"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password TEXT NOT NULL,                      -- scrypt$n$r$p$salt$hash
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,       -- hand-out order
    id TEXT NOT NULL UNIQUE,
    prompt TEXT NOT NULL,                        -- chat messages, JSON
    response_a TEXT NOT NULL, response_b TEXT NOT NULL,
    model_a TEXT NOT NULL, model_b TEXT NOT NULL,
    round INTEGER NOT NULL,
    overlap INTEGER NOT NULL CHECK (overlap >= 1),
    meta TEXT NOT NULL,                          -- JSON
    n_done INTEGER NOT NULL DEFAULT 0,           -- live (not undone) annotations
    created_at REAL NOT NULL,
    CHECK (n_done <= overlap));
CREATE INDEX IF NOT EXISTS items_open ON items(seq) WHERE n_done < overlap;
CREATE TABLE IF NOT EXISTS assignments (         -- one row per (item, annotator) that holds or held a slot
    item_id TEXT NOT NULL REFERENCES items(id),
    user TEXT NOT NULL REFERENCES users(name),
    status TEXT NOT NULL CHECK (status IN ('claimed', 'submitted', 'skipped')),
    swapped INTEGER NOT NULL,                    -- 1: response b shown on the left (as A)
    claimed_at REAL NOT NULL,
    lease_expires REAL NOT NULL,
    reason TEXT,                                 -- skip reason
    PRIMARY KEY (item_id, user));
CREATE INDEX IF NOT EXISTS assignments_user ON assignments(user, status);
CREATE TABLE IF NOT EXISTS annotations (ANNOTATIONS_COLUMNS);
CREATE UNIQUE INDEX IF NOT EXISTS annotations_once ON annotations(item_id, user) WHERE undone_at IS NULL;
CREATE TABLE IF NOT EXISTS flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL REFERENCES items(id),
    user TEXT NOT NULL REFERENCES users(name),
    reason TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS drafts (              -- an answer in progress, restored after a reload
    item_id TEXT NOT NULL REFERENCES items(id),
    user TEXT NOT NULL REFERENCES users(name),
    data TEXT NOT NULL,                          -- JSON {choice, level, edits: {A: text, B: text}}
    updated_at REAL NOT NULL,
    PRIMARY KEY (item_id, user));
CREATE TABLE IF NOT EXISTS superseded (          -- annotations withdrawn by an admin's reopen of their item
    annotation_id INTEGER PRIMARY KEY,            -- annotations.id
    reopened_by TEXT NOT NULL REFERENCES users(name),
    reason TEXT NOT NULL,
    reopened_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS guideline_acks (      -- who confirmed reading which guidelines text
    user TEXT NOT NULL REFERENCES users(name),
    digest TEXT NOT NULL,                        -- sha256 of the guidelines text
    acknowledged_at REAL NOT NULL,
    PRIMARY KEY (user, digest));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    user TEXT,
    action TEXT NOT NULL,
    item_id TEXT,
    detail TEXT NOT NULL);                       -- JSON
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""


SCHEMA = SCHEMA.replace("ANNOTATIONS_COLUMNS", ANNOTATIONS_COLUMNS)

# Schema 1 had choice and winner NOT NULL and A/B only: its table is copied into the new form.
MIGRATE_1_TO_2 = f"""
CREATE TABLE annotations_v2 ({ANNOTATIONS_COLUMNS});
INSERT INTO annotations_v2 SELECT * FROM annotations;
DROP TABLE annotations;
ALTER TABLE annotations_v2 RENAME TO annotations;
CREATE UNIQUE INDEX annotations_once ON annotations(item_id, user) WHERE undone_at IS NULL;
UPDATE settings SET value = '2' WHERE key = 'schema_version';
"""


# Items a user may claim next, in hand-out order: open, of the round (NULL: any), never given to the user,
# with a free slot (submissions and live leases of others fill slots). Parameters: round, round, user, now, limit.
OPEN_ITEMS_SQL = (
    "SELECT i.* FROM items i WHERE i.n_done < i.overlap AND (? IS NULL OR i.round = ?) "
    "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user = ?) "
    "AND (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id AND "
    "     (a.status = 'submitted' OR (a.status = 'claimed' AND a.lease_expires > ?))) < i.overlap "
    "ORDER BY i.seq LIMIT ?")


class StoreError(ValueError):
    """A store call was refused; the message says why and what to do. Nothing was written.

    ``field`` names the input that caused it (choice, level, edit, skip, flag), or None for the item itself.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class ValidationError(StoreError):
    """Malformed input (unknown level, empty or huge edit, bad user name, ...)."""


class NotClaimedError(StoreError):
    """The item is not claimed by this annotator, or their expired lease went to someone else."""


@dataclass
class Claim:
    """An item handed to one annotator, with the responses in the order they are shown."""

    item_id: str
    prompt: list[dict]
    left: str  # shown as A
    right: str  # shown as B
    swapped: bool  # True: the left one is response b
    round: int
    lease_expires: float
    meta: dict[str, Any]


# -- passwords -------------------------------------------------------------------------------------

def hash_password(password: str) -> str:
    """A salted scrypt hash in the form ``scrypt$n$r$p$salt$hash``."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a hash made by :func:`hash_password` (constant-time compare)."""
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(digest) // 2)
    return hmac.compare_digest(candidate.hex(), digest)


_DUMMY_HASH = hash_password("not-a-real-password")


# -- the store -------------------------------------------------------------------------------------

class Store:
    """The annotation database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path, lease_seconds: float = 900, quota: int = 0,
                 max_edit_chars: int = 20000, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None):
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self.quota = quota
        self.max_edit_chars = max_edit_chars
        self.clock = clock
        self.rng = rng or random.Random()
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Only the owner may read it (password hashes, answers); SQLite gives -wal/-shm the same mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        self._create_schema(conn)

    @classmethod
    def from_config(cls, cfg, db: str | Path | None = None, rng: random.Random | None = None) -> "Store":
        """The store a :class:`WorkbenchConfig` names (``annotation.db`` or runs/<name>/annotations.sqlite);
        ``rng`` decides which side each item is shown on (seed it for a reproducible round)."""
        return cls(db or db_path(cfg), lease_seconds=cfg.annotation.lease_seconds,
                   quota=cfg.annotation.quota, max_edit_chars=cfg.annotation.max_edit_chars, rng=rng)

    # connections and transactions
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a power cut
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(SCHEMA):
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO settings VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = conn.execute("SELECT value FROM settings WHERE key = 'schema_version'").fetchone()[0]
            if version == "1":
                for statement in _statements(MIGRATE_1_TO_2):
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _tx(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction: BEGIN IMMEDIATE (takes the write lock up front, so no upgrade deadlocks)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _audit(self, conn: sqlite3.Connection, user: str | None, action: str,
               item_id: str | None = None, **detail: Any) -> None:
        conn.execute("INSERT INTO audit (ts, user, action, item_id, detail) VALUES (?, ?, ?, ?, ?)",
                     (self.clock(), user, action, item_id, json.dumps(detail, ensure_ascii=False)))

    # users
    def add_user(self, name: str, password: str, admin: bool = False, update: bool = False,
                 by: str | None = None) -> None:
        """Create an annotator account (``update=True`` resets the password and admin flag of an existing one).

        ``by``: the admin who did it from the admin page (recorded in the audit log).
        """
        if not USERNAME_RE.match(name or ""):
            raise ValidationError(f"user name {name!r}: use 1-64 letters, digits or _ . @ -")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
            raise ValidationError(f"password of {name!r}: use at least {MIN_PASSWORD_CHARS} characters")
        hashed = hash_password(password)
        with self._tx() as conn:
            exists = conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone()
            if exists and not update:
                raise StoreError(f"user {name!r} already exists (use update=True / --update to reset the password)")
            if exists:
                conn.execute("UPDATE users SET password = ?, is_admin = ? WHERE name = ?", (hashed, int(admin), name))
            else:
                conn.execute("INSERT INTO users VALUES (?, ?, ?, ?)", (name, hashed, int(admin), self.clock()))
            self._audit(conn, name, "update_user" if exists else "add_user", admin=admin,
                        **({"by": by} if by else {}))

    def ensure_user(self, name: str, admin: bool = False) -> None:
        """Create ``name`` with a random, unknown password unless it exists (service accounts)."""
        if not self.has_user(name):
            try:
                self.add_user(name, os.urandom(24).hex(), admin=admin)
            except StoreError:
                if not self.has_user(name):  # lost a race with another process creating it: fine
                    raise

    def has_user(self, name: str) -> bool:
        """True when the account exists."""
        return self._conn().execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None

    def verify_user(self, name: str, password: str) -> bool:
        """True when the name and password match an account (the login check)."""
        row = self._conn().execute("SELECT password FROM users WHERE name = ?", (name,)).fetchone()
        ok = check_password(password or "", row["password"] if row else _DUMMY_HASH)
        return bool(row) and ok

    def credential_stamp(self, name: str) -> str:
        """A digest of the account's password hash and admin flag: it changes when either does ("" if none)."""
        row = self._conn().execute("SELECT password, is_admin FROM users WHERE name = ?", (name,)).fetchone()
        return hashlib.sha256(f"{row['password']}:{row['is_admin']}".encode()).hexdigest() if row else ""

    def is_admin(self, name: str | None) -> bool:
        """True when ``name`` is an admin account."""
        row = self._conn().execute("SELECT is_admin FROM users WHERE name = ?", (name,)).fetchone()
        return bool(row and row["is_admin"])

    def users(self) -> list[dict]:
        """Every account with its admin flag and number of live annotations (no password hashes)."""
        rows = self._conn().execute(
            "SELECT u.name, u.is_admin, u.created_at, "
            "(SELECT COUNT(*) FROM annotations a WHERE a.user = u.name AND a.undone_at IS NULL) AS n "
            "FROM users u ORDER BY u.name").fetchall()
        return [{"name": r["name"], "admin": bool(r["is_admin"]), "created_at": r["created_at"],
                 "annotations": r["n"]} for r in rows]

    # items
    def import_items(self, items: Iterable[Item], overlap: int = 1, by: str | None = None) -> dict:
        """Add items needing ``overlap`` annotations each: {"added": n, "existing": n}.

        Re-importing an identical item is a no-op; an existing id with different content is an error
        and nothing is written. ``by``: the admin who imported them from the admin page (audit log).
        """
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 1:
            raise ValidationError(f"overlap {overlap!r}: must be an integer >= 1")
        added = existing = 0
        with self._tx() as conn:
            for item in items:
                prompt = json.dumps(item.prompt, ensure_ascii=False)
                row = conn.execute("SELECT prompt, response_a, response_b FROM items WHERE id = ?",
                                   (item.id,)).fetchone()
                if row is not None:
                    if tuple(row) != (prompt, item.response_a, item.response_b):
                        raise ValidationError(f"item {item.id!r} already exists with a different prompt or "
                                              "responses; give the new item another id")
                    existing += 1
                    continue
                conn.execute(
                    "INSERT INTO items (id, prompt, response_a, response_b, model_a, model_b, round, overlap, "
                    "meta, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (item.id, prompt, item.response_a, item.response_b, item.model_a, item.model_b,
                     item.round, overlap, json.dumps(item.meta, ensure_ascii=False), self.clock()))
                added += 1
            self._audit(conn, by, "import", added=added, existing=existing, overlap=overlap)
        return {"added": added, "existing": existing}

    def get_item(self, item_id: str) -> Item:
        """One item as imported."""
        row = self._conn().execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise StoreError(f"item {item_id!r} does not exist")
        return _item(row)

    # claims
    def _slots_taken_by_others(self, conn: sqlite3.Connection, item_id: str, user: str, now: float) -> int:
        return conn.execute(
            "SELECT COUNT(*) FROM assignments WHERE item_id = ? AND user != ? AND "
            "(status = 'submitted' OR (status = 'claimed' AND lease_expires > ?))",
            (item_id, user, now)).fetchone()[0]

    def _holds_slot(self, conn: sqlite3.Connection, assignment: sqlite3.Row, now: float) -> bool:
        """A claim holds its slot while the lease runs, and after it as long as nobody took the slot."""
        if assignment["lease_expires"] > now:
            return True
        overlap = conn.execute("SELECT overlap FROM items WHERE id = ?", (assignment["item_id"],)).fetchone()[0]
        return self._slots_taken_by_others(conn, assignment["item_id"], assignment["user"], now) < overlap

    def _claim(self, conn: sqlite3.Connection, row: sqlite3.Row, lease_expires: float) -> Claim:
        item = _item(conn.execute("SELECT * FROM items WHERE id = ?", (row["item_id"],)).fetchone())
        swapped = bool(row["swapped"])
        left, right = (item.response_b, item.response_a) if swapped else (item.response_a, item.response_b)
        return Claim(item.id, item.prompt, left, right, swapped, item.round, lease_expires, item.meta)

    def claim_next(self, user: str, round: int | None = None, take_new: bool = True) -> Claim | None:
        """The annotator's current item, or a newly claimed one; None when nothing is left for them.

        An annotator holds at most one claim: while it holds its slot it is returned again (with a
        fresh lease), so a reload or a restarted server resumes at the same item. ``take_new=False``
        only returns a held claim (the admin view opens without taking an item).
        """
        self._require_user(user)
        now = self.clock()
        lease = now + self.lease_seconds
        with self._tx() as conn:
            held = conn.execute("SELECT * FROM assignments WHERE user = ? AND status = 'claimed' "
                                "ORDER BY claimed_at DESC", (user,)).fetchall()
            for row in held:
                item_round = conn.execute("SELECT round FROM items WHERE id = ?", (row["item_id"],)).fetchone()[0]
                if self._holds_slot(conn, row, now) and (round is None or item_round == round):
                    conn.execute("UPDATE assignments SET lease_expires = ? WHERE item_id = ? AND user = ?",
                                 (lease, row["item_id"], user))
                    return self._claim(conn, row, lease)
                conn.execute("DELETE FROM assignments WHERE item_id = ? AND user = ?", (row["item_id"], user))
                self._audit(conn, user, "release", row["item_id"],
                            why="lease expired and taken over" if round is None or item_round == round
                            else "claim of another round")
            if not take_new or (self.quota and self._count_submitted(conn, user) >= self.quota):
                return None
            found = conn.execute(OPEN_ITEMS_SQL, (round, round, user, now, 1)).fetchone()
            if found is None:
                return None
            swapped = self.rng.random() < 0.5
            conn.execute("INSERT INTO assignments (item_id, user, status, swapped, claimed_at, lease_expires) "
                         "VALUES (?, ?, 'claimed', ?, ?, ?)", (found["id"], user, int(swapped), now, lease))
            self._audit(conn, user, "claim", found["id"], swapped=swapped, lease_expires=lease)
            row = conn.execute("SELECT * FROM assignments WHERE item_id = ? AND user = ?", (found["id"], user)).fetchone()
            return self._claim(conn, row, lease)

    def open_items(self, user: str, round: int | None = None, limit: int = 1) -> list[Item]:
        """The next ``limit`` items :meth:`claim_next` would hand ``user``, in order; nothing is claimed.

        A batch annotator (the AI judge) reads ahead with it; each item is still claimed before it is answered.
        """
        rows = self._conn().execute(OPEN_ITEMS_SQL, (round, round, user, self.clock(), max(0, limit))).fetchall()
        return [_item(row) for row in rows]

    def _held_claim(self, conn: sqlite3.Connection, user: str, item_id: Any, now: float) -> sqlite3.Row:
        """The user's live claim on ``item_id``, or NotClaimedError saying why not."""
        if not isinstance(item_id, str) or not item_id:
            raise ValidationError(f"item id {item_id!r}: expected the id of the item you were given")
        row = conn.execute("SELECT * FROM assignments WHERE item_id = ? AND user = ?", (item_id, user)).fetchone()
        if row is None:
            raise NotClaimedError(f"item {item_id!r} is not claimed by {user!r}; load your next item and answer that")
        if row["status"] != "claimed":
            raise NotClaimedError(f"item {item_id!r} was already {row['status']} by {user!r}; "
                                  "use undo to change your last answer")
        if not self._holds_slot(conn, row, now):
            raise NotClaimedError(f"your claim on item {item_id!r} expired and the item went to another "
                                  "annotator; load your next item")
        return row

    def shown_responses(self, user: str, item_id: str) -> tuple[str, str]:
        """The two responses of an item given to ``user``, in the order shown to them (A, B)."""
        row = self._conn().execute("SELECT swapped FROM assignments WHERE item_id = ? AND user = ?",
                                   (item_id, user)).fetchone()
        if row is None:
            raise NotClaimedError(f"item {item_id!r} is not claimed by {user!r}; load your next item and answer that")
        item = self.get_item(item_id)
        return (item.response_b, item.response_a) if row["swapped"] else (item.response_a, item.response_b)

    # answers
    def _check_answer(self, choice: Any, level: Any, edited: Any) -> None:
        if choice in OUTCOMES:
            if level is not None or edited is not None:
                raise ValidationError(f"{OUTCOME_LABELS[choice]}: no strength and no edit go with it", field="level")
            return
        if choice not in ("A", "B"):
            raise ValidationError(f"choice {choice!r}: expected 'A' (left), 'B' (right) or one of {list(OUTCOMES)}",
                                  field="choice")
        if level not in LEVELS:
            raise ValidationError(f"level {level!r}: expected one of {list(LEVELS)} "
                                  f"({', '.join(LEVEL_LABELS.values())})", field="level")
        if edited is not None:
            if not isinstance(edited, str):
                raise ValidationError(f"edit: expected text or nothing, got {type(edited).__name__}", field="edit")
            if len(edited) > self.max_edit_chars:
                raise ValidationError(f"edit is {len(edited)} characters long; the limit is {self.max_edit_chars}",
                                      field="edit")

    def submit(self, user: str, item_id: str, choice: str, level: str, edited: str | None = None) -> int:
        """Record the annotator's judgement of their claimed item; returns the annotation id.

        ``choice`` is the side as shown ('A' left, 'B' right); ``level`` one of LEVELS; ``edited`` an
        improved version of the chosen response (None, or identical to it but for surrounding
        whitespace, means no edit; so an empty chosen response may be chosen as it is). ``choice``
        may instead be one of OUTCOMES (tie, both bad, cannot judge), with no level and no edit.
        """
        self._require_user(user)
        self._check_answer(choice, level, edited)
        now = self.clock()
        with self._tx() as conn:
            row = self._held_claim(conn, user, item_id, now)
            swapped = bool(row["swapped"])
            winner = None if choice in OUTCOMES else "a" if (choice == "A") != swapped else "b"
            item = conn.execute("SELECT response_a, response_b FROM items WHERE id = ?", (item_id,)).fetchone()
            chosen = item["response_a"] if winner == "a" else item["response_b"]
            if edited is not None and edited.strip() == chosen.strip():
                edited = None  # unchanged (an empty chosen response left empty, too)
            if edited is not None and not edited.strip():
                raise ValidationError("edit is empty: leave the chosen response in the editor to keep it "
                                      "unchanged, or write the improved response", field="edit")
            cur = conn.execute(
                "INSERT INTO annotations (item_id, user, choice, winner, level, edited, swapped, claimed_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, user, choice, winner, level, edited, int(swapped), row["claimed_at"], now))
            conn.execute("UPDATE assignments SET status = 'submitted' WHERE item_id = ? AND user = ?", (item_id, user))
            conn.execute("DELETE FROM drafts WHERE item_id = ? AND user = ?", (item_id, user))
            conn.execute("UPDATE items SET n_done = n_done + 1 WHERE id = ?", (item_id,))
            self._audit(conn, user, "submit", item_id, annotation=cur.lastrowid, choice=choice, winner=winner,
                        level=level, edited=edited is not None)
            return cur.lastrowid

    def last_submission(self, user: str) -> dict | None:
        """The annotator's latest live annotation (id, item_id, choice, level, edited), or None."""
        row = self._conn().execute("SELECT id, item_id, choice, level, edited FROM annotations WHERE user = ? "
                                   "AND undone_at IS NULL ORDER BY id DESC LIMIT 1", (user,)).fetchone()
        return dict(row) if row else None

    def undo_last(self, user: str, annotation_id: int | None = None) -> str | None:
        """Withdraw the annotator's latest live submission and give its item back to them; its id, or None.

        Any other item the annotator held is released, so the undone item is the one they see next;
        the withdrawn answer becomes the item's draft. ``annotation_id`` (what the annotator confirmed)
        must still be their latest submission, else nothing is withdrawn.
        """
        self._require_user(user)
        now = self.clock()
        with self._tx() as conn:
            last = conn.execute("SELECT * FROM annotations WHERE user = ? AND undone_at IS NULL "
                                "ORDER BY id DESC LIMIT 1", (user,)).fetchone()
            if last is None:
                return None
            if annotation_id is not None and last["id"] != annotation_id:
                raise NotClaimedError(f"your last submission is now item {last['item_id']!r}, not the one you "
                                      "confirmed (another tab?); press Undo again to see it")
            for held in conn.execute("SELECT item_id FROM assignments WHERE user = ? AND status = 'claimed'",
                                     (user,)).fetchall():
                conn.execute("DELETE FROM assignments WHERE item_id = ? AND user = ?", (held["item_id"], user))
                self._audit(conn, user, "release", held["item_id"], why="undo")
            conn.execute("UPDATE annotations SET undone_at = ? WHERE id = ?", (now, last["id"]))
            conn.execute("UPDATE items SET n_done = n_done - 1 WHERE id = ?", (last["item_id"],))
            conn.execute("UPDATE assignments SET status = 'claimed', claimed_at = ?, lease_expires = ? "
                         "WHERE item_id = ? AND user = ?", (now, now + self.lease_seconds, last["item_id"], user))
            item = conn.execute("SELECT response_a, response_b FROM items WHERE id = ?", (last["item_id"],)).fetchone()
            chosen = item["response_a"] if last["winner"] == "a" else item["response_b"]
            edits = {} if last["winner"] is None else {
                last["choice"]: last["edited"] if last["edited"] is not None else chosen}
            draft = {"choice": last["choice"], "level": last["level"], "edits": edits}
            self._write_draft(conn, user, last["item_id"], draft, now)
            self._audit(conn, user, "undo", last["item_id"], annotation=last["id"])
            return last["item_id"]

    # admin actions
    def _require_admin(self, admin: str, what: str) -> None:
        if not self.is_admin(admin):
            raise StoreError(f"{what} is for admin accounts only; {admin!r} is not an admin")

    def reopen(self, admin: str, item_id: str, reason: str) -> list[int]:
        """An admin sends a completed or answered item back for re-annotation; returns the superseded annotation ids.

        Its live answers are withdrawn (``undone_at`` set) and recorded in ``superseded`` with the admin
        and the reason, so they leave training data and agreement but stay in the audit log and in the
        export's ``superseded.jsonl``. The annotators who answered it may be handed it again; those who
        skipped it are not, and a claim someone holds on it stays valid.
        """
        self._require_admin(admin, "reopening an item")
        reason = _reason(reason, "reopen")
        now = self.clock()
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone() is None:
                raise ValidationError(f"item {item_id!r} does not exist", field="reopen")
            live = [r["id"] for r in conn.execute("SELECT id FROM annotations WHERE item_id = ? AND undone_at IS NULL "
                                                  "ORDER BY id", (item_id,)).fetchall()]
            if not live:
                raise ValidationError(f"item {item_id!r} has no answers: it is open already", field="reopen")
            for annotation in live:
                conn.execute("UPDATE annotations SET undone_at = ? WHERE id = ?", (now, annotation))
                conn.execute("INSERT INTO superseded VALUES (?, ?, ?, ?)", (annotation, admin, reason, now))
            conn.execute("DELETE FROM assignments WHERE item_id = ? AND status = 'submitted'", (item_id,))
            conn.execute("UPDATE items SET n_done = 0 WHERE id = ?", (item_id,))
            self._audit(conn, admin, "reopen", item_id, annotations=live, reason=reason)
            return live

    def export_superseded(self, round: int | None = None) -> list[dict]:
        """Every answer an admin's reopen withdrew: the answer, who gave it, who reopened it and why."""
        rows = self._conn().execute(
            "SELECT a.*, s.reopened_by, s.reason, s.reopened_at, i.round FROM superseded s "
            "JOIN annotations a ON a.id = s.annotation_id JOIN items i ON i.id = a.item_id "
            "WHERE ? IS NULL OR i.round = ? ORDER BY s.annotation_id", (round, round)).fetchall()
        return [{"id": f"{r['item_id']}:{r['user']}:{r['id']}", "item_id": r["item_id"], "annotator": r["user"],
                 "round": r["round"], "choice": r["choice"], "winner": r["winner"], "level": r["level"],
                 "edited": r["edited"], "answered_at": r["created_at"], "reopened_by": r["reopened_by"],
                 "reopen_reason": r["reason"], "reopened_at": r["reopened_at"]} for r in rows]

    def add_user_by_admin(self, admin: str, name: str, password: str, admin_account: bool = False,
                          update: bool = False) -> None:
        """:meth:`add_user` on an admin's behalf (the admin page); the audit log names the admin."""
        self._require_admin(admin, "creating accounts")
        self.add_user(name, password, admin=admin_account, update=update, by=admin)

    def record(self, user: str, action: str, **detail: Any) -> None:
        """Append an action done outside the store (an admin's export) to the audit log."""
        with self._tx() as conn:
            self._audit(conn, user, action, **detail)

    # guidelines
    def acknowledged(self, user: str, digest: str) -> bool:
        """True when ``user`` confirmed reading the guidelines whose text has this digest."""
        return self._conn().execute("SELECT 1 FROM guideline_acks WHERE user = ? AND digest = ?",
                                    (user, digest)).fetchone() is not None

    def acknowledge(self, user: str, digest: str) -> None:
        """Remember that ``user`` read the guidelines with this digest."""
        self._require_user(user)
        with self._tx() as conn:
            conn.execute("INSERT OR IGNORE INTO guideline_acks VALUES (?, ?, ?)", (user, digest, self.clock()))
            self._audit(conn, user, "read_guidelines", digest=digest)

    # drafts
    def _write_draft(self, conn: sqlite3.Connection, user: str, item_id: str, draft: dict, now: float) -> None:
        conn.execute("INSERT INTO drafts VALUES (?, ?, ?, ?) ON CONFLICT (item_id, user) DO UPDATE SET "
                     "data = excluded.data, updated_at = excluded.updated_at",
                     (item_id, user, json.dumps(draft, ensure_ascii=False), now))

    def save_draft(self, user: str, item_id: str, choice: str | None, level: str | None,
                   edits: dict[str, str]) -> dict:
        """Keep the answer in progress on a claimed item; ``edits`` (per shown side) merge into the saved ones.

        Returns the draft as saved. Merging in one transaction lets concurrent saves (a side switch
        and a keystroke) each keep their part.
        """
        self._require_user(user)
        if choice not in (None, "A", "B", *OUTCOMES):
            raise ValidationError(f"choice {choice!r}: expected 'A' (left), 'B' (right) or one of {list(OUTCOMES)}",
                                  field="choice")
        if level is not None and level not in LEVELS:
            raise ValidationError(f"level {level!r}: expected one of {list(LEVELS)}", field="level")
        if not isinstance(edits, dict) or set(edits) - {"A", "B"} or not all(isinstance(t, str) for t in edits.values()):
            raise ValidationError("edits: expected {'A' or 'B': text}", field="edit")
        longest = max(map(len, edits.values()), default=0)
        if longest > self.max_edit_chars:
            raise ValidationError(f"edit is {longest} characters long; the limit is {self.max_edit_chars}", field="edit")
        now = self.clock()
        with self._tx() as conn:
            self._held_claim(conn, user, item_id, now)
            row = conn.execute("SELECT data FROM drafts WHERE item_id = ? AND user = ?", (item_id, user)).fetchone()
            saved = json.loads(row["data"])["edits"] if row else {}
            draft = {"choice": choice, "level": level, "edits": {**saved, **edits}}
            self._write_draft(conn, user, item_id, draft, now)
            return draft

    def draft(self, user: str, item_id: str) -> dict:
        """The saved answer in progress: {choice, level, edits}, empty values when there is none."""
        row = self._conn().execute("SELECT data FROM drafts WHERE item_id = ? AND user = ?",
                                   (item_id, user)).fetchone()
        return json.loads(row["data"]) if row else {"choice": None, "level": None, "edits": {}}

    def skip(self, user: str, item_id: str, reason: str) -> None:
        """Give up the claimed item with a reason; it is not offered to this annotator again."""
        self._require_user(user)
        reason = _reason(reason, "skip")
        with self._tx() as conn:
            self._held_claim(conn, user, item_id, self.clock())
            conn.execute("UPDATE assignments SET status = 'skipped', reason = ? WHERE item_id = ? AND user = ?",
                         (reason, item_id, user))
            conn.execute("DELETE FROM drafts WHERE item_id = ? AND user = ?", (item_id, user))
            self._audit(conn, user, "skip", item_id, reason=reason)

    def flag(self, user: str, item_id: str, reason: str) -> int:
        """Report a problem with an item the annotator was given; returns the flag id."""
        self._require_user(user)
        reason = _reason(reason, "flag")
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM assignments WHERE item_id = ? AND user = ?",
                            (item_id, user)).fetchone() is None:
                raise NotClaimedError(f"item {item_id!r} was never given to {user!r}; flag the item you are shown")
            cur = conn.execute("INSERT INTO flags (item_id, user, reason, created_at) VALUES (?, ?, ?, ?)",
                               (item_id, user, reason, self.clock()))
            self._audit(conn, user, "flag", item_id, reason=reason)
            return cur.lastrowid

    # reading
    def _require_user(self, user: str) -> None:
        if not user or not self.has_user(user):
            raise NotClaimedError(f"unknown annotator {user!r}; log in first")

    def _count_submitted(self, conn: sqlite3.Connection, user: str) -> int:
        return conn.execute("SELECT COUNT(*) FROM assignments WHERE user = ? AND status = 'submitted'",
                            (user,)).fetchone()[0]

    def progress(self, user: str, round: int | None = None) -> dict:
        """The annotator's own counts and the overall ones (never anyone else's answers)."""
        conn = self._conn()
        own = dict(conn.execute(
            "SELECT a.status, COUNT(*) FROM assignments a JOIN items i ON i.id = a.item_id "
            "WHERE a.user = ? AND (? IS NULL OR i.round = ?) GROUP BY a.status", (user, round, round)).fetchall())
        needed, done = conn.execute("SELECT COALESCE(SUM(overlap), 0), COALESCE(SUM(n_done), 0) FROM items "
                                    "WHERE ? IS NULL OR round = ?", (round, round)).fetchone()
        unseen = conn.execute(
            "SELECT COUNT(*) FROM items i WHERE i.n_done < i.overlap AND (? IS NULL OR i.round = ?) AND NOT EXISTS "
            "(SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user = ?)", (round, round, user)).fetchone()[0]
        submitted = own.get("submitted", 0)
        left = unseen + own.get("claimed", 0)
        if self.quota:
            left = min(left, max(0, self.quota - submitted))
        return {"user": user, "submitted": submitted, "skipped": own.get("skipped", 0), "left": left,
                "annotations_done": done, "annotations_needed": needed}

    def count_completed(self, round: int | None = None) -> int:
        """Items that have all their annotations."""
        return self._conn().execute("SELECT COUNT(*) FROM items WHERE n_done >= overlap AND "
                                    "(? IS NULL OR round = ?)", (round, round)).fetchone()[0]

    def count_items(self, round: int | None = None) -> int:
        """Items imported (for the round)."""
        return self._conn().execute("SELECT COUNT(*) FROM items WHERE ? IS NULL OR round = ?",
                                    (round, round)).fetchone()[0]

    def _live_annotations(self, round: int | None) -> list[sqlite3.Row]:
        return self._conn().execute(
            "SELECT a.*, i.prompt, i.response_a, i.response_b, i.model_a, i.model_b, i.round, i.meta "
            "FROM annotations a JOIN items i ON i.id = a.item_id "
            "WHERE a.undone_at IS NULL AND (? IS NULL OR i.round = ?) ORDER BY a.id", (round, round)).fetchall()

    def export(self, round: int | None = None) -> list[Preference]:
        """Every live preference as a :class:`Preference` (chosen/rejected mapped back from the shown sides).

        Outcomes (tie, both bad, cannot judge) are not preferences: :meth:`export_outcomes` has them.
        """
        records = []
        for r in self._live_annotations(round):
            if r["winner"] is None:
                continue
            a_won = r["winner"] == "a"
            meta = {**json.loads(r["meta"]), "item_id": r["item_id"], "winner": r["winner"],
                    "shown_swapped": bool(r["swapped"]),
                    "chosen_model": r["model_a"] if a_won else r["model_b"],
                    "rejected_model": r["model_b"] if a_won else r["model_a"],
                    "seconds": _ms(r["created_at"] - r["claimed_at"])}
            records.append(Preference(
                id=f"{r['item_id']}:{r['user']}", prompt=json.loads(r["prompt"]),
                chosen=r["response_a"] if a_won else r["response_b"],
                rejected=r["response_b"] if a_won else r["response_a"],
                level=r["level"], annotator=r["user"], round=r["round"], edited=r["edited"], meta=meta))
        return records

    def export_outcomes(self, round: int | None = None) -> list[dict]:
        """Every live tie, both-bad and cannot-judge answer: {id, prompt, response_a, response_b, outcome, ...}."""
        return [{"id": f"{r['item_id']}:{r['user']}", "prompt": json.loads(r["prompt"]),
                 "response_a": r["response_a"], "response_b": r["response_b"], "outcome": r["choice"],
                 "annotator": r["user"], "round": r["round"],
                 "meta": {**json.loads(r["meta"]), "item_id": r["item_id"], "model_a": r["model_a"],
                          "model_b": r["model_b"], "seconds": _ms(r["created_at"] - r["claimed_at"])}}
                for r in self._live_annotations(round) if r["winner"] is None]

    def agreement(self, round: int | None = None) -> dict:
        """Krippendorff's alpha on the signed ordinal scale over items with two or more annotations.

        A tie scores 0; both bad and cannot judge say nothing about the order and are left out.
        """
        return krippendorff_alpha((r["item_id"], r["user"],
                                   0 if r["choice"] == "tie" else signed_score(r["winner"], r["level"]))
                                  for r in self._live_annotations(round) if r["winner"] or r["choice"] == "tie")

    def agreement_by_level(self, round: int | None = None) -> dict[str, dict]:
        """Per level: alpha on the three-value scale "a / b wins by at least this level, or neither"
        (preference_ui.agreement.level_score), over the same judgements as :meth:`agreement`."""
        scores = [(r["item_id"], r["user"], 0 if r["choice"] == "tie" else signed_score(r["winner"], r["level"]))
                  for r in self._live_annotations(round) if r["winner"] or r["choice"] == "tie"]
        return {level: krippendorff_alpha(((i, u, level_score(s, level)) for i, u, s in scores), domain=(-1, 0, 1))
                for level in LEVELS}

    def stats(self, round: int | None = None) -> dict:
        """Counts per level, edits, skips, flags, per annotator, completion and agreement."""
        rows = self._live_annotations(round)
        conn = self._conn()
        scope = "(? IS NULL OR i.round = ?)"
        skipped = conn.execute(f"SELECT COUNT(*) FROM assignments a JOIN items i ON i.id = a.item_id "
                               f"WHERE a.status = 'skipped' AND {scope}", (round, round)).fetchone()[0]
        flags = conn.execute(f"SELECT COUNT(DISTINCT f.item_id || char(0) || f.user) FROM flags f "
                             f"JOIN items i ON i.id = f.item_id WHERE {scope}", (round, round)).fetchone()[0]
        undone = conn.execute(f"SELECT COUNT(*) FROM annotations a JOIN items i ON i.id = a.item_id "
                              f"WHERE a.undone_at IS NOT NULL AND {scope} AND a.id NOT IN "
                              f"(SELECT annotation_id FROM superseded)", (round, round)).fetchone()[0]
        superseded = conn.execute(f"SELECT COUNT(*) FROM superseded s JOIN annotations a ON a.id = s.annotation_id "
                                  f"JOIN items i ON i.id = a.item_id WHERE {scope}", (round, round)).fetchone()[0]
        per_user: dict[str, int] = {}
        for r in rows:
            per_user[r["user"]] = per_user.get(r["user"], 0) + 1
        progress = self.progress("", round)
        return {
            "round": round,
            "items": self.count_items(round),
            "items_complete": self.count_completed(round),
            "annotations": len(rows),
            "annotations_needed": progress["annotations_needed"],
            "levels": {level: sum(r["level"] == level for r in rows) for level in LEVELS},
            "outcomes": {outcome: sum(r["choice"] == outcome for r in rows) for outcome in OUTCOMES},
            "edited": sum(r["edited"] is not None for r in rows),
            "skipped": skipped,
            "flags": flags,
            "undone": undone,
            "superseded": superseded,
            "annotators": per_user,
            "skip_reasons": [{k: s[k] for k in ("item_id", "user", "reason")} for s in self.skips(round)],
            "flag_reasons": [{k: f[k] for k in ("item_id", "user", "reason")} for f in self.flags(round)],
            "agreement": self.agreement(round),
            "agreement_by_level": self.agreement_by_level(round),
        }

    def audit_log(self, user: str | None = None) -> list[dict]:
        """The audit log, oldest first (optionally one user's actions)."""
        rows = self._conn().execute("SELECT * FROM audit WHERE ? IS NULL OR user = ? ORDER BY id",
                                    (user, user)).fetchall()
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    def flags(self, round: int | None = None) -> list[dict]:
        """Every flag raised (each click), oldest first."""
        return [dict(r) for r in self._conn().execute(
            "SELECT f.* FROM flags f JOIN items i ON i.id = f.item_id WHERE ? IS NULL OR i.round = ? ORDER BY f.id",
            (round, round)).fetchall()]

    def item_status(self) -> dict[int, dict[str, int]]:
        """Per round: items not started, in progress (answered or held, not complete) and complete."""
        now = self.clock()
        rows = self._conn().execute(
            "SELECT i.round, SUM(i.n_done >= i.overlap), SUM(i.n_done < i.overlap AND (i.n_done > 0 OR EXISTS "
            "(SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.status = 'claimed' AND a.lease_expires > ?))), "
            "COUNT(*) FROM items i GROUP BY i.round ORDER BY i.round", (now,)).fetchall()
        return {r[0]: {"open": r[3] - r[1] - r[2], "in_progress": r[2], "complete": r[1]} for r in rows}

    def skips(self, round: int | None = None) -> list[dict]:
        """Every skip with its reason (item_id, user, reason, claimed_at), oldest claim first."""
        return [dict(r) for r in self._conn().execute(
            "SELECT a.item_id, a.user, a.reason, a.claimed_at FROM assignments a JOIN items i ON i.id = a.item_id "
            "WHERE a.status = 'skipped' AND (? IS NULL OR i.round = ?) ORDER BY a.claimed_at",
            (round, round)).fetchall()]

    def disagreements(self, round: int | None = None) -> list[dict]:
        """Items whose live annotations pick different winners: the item and every answer on it."""
        by_item: dict[str, list[sqlite3.Row]] = {}
        for r in self._live_annotations(round):
            by_item.setdefault(r["item_id"], []).append(r)
        out = []
        for item_id, rows in by_item.items():
            if len({r["winner"] or r["choice"] for r in rows}) > 1:
                out.append({"item_id": item_id, "prompt": json.loads(rows[0]["prompt"]),
                            "response_a": rows[0]["response_a"], "response_b": rows[0]["response_b"],
                            "answers": [{"user": r["user"], "winner": r["winner"] or r["choice"], "level": r["level"],
                                         "edited": r["edited"]} for r in rows]})
        return out

    def annotator_stats(self, round: int | None = None) -> list[dict]:
        """Per annotator: submitted, skipped, flagged items, median seconds per answer and agreement.

        Agreement is the share of (own answer, another annotator's answer on the same item) pairs
        that pick the same winner; None without overlapping items.
        """
        rows = self._live_annotations(round)
        by_item: dict[str, list[sqlite3.Row]] = {}
        for r in rows:
            by_item.setdefault(r["item_id"], []).append(r)
        skipped: dict[str, int] = {}
        for s in self.skips(round):
            skipped[s["user"]] = skipped.get(s["user"], 0) + 1
        flagged = dict(self._conn().execute(
            "SELECT f.user, COUNT(DISTINCT f.item_id) FROM flags f JOIN items i ON i.id = f.item_id "
            "WHERE ? IS NULL OR i.round = ? GROUP BY f.user", (round, round)).fetchall())
        out = []
        for user in sorted({r["user"] for r in rows} | set(skipped) | set(flagged)):
            own = [r for r in rows if r["user"] == user]
            pairs = [(r["winner"] or r["choice"], o["winner"] or o["choice"])
                     for r in own for o in by_item[r["item_id"]] if o["user"] != user]
            seconds = sorted(r["created_at"] - r["claimed_at"] for r in own)
            out.append({"user": user, "submitted": len(own), "skipped": skipped.get(user, 0),
                        "flagged": flagged.get(user, 0),
                        "median_seconds": _ms(seconds[len(seconds) // 2]) if seconds else None,
                        "agreement": sum(a == b for a, b in pairs) / len(pairs) if pairs else None,
                        "overlapping": len(pairs)})
        return out


def _ms(seconds: float) -> float:
    """Seconds rounded to milliseconds (``round`` is shadowed by the round parameters above)."""
    return round(seconds, 3)


def db_path(cfg) -> Path:
    """The store's path for a config: ``annotation.db``, else ``<run dir>/annotations.sqlite``."""
    return Path(cfg.annotation.db) if cfg.annotation.db else cfg.run_path / "annotations.sqlite"


def _item(row: sqlite3.Row) -> Item:
    return Item(id=row["id"], prompt=json.loads(row["prompt"]), response_a=row["response_a"],
                response_b=row["response_b"], model_a=row["model_a"], model_b=row["model_b"],
                round=row["round"], meta=json.loads(row["meta"]))


def _reason(reason: Any, action: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError(f"{action}: give a reason (e.g. 'prompt is unclear')", field=action)
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationError(f"{action}: the reason is {len(reason)} characters; keep it under {MAX_REASON_CHARS}",
                              field=action)
    return reason.strip()


def _statements(script: str) -> list[str]:
    """Split the schema into statements (triggers contain ';' inside BEGIN ... END)."""
    out, buf = [], ""
    for line in script.splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [s for s in out if s]
