"""Round stage 3, samples: rejection sampling from the newest policy, the reward model keeps the best.

The round's prompts are drawn once into ``prompts.jsonl``; the families an enabled expert samples go
to that expert (``samples/experts/<family>/``), the rest to the policy. Work is sharded and resumes
shard by shard (:mod:`sampling.rejection`). ``sampling.selection`` picks the kept sample (the
metrics' ``selection`` records it); its verifier and random modes never load the reward model.
"""

from __future__ import annotations

from rounds import data as round_data
from rounds.stages.common import model_dir, policy_before
from sampling.config import SCORED_SELECTIONS
from workbench.jsonl import write_jsonl
from workbench.seeds import derive_seed
from workbench.stage import Result, Stage, StageContext


def inputs(ctx: StageContext) -> dict:
    """The newest policy, this round's reward model (when ``sampling.selection`` scores) and the user's prompt files."""
    scored = ctx.cfg.sampling.selection_mode in SCORED_SELECTIONS
    reward = {"reward": model_dir(ctx.run, ctx.round, "reward")} if scored else {}
    return {"policy": policy_before(ctx.run, ctx.round), **reward, **round_data.prompt_inputs(ctx.cfg)}


def run(ctx: StageContext) -> Result:
    """Draw the prompts (once), let the experts sample theirs, the policy the rest."""
    from experts.rounds import sample_with_experts
    from sampling.rejection import rejection_sample

    cfg, n = ctx.cfg, ctx.round
    prompts_path = ctx.out / "prompts.jsonl"
    if not prompts_path.exists():
        write_jsonl(round_data.round_prompts(cfg, n, "samples", cfg.rounds.rs_prompts_per_round), prompts_path)
    seed, device, reward = derive_seed(cfg.seed, "samples", n), cfg.resolved_device(), model_dir(ctx.run, n, "reward")
    policy_prompts = sample_with_experts(cfg, ctx.run, prompts_path, ctx.out, reward, seed=seed, device=device)
    result = rejection_sample(cfg.sampling, policy_before(ctx.run, n), reward, policy_prompts, ctx.out,
                              seed=seed, device=device)
    result.extra.update(round_data.prompt_formats(cfg))
    return result


STAGE = Stage("samples", "sampling", inputs, run)
