"""JSON Lines files: reading with errors that name the file and line, writing atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path


def iter_jsonl_numbered(path: str | Path) -> Iterator[tuple[int, object]]:
    """Yield (line number, JSON value) per non-blank line; bad JSON names the file and line."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc


def iter_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the JSON objects of a JSONL file (blank lines skipped)."""
    for _, value in iter_jsonl_numbered(path):
        yield value


def read_jsonl(path: str | Path) -> list[dict]:
    """All JSON objects of a JSONL file."""
    return list(iter_jsonl(path))


def write_jsonl(rows: Iterable[dict], path: str | Path) -> Path:
    """Write rows as JSONL through a temp file and an atomic rename."""
    from workbench.rundir import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
