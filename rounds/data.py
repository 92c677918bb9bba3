"""The data a round reads: its prompts, the curated demonstrations, the user's data, and the SFT mix.

User prompts (``rounds.prompts``) form one stream that the rounds draw from in order (round 1's
preference prompts, round 1's sampling prompts, round 2's, ...): a seeded permutation of the pool,
a fresh one each time the pool runs out, so no prompt repeats before all were used. A slot's place in
the stream depends only on the config, so re-running (or resuming) a round draws the same prompts. A
slot never holds a prompt twice: when it straddles the end of a pass, or the pool is smaller than
the slot, the round gets fewer prompts than asked.
"""

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


PURPOSES = ("preferences", "samples")


def round_prompts(cfg, n: int, purpose: str, count: int) -> list[dict]:
    """Round ``n``'s prompts (``purpose``: preferences or samples) from ``rounds.prompt_source``, seeded per round."""
    users = user_prompt_count(cfg, count)
    tasks = generate(None, count - users, seed=derive_seed(cfg.seed, "round", n, purpose),
                     weights=cfg.rounds.family_weights) if count > users else []
    records = prompt_records(tasks, f"r{n:02d}-{purpose[:4]}")
    if users:
        # a slot that straddles the end of a pass (or outnumbers the pool) keeps each prompt once
        picked = {p["id"]: p for p in draw_user_prompts(cfg, stream_offset(cfg, n, purpose), users)}
        records += [{**p, "id": f"r{n:02d}-{purpose[:4]}-user-{p['id']}"} for p in picked.values()]
        random.Random(derive_seed(cfg.seed, "round", n, purpose, "mix")).shuffle(records)
    return records


def user_prompt_count(cfg, count: int) -> int:
    """How many of ``count`` prompts come from ``rounds.prompts`` (all, none, or the mix's share)."""
    source = cfg.rounds.prompt_source
    if source == "mix":
        return round(cfg.rounds.user_prompt_share * count)
    return count if source == "user" else 0


def stream_offset(cfg, n: int, purpose: str) -> int:
    """Where round ``n``'s ``purpose`` slot starts in the user-prompt stream (from the configured counts)."""
    per_round = {"preferences": cfg.rounds.prompts_per_round, "samples": cfg.rounds.rs_prompts_per_round}
    slots = [(r, p) for r in range(1, n + 1) for p in PURPOSES]
    return sum(user_prompt_count(cfg, per_round[p]) for r, p in slots[:slots.index((n, purpose))])


def load_user_prompts(cfg) -> list:
    """The files of ``rounds.prompts``, read and converted (:class:`workbench.formats.Loaded` each)."""
    from workbench.formats import load

    return load("prompts", cfg.rounds.prompts)


def draw_user_prompts(cfg, offset: int, count: int) -> list[dict]:
    """Positions ``offset .. offset+count-1`` of the user-prompt stream (a new permutation per pass)."""
    from workbench.formats import records_of

    pool = records_of(load_user_prompts(cfg))
    drawn, orders = [], {}
    for position in range(offset, offset + count):
        epoch = position // len(pool)
        if epoch not in orders:
            orders[epoch] = random.Random(derive_seed(cfg.seed, "user_prompts", epoch)).sample(range(len(pool)),
                                                                                               len(pool))
        drawn.append(pool[orders[epoch][position % len(pool)]])
    return drawn


def user_data_inputs(cfg, name: str) -> dict[str, Path]:
    """A manifest's inputs for the user's files in ``rounds.<name>`` (prompts, preference_data, sft_data)."""
    return {f"user_{name}_{i:02d}": Path(path) for i, path in enumerate(getattr(cfg.rounds, name))}


def prompt_inputs(cfg) -> dict[str, Path]:
    """The user's prompt files a round's preferences and samples stages read (none for the task world alone)."""
    return user_data_inputs(cfg, "prompts") if cfg.rounds.prompt_source != "task_world" else {}


def prompt_formats(cfg) -> dict:
    """Manifest fields saying which prompt data and formats a round reads."""
    if cfg.rounds.prompt_source == "task_world":
        return {"prompt_source": "task_world"}
    return {"prompt_source": cfg.rounds.prompt_source,
            "data_formats": [item.describe() for item in load_user_prompts(cfg)]}


def user_preferences_apply(cfg, n: int) -> bool:
    """Whether round ``n``'s reward and DPO stages read ``rounds.preference_data``."""
    return bool(cfg.rounds.preference_data) and (cfg.rounds.preference_data_rounds == "all" or n == 1)


def user_preferences(cfg, n: int) -> tuple[list, list[dict]]:
    """(preferences, data_formats) of ``rounds.preference_data`` for round ``n`` (nothing when it does not apply)."""
    from workbench.formats import load, records_of

    if not user_preferences_apply(cfg, n):
        return [], []
    loaded = load("preferences", cfg.rounds.preference_data, default_level=cfg.rounds.preference_level)
    return records_of(loaded), [item.describe() for item in loaded]


def user_sft_formats(cfg) -> dict:
    """Manifest fields naming the formats of ``rounds.sft_data`` (none without it)."""
    return {"data_formats": user_sft_rows(cfg)[1]} if cfg.rounds.sft_data else {}


def user_sft_rows(cfg) -> tuple[list[dict], list[dict]]:
    """(rows with source "user", data_formats) of ``rounds.sft_data``."""
    from workbench.formats import load, records_of

    loaded = load("sft", cfg.rounds.sft_data)
    return [{**row, "source": "user"} for row in records_of(loaded)], [item.describe() for item in loaded]


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
    """Round ``n``'s SFT data: rejection-sampled best responses of rounds 1..n and the user's rows, plus
    curated rows at their share of the whole."""
    sampled = [{"messages": row["messages"], "source": f"round_{r:02d}"}
               for r, _, path in sampled_sft_files(run, n) for row in read_rows([path])]
    sampled += user_sft_rows(cfg)[0]
    curated = curated_examples(cfg)
    share = cfg.rounds.curated_share
    want = round(share / (1 - share) * len(sampled)) if sampled else len(curated)
    rng = random.Random(derive_seed(cfg.seed, "sft_mix", n))
    picked = [curated[i % len(curated)] for i in rng.sample(range(max(want, len(curated))), want)] if want else []
    mix = sampled + picked
    rng.shuffle(mix)
    return mix
