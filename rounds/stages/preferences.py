"""Round stage 1, preferences: two models answer fresh prompts; annotators rank the pairs.

The newest policy and the model before it (round n-2's policy, the bootstrap in round 2, the base in
round 1) answer the round's prompts; the responses are kept exactly as generated (an empty one stays
empty). The pairs are queued as items in the annotation store and answered by the simulated
annotator, by people, by both, or by an AI judge model (``annotation.mode``). A round waiting for
people stops with status ``waiting`` (:class:`~workbench.rundir.StageWaiting`); items the judge could
not answer are skipped, counted in the metrics and left open for people.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from rounds import data as round_data
from rounds.stages.common import backend, log, policy_before, second_model
from workbench.jsonl import write_jsonl
from workbench.rundir import StageWaiting
from workbench.seeds import derive_seed
from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The two models whose answers are compared (the judge model in judge mode, the user's prompt files)."""
    models = {"policy": policy_before(ctx.run, ctx.round), "other": second_model(ctx.run, ctx.round)}
    judge = ctx.cfg.annotation.judge
    return (models | ({"judge": Path(judge.model)} if ctx.cfg.annotation.mode == "judge" else {})
            | round_data.prompt_inputs(ctx.cfg))


def run(ctx: StageContext) -> Result:
    """Queue the round's pairs, let annotators answer, export the preferences."""
    from preference_ui.export import write_export
    from preference_ui.items import read_items
    from preference_ui.store import Store

    cfg, n = ctx.cfg, ctx.round
    items_path = ctx.out / "items.jsonl"
    if not items_path.exists():
        write_jsonl(preference_items(ctx), items_path)
    # the sides items are shown on are seeded by the round, so a rerun of the same config shows them alike
    store = Store.from_config(cfg, rng=random.Random(derive_seed(cfg.seed, "display", n)))
    try:
        items = read_items(items_path)
        store.import_items(items, overlap=cfg.annotation.overlap)
        needed, annotation_metrics = annotate(ctx, store, len(items))
        while (done := store.count_completed(round=n)) < needed and cfg.rounds.annotation_wait:
            log(f"round {n}: {done}/{needed} items annotated; waiting for annotators")
            time.sleep(10)
        if done < needed:
            raise StageWaiting(f"{done}/{needed} items of round {n} fully annotated; annotate with "
                               f"`workbench annotate serve` and run the same command again")
        stats = write_export(store, ctx.out, round=n)
    finally:
        store.close()
    metrics = {"items": len(items), "preferences": stats.get("annotations", done),
               **{k: v for k, v in stats.items() if isinstance(v, (int, float))}, **annotation_metrics}
    return Result(metrics, {"preferences": ctx.out / "preferences.jsonl"}, round_data.prompt_formats(cfg))


def preference_items(ctx: StageContext) -> list[dict]:
    """The round's prompts answered once by the newest policy and once by the other model.

    Each model's answers are generated like rejection sampling's (:func:`sampling.rejection.generate_responses`:
    one sample per prompt, seeded per prompt, in claimed shards under ``generation/model_<i>/``), so
    ``sampling.workers`` engines and `workbench sample-worker` on other machines share the work and an
    interrupted stage resumes shard by shard.
    """
    import dataclasses

    from sampling.rejection import generate_responses

    cfg, run, n = ctx.cfg, ctx.run, ctx.round
    prompts = round_data.round_prompts(cfg, n, "preferences", cfg.rounds.prompts_per_round)
    prompts_path = ctx.out / "prompts.jsonl"
    if not prompts_path.exists():
        write_jsonl(prompts, prompts_path)
    models = [policy_before(run, n), second_model(run, n)]
    gen_cfg = dataclasses.replace(cfg.sampling, backend=cfg.rounds.generation_backend, k=1, top_p=1.0,
                                  temperature=cfg.rounds.preference_temperature, system_prompts=[])
    responses = []
    for i, model in enumerate(models):
        rows = generate_responses(gen_cfg, model, prompts_path, ctx.out / "generation" / f"model_{i}",
                                  seed=derive_seed(cfg.seed, "preferences", n, i), device=cfg.resolved_device())
        text = {row["prompt_id"]: row["text"] for row in rows}
        responses.append([text[p["id"]] for p in prompts])  # as generated: RM and DPO train on what the models said
    names = [str(m.relative_to(run.root)) for m in models]
    return [{"id": p["id"], "prompt": p["messages"], "responses": [a, b], "models": names,
             "round": n, "meta": {"task": p["task"]}} for p, a, b in zip(prompts, *responses)]


def annotate(ctx: StageContext, store, num_items: int) -> tuple[int, dict]:
    """Let the simulated annotator (or the judge) answer its share: (items that must be complete, metrics)."""
    from preference_ui.simulated import SimulatedAnnotator

    ann, n = ctx.cfg.annotation, ctx.round
    if ann.mode == "judge":
        metrics = judge_items(ctx.cfg, store, n)
        return store.count_completed(round=n), metrics
    human_items = {"simulated": 0, "human": num_items, "mixed": round(ann.human_share * num_items)}[ann.mode]
    human_items = min(num_items, ann.human_quota or human_items) if ann.mode != "simulated" else 0
    sim_items = num_items - (num_items if ann.mode == "human" else human_items)
    if sim_items > 0:
        for k in range(ann.overlap):
            name = ann.simulated_user if k == 0 else f"{ann.simulated_user}-{k + 1}"
            annotator = SimulatedAnnotator(store, name, ann.edit_prob, ann.noise,
                                           derive_seed(ctx.cfg.seed, "annotator", n, k))
            annotator.run(round=n, limit=sim_items)
    return sim_items + human_items, {}


def judge_items(cfg, store, n: int | None) -> dict:
    """Let ``overlap`` judge accounts (judge, judge-2, ...) answer round ``n``'s items (None: all); their metrics."""
    from preference_ui.judge import Judge
    from workbench.config_base import ConfigError

    judge_cfg = cfg.annotation.judge
    model = Path(judge_cfg.model)
    if not (model / "config.json").is_file():
        raise ConfigError(f"annotation.judge.model: {model} is not a model folder (no config.json); "
                          "give the folder of a Hugging Face chat model")
    totals: dict = {}
    with backend(cfg, model, judge_cfg.backend) as judge_backend:
        for k in range(cfg.annotation.overlap):
            name = judge_cfg.user if k == 0 else f"{judge_cfg.user}-{k + 1}"
            judge = Judge.from_config(store, judge_cfg, judge_backend, derive_seed(cfg.seed, "judge", n, k), name)
            for key, value in judge.run(round=n).items():
                totals[key] = totals.get(key, 0) + value
    log(f"judge {model} on round {n}: {totals['submitted']} answered, {totals['skipped']} skipped as unparseable, "
        f"{totals['position_disagreements']} position disagreements")
    return {"judge_model": str(model), "judge_rubric": judge_cfg.rubric or "default",
            "judge_rubric_sha256": judge.rubric_sha256, **{f"judge_{k}": v for k, v in totals.items()}}


STAGE = Stage("preferences", "annotation", inputs, run)
