"""Test helpers for sampling: a tiny reward scorer, a prompts file, a backend that counts its prompts."""

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


def save_tiny_reward_model(policy_dir: str | Path, out: str | Path) -> Path:
    """A random one-label LlamaForSequenceClassification on the policy's config and tokenizer."""
    import torch
    from transformers import AutoConfig, LlamaForSequenceClassification

    from workbench.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(policy_dir)
    config = AutoConfig.from_pretrained(str(policy_dir))
    config.num_labels, config.pad_token_id = 1, tokenizer.pad_token_id
    torch.manual_seed(1)
    LlamaForSequenceClassification(config).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return Path(out)


class TinyScorer:
    """The RewardScorer contract (``score(prompts, responses)``, ``close()``), one sequence at a time."""

    def __init__(self, model_dir: str | Path):
        from transformers import AutoModelForSequenceClassification

        from workbench.tokenizer import load_tokenizer

        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
        self.tokenizer = load_tokenizer(model_dir)
        self.calls = 0

    def score(self, prompts: list[list[dict]], responses: list[str]) -> list[float]:
        """One reward per (prompt, response)."""
        import torch

        self.calls += 1
        scores = []
        for messages, response in zip(prompts, responses):
            ids = self.tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": response}])["input_ids"]
            with torch.no_grad():
                scores.append(float(self.model(torch.tensor([ids])).logits[0, 0]))
        return scores

    def close(self) -> None:
        """Drop the model."""
        self.model = None


class CountingBackend:
    """Wraps a backend and counts the prompts it was asked to generate for."""

    def __init__(self, inner):
        self.inner, self.prompts = inner, 0

    def generate(self, prompts, **kwargs):
        """Delegate and count."""
        self.prompts += len(prompts)
        return self.inner.generate(prompts, **kwargs)
