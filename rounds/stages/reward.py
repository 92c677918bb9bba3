"""Round stage 2, reward: a reward model on the base, trained on every preference collected so far.

Every round's reward model is scored on the same held-out preferences, so that rounds compare
(:func:`heldout_source`): the user's files of ``reward.heldout_data``; else, on a run with
task-world prompts, ``reward_heldout/preferences.jsonl``: ``reward.heldout_pairs`` simulated
preferences (:func:`reward.synthetic.heldout_preferences`) on the task world's evaluation items,
seeded by ``eval.seed`` (so runs of other seeds score the same pairs, as they are evaluated on the
same instances), built by the first reward stage and never rewritten; else a share of each round's own prompts
(``reward.heldout_fraction``, the only case that holds preferences back from training).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rounds.stages.common import log, preference_inputs, read_preferences, trained_variants
from workbench.rundir import RunDir, atomic_write_json, hash_path
from workbench.seeds import derive_seed
from workbench.stage import Result, Stage, StageContext

HELDOUT_FOLDER = "reward_heldout"  # in the run folder, beside rounds/ (not a post-training folder)


def heldout_source(cfg) -> str:
    """``user`` (reward.heldout_data), ``task_world`` (the run's fixed set) or ``fraction`` (of each round)."""
    if cfg.reward.heldout_data:
        return "user"
    if cfg.reward.heldout_pairs > 0 and cfg.rounds.prompt_source != "user":
        return "task_world"
    return "fraction"


def heldout_inputs(cfg, run: RunDir) -> dict[str, Path]:
    """The held-out files a reward stage reads, named for its manifest (none for ``fraction``)."""
    source = heldout_source(cfg)
    if source == "user":
        return {f"reward_heldout_{i:02d}": Path(p) for i, p in enumerate(cfg.reward.heldout_data)}
    return {"reward_heldout": run.root / HELDOUT_FOLDER / "preferences.jsonl"} if source == "task_world" else {}


def task_world_heldout(cfg, run: RunDir) -> tuple[list, dict]:
    """(records, description) of the run's fixed held-out set, built on first use.

    ``reward_heldout/info.json`` records how it was built and its sha256; a later call that finds a
    different size or seed in the config, or a file that changed since, is refused rather than
    measured on other pairs.
    """
    from reward.synthetic import heldout_preferences
    from workbench.preferences import read_jsonl, write_jsonl

    folder = run.root / HELDOUT_FOLDER
    path, info_path = folder / "preferences.jsonl", folder / "info.json"
    wanted = {"pairs": cfg.reward.heldout_pairs, "seed": derive_seed(cfg.eval.seed, "reward_heldout"),
              "split": "eval", "builder": "reward.synthetic.heldout_preferences"}
    if not info_path.exists():
        log(f"reward: building the fixed held-out set ({wanted['pairs']} task-world evaluation-side pairs)")
        records = heldout_preferences(wanted["pairs"], wanted["seed"])
        write_jsonl(records, path)
        atomic_write_json(info_path, {**wanted, "sha256": hash_path(path),
                                      "levels": dict(sorted(Counter(r.level for r in records).items()))})
    info = json.loads(info_path.read_text())
    changed = [k for k in ("pairs", "seed") if info.get(k) != wanted[k]]
    if changed:
        raise ValueError(f"{info_path}: the held-out set was built with "
                         + ", ".join(f"{k} {info.get(k)}" for k in changed) + "; the config now asks for "
                         + ", ".join(f"{k} {wanted[k]}" for k in changed)
                         + " (rounds stay comparable only on one set: keep reward.heldout_pairs and eval.seed, "
                         "or start a new run)")
    sha = hash_path(path)
    if sha != info["sha256"]:
        raise ValueError(f"{path}: changed since it was built ({sha}, info.json records {info['sha256']}); "
                         f"delete {folder} only together with every round's reward stage")
    return read_jsonl(path), {"source": "task_world", "path": str(path.relative_to(run.root)), **info}


def user_heldout(cfg) -> tuple[list, dict]:
    """(records, description) of ``reward.heldout_data``, read in any format :mod:`workbench.formats` knows."""
    from workbench.formats import load, records_of

    loaded = load("preferences", cfg.reward.heldout_data, default_level=cfg.rounds.preference_level)
    return records_of(loaded), {"source": "user", "data_formats": [item.describe() for item in loaded],
                                "sha256": {item.path: hash_path(item.path) for item in loaded}}


def heldout_set(cfg, run: RunDir) -> tuple[list | None, dict]:
    """(records or None for ``fraction``, the manifest's ``reward_heldout`` entry)."""
    source = heldout_source(cfg)
    if source == "user":
        return user_heldout(cfg)
    if source == "task_world":
        return task_world_heldout(cfg, run)
    return None, {"source": "fraction", "fraction": cfg.reward.heldout_fraction}


def inputs(ctx: StageContext) -> dict:
    """The base, every round's preferences up to this one, the user's preference files, the held-out set."""
    return {"base": ctx.run.base, **preference_inputs(ctx, range(1, ctx.round + 1)),
            **heldout_inputs(ctx.cfg, ctx.run)}


def run(ctx: StageContext) -> Result:
    """Train (and, with variants, average) the reward model into ``reward/model``; score it on the held-out set."""
    from reward.train import train_reward_model

    prefs, user_data = read_preferences(ctx, range(1, ctx.round + 1))
    held, description = heldout_set(ctx.cfg, ctx.run)
    metrics = trained_variants(ctx, "reward", train_reward_model, cfg=ctx.cfg, preferences=prefs,
                               base_dir=ctx.run.base, round_number=ctx.round, heldout=held)
    return Result({k.replace("/", "_"): v for k, v in metrics.items()}, {"model": ctx.out / "model"},
                  user_data | {"reward_heldout": description})


STAGE = Stage("reward", "reward", inputs, run)
