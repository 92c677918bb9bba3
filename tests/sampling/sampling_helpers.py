"""Test helpers for sampling: a prompts file, a backend that counts its prompts."""

from __future__ import annotations

import json
from pathlib import Path

QUESTIONS = [
    "What is 12 + 30?", "What is 97 - 45?", "Translate into French: cat", "How do you write 21 in Spanish?",
    "Translate into German: white", "Reverse the order of these words: red green blue",
    "Write the word house in capital letters.", "Ana has 3 apples and buys 4 more. How many apples does Ana have now?",
]


def write_prompts(path: str | Path, n: int) -> Path:
    """A prompts JSONL of ``n`` records with ids p000.. (no tasks)."""
    path = Path(path)
    lines = [json.dumps({"id": f"p{i:03d}", "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                         "task": None}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class CountingBackend:
    """Wraps a backend and counts the prompts it was asked to generate for."""

    def __init__(self, inner):
        self.inner, self.prompts = inner, 0

    def generate(self, prompts, **kwargs):
        """Delegate and count."""
        self.prompts += len(prompts)
        return self.inner.generate(prompts, **kwargs)
