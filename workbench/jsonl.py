"""JSON Lines files: reading with errors that name the file and line, writing atomically.

Reading is strict so that no loader sees a value it cannot handle: every line must be UTF-8 (a BOM
on the first line is allowed), numbers must be finite (``NaN``, ``Infinity`` and ``1e999`` are
refused), strings must not hold half a surrogate pair (``"\\ud800"``), and a record may nest at
most :data:`MAX_DEPTH` containers deep.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

MAX_DEPTH = 64  # far beyond any real record; deep enough input would hit Python's recursion limit
# JSON's \uXXXX escapes can spell half of a surrogate pair, which no UTF-8 writer (file, SQLite) accepts.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_problem(value: object, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``value`` is not plain finite JSON of bounded depth, or None when it is (iterative, any depth)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                return f"nests more than {max_depth} levels deep"
            if isinstance(node, dict):
                if not all(isinstance(k, str) for k in node):
                    return "has an object key that is not a string"
                stack.extend((k, depth) for k in node)
                stack.extend((v, depth + 1) for v in node.values())
            else:
                stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, float) and not math.isfinite(node):
            return f"has the non-finite number {node}"
        elif isinstance(node, str) and _LONE_SURROGATE.search(node):
            return "has a \\u escape of half a surrogate pair, which is not a character"
        elif not (node is None or isinstance(node, (str, int, float))):
            return f"has a value of type {type(node).__name__}, which is not JSON"
    return None


def is_int(value: object) -> bool:
    """True for an integer that is not a bool (JSON ``true`` is not a round number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def shown(value: object, limit: int = 60) -> str:
    """A repr of a bad value short enough for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def message_problems(value: object, name: str) -> list[str]:
    """What is wrong with field ``name`` as chat messages (a non-empty list of {role, content} in the chat roles)."""
    from workbench.chat import ROLES

    if not isinstance(value, list) or not value:
        return [f"field {name!r} must be a non-empty list of {{role, content}} messages, got {shown(value)}"]
    return [f"{name}[{i}] must be {{role, content}} with role in {ROLES} and string content, got {shown(m)}"
            for i, m in enumerate(value)
            if not (isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str))]


def round_and_meta_problems(data: dict) -> list[str]:
    """Problems of a record's optional ``round`` (a non-negative integer) and ``meta`` (an object of plain JSON)."""
    found = []
    if "round" in data and (not is_int(data["round"]) or data["round"] < 0):
        found.append(f"field 'round' must be a non-negative integer, got {shown(data['round'])}")
    meta = data.get("meta")
    if meta is not None and not isinstance(meta, dict):
        found.append(f"field 'meta' must be an object, got {shown(meta)}")
    elif meta is not None and (problem := json_problem(meta)):
        found.append(f"field 'meta' {problem}")
    return found


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range for a finite number")
    return number


def loads(text: str, where: str) -> object:
    """Parse JSON text strictly (finite numbers, bounded depth), or raise a ValueError naming ``where``."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError(f"{where}: the record nests more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # raised by the number hooks above
        raise ValueError(f"{where}: not valid JSON ({exc})") from None
    problem = json_problem(value)
    if problem:
        raise ValueError(f"{where}: the record {problem}")
    return value


def parse_line(raw: bytes, where: str, *, first: bool = False) -> object:
    """One JSONL line as a JSON value, or a ValueError naming ``where`` and what is wrong."""
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} "
                         "of the line); save the file as UTF-8") from None
    return loads(text, where)


def iter_jsonl_numbered(path: str | Path) -> Iterator[tuple[int, object]]:
    """Yield (line number, JSON value) per non-blank line; any bad line is a ValueError naming file and line."""
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            yield lineno, parse_line(raw, f"{path}:{lineno}", first=lineno == 1)


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
