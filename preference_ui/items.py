"""The item format `workbench annotate import` reads: one comparison to annotate per JSONL line.

::

    {"id": "r01-000017",                                       # unique item id
     "prompt": [{"role": "user", "content": "What is 2 + 3?"}],  # chat messages (a plain string = one user turn)
     "responses": ["Answer: 5", "Answer: 6"],                   # the two responses, a and b, exactly as
                                                                # generated (an empty one stays empty)
     "models": ["round01-policy", "round00-policy"],            # the model that wrote each (optional)
     "round": 1,                                                # optional, default 0
     "meta": {"task": {...}}}                                   # optional provenance; meta.task = Task.to_dict()
                                                                # lets the simulated annotator judge it

Responses keep their fixed order a, b in the store; the app shows them in an order randomised per
(item, annotator), and agreement is computed on the fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.jsonl import iter_jsonl_numbered, parse_line, round_and_meta_problems, shown

MAX_TEXT_CHARS = 200_000


class ItemError(ValueError):
    """An item is malformed; the message names the file and line or the item."""


@dataclass
class Item:
    """One comparison to annotate."""

    id: str
    prompt: list[dict]
    response_a: str
    response_b: str
    model_a: str = ""
    model_b: str = ""
    round: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def _messages(prompt: Any) -> list[dict] | None:
    """The prompt as messages (a plain string is one user turn), or None when it is malformed."""
    if isinstance(prompt, str) and prompt.strip():
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and prompt and all(
        isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
        and isinstance(m.get("content"), str) for m in prompt
    ):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    return None


def prompt_text(messages: list[dict]) -> str:
    """A prompt as plain text: a single user turn as is, several turns each under its ``[role]``."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def item_problems(data: dict) -> list[str]:
    """Every problem of an item in the import format, each naming its field; empty when it is valid."""
    found = [f"missing field {key!r}" for key in ("id", "prompt", "responses") if key not in data]
    found += [f"unknown field {key!r}"
              for key in sorted(map(str, set(data) - {"id", "prompt", "responses", "models", "round", "meta"}))]
    if "id" in data and (not isinstance(data["id"], str) or not data["id"].strip() or len(data["id"]) > 200):
        found.append(f"field 'id' must be a non-empty string of at most 200 characters, got {shown(data['id'])}")
    if "prompt" in data and _messages(data["prompt"]) is None:
        found.append("field 'prompt' must be a non-empty string or a list of "
                     "{role: system|user|assistant, content: str} messages")
    responses = data.get("responses")
    if "responses" in data and not (
            isinstance(responses, list) and len(responses) == 2
            and all(isinstance(r, str) and len(r) <= MAX_TEXT_CHARS for r in responses)):
        found.append(f"field 'responses' must be a list of two strings (at most {MAX_TEXT_CHARS} characters "
                     f"each; an empty one is kept as generated)")
    models = data.get("models") or ["", ""]
    if not (isinstance(models, list) and len(models) == 2
            and all(isinstance(m, str) for m in models)):
        found.append(f"field 'models' must be a list of two strings, got {shown(models)}")
    return found + round_and_meta_problems(data)


def validate_item(data: Any, where: str) -> Item:
    """Build an :class:`Item` from a dict in the import format, or raise ItemError naming ``where`` and all problems."""
    if not isinstance(data, dict):
        raise ItemError(f"{where}: expected a JSON object, got {type(data).__name__}")
    found = item_problems(data)
    if found:
        raise ItemError(f"{where}: " + "; ".join(found))
    responses, models = data["responses"], data.get("models") or ["", ""]
    return Item(id=data["id"], prompt=_messages(data["prompt"]), response_a=responses[0],
                response_b=responses[1], model_a=models[0], model_b=models[1], round=data.get("round", 0),
                meta=data.get("meta") or {})


def read_items(path: str | Path) -> list[Item]:
    """Read and validate an item JSONL file; errors name the file and line."""
    return _validated(iter_jsonl_numbered(path), str(path))


def parse_items(text: str, source: str) -> list[Item]:
    """Validate item JSONL given as text (the admin page's paste box); errors name ``source`` and the line."""
    def numbered():
        for lineno, raw in enumerate(text.encode("utf-8").splitlines(), 1):
            if raw.strip():
                yield lineno, parse_line(raw, f"{source}:{lineno}", first=lineno == 1)
    return _validated(numbered(), source)


def _validated(numbered, source: str) -> list[Item]:
    items, seen = [], set()
    try:
        for lineno, data in numbered:
            where = f"{source}:{lineno}"
            item = validate_item(data, where)
            if item.id in seen:
                raise ItemError(f"{where}: duplicate item id {item.id!r}")
            seen.add(item.id)
            items.append(item)
    except ItemError:
        raise
    except ValueError as exc:  # unreadable line, already naming the file and line
        raise ItemError(str(exc)) from None
    return items


def item_to_dict(item: Item) -> dict:
    """The import-format dict of an item (inverse of :func:`validate_item`)."""
    return {"id": item.id, "prompt": item.prompt, "responses": [item.response_a, item.response_b],
            "models": [item.model_a, item.model_b], "round": item.round, "meta": item.meta}
