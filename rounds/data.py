"""The data a round reads: its prompts, the curated demonstrations, and the accumulated SFT mix."""

from __future__ import annotations

import random
from pathlib import Path

from workbench.posttrain.sft import read_rows
from workbench.rundir import RunDir
from workbench.seeds import derive_seed
from workbench.tasks import generate


def prompt_records(tasks, prefix: str) -> list[dict]:
    """Prompt records ({"id", "messages", "task"}) for task-world tasks."""
    return [{"id": f"{prefix}-{i:06d}", "messages": [{"role": "user", "content": t.prompt}], "task": t.to_dict()}
            for i, t in enumerate(tasks)]


def round_prompts(cfg, n: int, purpose: str, count: int) -> list[dict]:
    """Fresh task-world prompts for round ``n`` (``purpose``: preferences or samples), seeded per round."""
    tasks = generate(None, count, seed=derive_seed(cfg.seed, "round", n, purpose))
    return prompt_records(tasks, f"r{n:02d}-{purpose[:4]}")


def curated_tasks(cfg) -> list:
    """The tasks behind the curated demonstrations (seeded apart from every round's prompts)."""
    return generate(None, cfg.bootstrap.num_examples, seed=derive_seed(cfg.seed, "curated"))


def curated_examples(cfg) -> list[dict]:
    """The curated demonstrations: task-world reference solutions as chat rows {"messages": [...]}."""
    return [{"messages": [{"role": "user", "content": t.prompt}, {"role": "assistant", "content": t.solution}],
             "source": "curated"} for t in curated_tasks(cfg)]


def sampled_sft_files(run: RunDir, n: int) -> list[tuple[int, str | None, Path]]:
    """(round, expert or None for the policy, file) of every rejection-sampled ``sft.jsonl`` of rounds 1..n."""
    from experts.rounds import expert_sft_files

    return [item for r in range(1, n + 1)
            for item in [(r, None, run.round_stage(r, "samples") / "sft.jsonl"),
                         *((r, path.parent.name, path) for path in expert_sft_files(run, r))]]


def sft_mix(cfg, run: RunDir, n: int) -> list[dict]:
    """Round ``n``'s SFT data: rejection-sampled best responses of rounds 1..n plus curated rows at their share."""
    sampled = [{"messages": row["messages"], "source": f"round_{r:02d}"}
               for r, _, path in sampled_sft_files(run, n) for row in read_rows([path])]
    curated = curated_examples(cfg)
    share = cfg.rounds.curated_share
    want = round(share / (1 - share) * len(sampled)) if sampled else len(curated)
    rng = random.Random(derive_seed(cfg.seed, "sft_mix", n))
    picked = [curated[i % len(curated)] for i in rng.sample(range(max(want, len(curated))), want)] if want else []
    mix = sampled + picked
    rng.shuffle(mix)
    return mix
