"""A user's prompt set scored by a reward model: mean reward, and win rate against a baseline model.

Each model answers every prompt greedily through a sampling backend (:mod:`sampling.backends`, the
model's own chat template and stop tokens); the reward model (:class:`reward.scoring.RewardScorer`)
scores each (prompt, answer). Against a baseline (e.g. the previous round's policy) a prompt is a win
when the model's answer scores higher, a loss when lower, and a tie when both answers are the same
text or their scores differ by at most ``tie_margin``; ``win_rate = (wins + ties / 2) / prompts``.
Only one model is in memory at a time: the backends are closed before the reward model loads.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from sampling.backends import make_backend


def read_prompt_set(path: str | Path) -> list[dict]:
    """Prompt records ``{"id", "messages", ...}`` from a JSONL, parquet or ``datasets`` folder, in any prompt
    format :mod:`workbench.formats` reads (a bad record is reported by file, line and field)."""
    from workbench import formats

    records = formats.records_of(formats.load("prompts", [path]))
    if not records:
        raise ValueError(f"{path}: no prompts")
    return records


def greedy_answers(sampling_cfg, model_dir: str | Path, prompts: list[list[dict]], *, backend: str,
                   max_new_tokens: int, seed: int, device: str = "auto") -> list[str]:
    """One greedy answer of ``model_dir`` per conversation, through the named backend."""
    cfg = dataclasses.replace(sampling_cfg, backend=backend)
    with make_backend(cfg, model_dir, device=device) as b:
        outs = b.generate(prompts, n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
    return [o[0].text for o in outs]


def compare(scores: list[float], baseline_scores: list[float], answers: list[str], baseline_answers: list[str],
            tie_margin: float = 0.0) -> dict:
    """Wins, losses, ties and win rate of ``scores`` against ``baseline_scores`` (same prompts, same order)."""
    if not len(scores) == len(baseline_scores) == len(answers) == len(baseline_answers):
        raise ValueError("compare: scores and answers of both models must cover the same prompts")
    if tie_margin < 0:
        raise ValueError(f"tie_margin {tie_margin}: must be at least 0")
    wins = losses = ties = 0
    for s, b, a, ba in zip(scores, baseline_scores, answers, baseline_answers):
        if a == ba or abs(s - b) <= tie_margin:
            ties += 1
        elif s > b:
            wins += 1
        else:
            losses += 1
    n = len(scores)
    return {"wins": wins, "losses": losses, "ties": ties,
            "win_rate": (wins + ties / 2) / n if n else float("nan")}


def reward_eval(model_dir: str | Path, prompts: list[dict], reward_dir: str | Path, sampling_cfg, *,
                backend: str, max_new_tokens: int, seed: int, baseline_dir: str | Path | None = None,
                tie_margin: float = 0.0, device: str = "auto", reward_device: str = "cpu") -> dict:
    """Mean reward of ``model_dir``'s greedy answers to ``prompts`` (and win rate against ``baseline_dir``).

    ``prompts`` are records with ``messages`` (:func:`read_prompt_set`). The result holds the metrics
    and one row per prompt (id, answers, scores).
    """
    from reward.scoring import RewardScorer

    start = time.monotonic()
    if not prompts:
        raise ValueError("reward_eval: no prompts")
    conversations = [p["messages"] for p in prompts]
    kwargs = dict(backend=backend, max_new_tokens=max_new_tokens, seed=seed, device=device)
    answers = greedy_answers(sampling_cfg, model_dir, conversations, **kwargs)
    baseline_answers = greedy_answers(sampling_cfg, baseline_dir, conversations, **kwargs) if baseline_dir else None
    scorer = RewardScorer(reward_dir, device=reward_device, batch_size=sampling_cfg.reward_batch_size)
    try:
        scores = scorer.score(conversations, answers)
        baseline_scores = scorer.score(conversations, baseline_answers) if baseline_dir else None
    finally:
        scorer.close()
    result = {"model": str(model_dir), "reward_model": str(reward_dir), "prompts": len(prompts),
              "mean_reward": sum(scores) / len(scores)}
    rows = [{"id": p.get("id"), "answer": a, "reward": s} for p, a, s in zip(prompts, answers, scores)]
    if baseline_dir:
        result.update(baseline=str(baseline_dir), baseline_mean_reward=sum(baseline_scores) / len(baseline_scores),
                      tie_margin=tie_margin, **compare(scores, baseline_scores, answers, baseline_answers, tie_margin))
        for row, a, s in zip(rows, baseline_answers, baseline_scores):
            row.update(baseline_answer=a, baseline_reward=s)
    result.update(max_new_tokens=max_new_tokens, backend=backend, rows=rows, seconds=round(time.monotonic() - start, 2))
    return result


def format_table(result: dict) -> str:
    """Mean reward, and the comparison with the baseline when there is one."""
    lines = [f"reward model {result['reward_model']}: {result['prompts']} prompts",
             f"mean reward          {result['mean_reward']:.4f}"]
    if "win_rate" in result:
        lines += [f"baseline mean reward {result['baseline_mean_reward']:.4f}  ({result['baseline']})",
                  f"win rate             {result['win_rate']:.4f}  (wins {result['wins']}, losses {result['losses']}, "
                  f"ties {result['ties']})"]
    return "\n".join(lines)
