"""Round stage 1, preferences: two models answer fresh prompts; annotators rank the pairs.

The newest policy and the model before it (round n-2's policy, the bootstrap in round 2, the base in
round 1) answer the round's prompts; the pairs are queued as items in the annotation store and
answered by the simulated annotator, by people, or both (``annotation.mode``). A round waiting for
people stops with status ``waiting`` (:class:`~workbench.rundir.StageWaiting`).
"""

from __future__ import annotations

import time

from rounds import data as round_data
from rounds.stages.common import backend, log, policy_before, second_model
from workbench.jsonl import write_jsonl
from workbench.rundir import StageWaiting
from workbench.seeds import derive_seed
from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The two models whose answers are compared."""
    return {"policy": policy_before(ctx.run, ctx.round), "other": second_model(ctx.run, ctx.round)}


def run(ctx: StageContext) -> Result:
    """Queue the round's pairs, let annotators answer, export the preferences."""
    from preference_ui.export import write_export
    from preference_ui.items import read_items
    from preference_ui.store import Store

    cfg, n = ctx.cfg, ctx.round
    items_path = ctx.out / "items.jsonl"
    if not items_path.exists():
        write_jsonl(preference_items(ctx), items_path)
    store = Store.from_config(cfg)
    try:
        items = read_items(items_path)
        store.import_items(items, overlap=cfg.annotation.overlap)
        needed = annotate(ctx, store, len(items))
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
               **{k: v for k, v in stats.items() if isinstance(v, (int, float))}}
    return Result(metrics, {"preferences": ctx.out / "preferences.jsonl"})


def preference_items(ctx: StageContext) -> list[dict]:
    """The round's prompts answered once by the newest policy and once by the other model."""
    cfg, run, n = ctx.cfg, ctx.run, ctx.round
    prompts = round_data.round_prompts(cfg, n, "preferences", cfg.rounds.prompts_per_round)
    models = [policy_before(run, n), second_model(run, n)]
    responses = []
    for i, model in enumerate(models):
        with backend(cfg, model) as b:
            outs = b.generate([p["messages"] for p in prompts], n=1,
                              temperature=cfg.rounds.preference_temperature, top_p=1.0,
                              max_new_tokens=cfg.sampling.max_new_tokens,
                              seed=derive_seed(cfg.seed, "preferences", n, i))
        # an empty response cannot be annotated; keep the item with a visible placeholder
        responses.append([o[0].text.strip() or "(empty response)" for o in outs])
    names = [str(m.relative_to(run.root)) for m in models]
    return [{"id": p["id"], "prompt": p["messages"], "responses": [a, b], "models": names,
             "round": n, "meta": {"task": p["task"]}} for p, a, b in zip(prompts, *responses)]


def annotate(ctx: StageContext, store, num_items: int) -> int:
    """Let the simulated annotator answer its share; returns how many items must be complete."""
    from preference_ui.simulated import SimulatedAnnotator

    ann, n = ctx.cfg.annotation, ctx.round
    human_items = {"simulated": 0, "human": num_items, "mixed": round(ann.human_share * num_items)}[ann.mode]
    human_items = min(num_items, ann.human_quota or human_items) if ann.mode != "simulated" else 0
    sim_items = num_items - (num_items if ann.mode == "human" else human_items)
    if sim_items > 0:
        for k in range(ann.overlap):
            name = ann.simulated_user if k == 0 else f"{ann.simulated_user}-{k + 1}"
            annotator = SimulatedAnnotator(store, name, ann.edit_prob, ann.noise,
                                           derive_seed(ctx.cfg.seed, "annotator", n, k))
            annotator.run(round=n, limit=sim_items)
    return sim_items + human_items


STAGE = Stage("preferences", "annotation", inputs, run)
