"""Each expert against the base and a policy on its own family of fresh task-world instances."""

from __future__ import annotations

from pathlib import Path

from sampling.backends import TransformersBackend
from sampling.evaluation import greedy_generator
from workbench.evaluate import evaluate


def family_accuracy(model_dir: str | Path, family: str, n: int, seed: int, max_new_tokens: int = 160,
                    batch_size: int = 32, device: str = "cpu") -> dict:
    """``workbench.evaluate`` of ``model_dir`` on one family: the other families' prompts are not generated."""
    with TransformersBackend(model_dir, device=device, batch_size=batch_size) as backend:
        result = evaluate(model_dir, n, seed, max_new_tokens, greedy_generator(backend, seed), families=(family,))
    family_result = result["families"][family]
    return {"accuracy": family_result["accuracy"], "closeness": family_result["closeness"], "n": family_result["n"],
            "templates": {k: v["accuracy"] for k, v in family_result["templates"].items()},
            "examples": [e for e in result["examples"] if e["family"] == family]}


def compare(models: dict[str, str | Path], family: str, n: int, seed: int, max_new_tokens: int = 160,
            batch_size: int = 32, device: str = "cpu") -> dict[str, dict]:
    """``family_accuracy`` of each named model (e.g. expert, base, policy) on the same fresh instances."""
    return {name: {"model": str(path), **family_accuracy(path, family, n, seed, max_new_tokens, batch_size, device)}
            for name, path in models.items()}


def format_comparison(results: dict[str, dict[str, dict]]) -> str:
    """A table: one row per expert family, one accuracy column per compared model."""
    names = sorted({name for row in results.values() for name in row}, key=["expert", "base", "policy"].index)
    lines = [f"{'family':<14}" + "".join(f"{name:>10}" for name in names)]
    for family, row in results.items():
        lines.append(f"{family:<14}" + "".join(f"{row[name]['accuracy']:>10.1%}" if name in row else f"{'-':>10}"
                                               for name in names))
    return "\n".join(lines)
