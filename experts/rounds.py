"""Experts in the rounds: each enabled expert rejection-samples its own family's prompts.

The orchestrator's samples stage calls :func:`sample_with_experts` first: the prompts of every
family whose ``experts.sampler`` is ``expert`` are sampled by that expert (checked by its domain's
verifier) into ``samples/experts/<family>/``, a rejection-sampling stage of its own; the prompts left
are returned for the policy. :func:`expert_sft_files` lists the experts' ``sft.jsonl`` for the SFT mix.
"""

from __future__ import annotations

from pathlib import Path

from experts.checks import domain_verifier
from experts.config import DOMAINS
from experts.train import expert_dir, train_expert
from workbench.jsonl import write_jsonl
from workbench.rundir import RunDir
from workbench.seeds import derive_seed

POLICY_PROMPTS = "policy_prompts.jsonl"


def expert_for(cfg, run: RunDir, family: str) -> Path | None:
    """The expert that samples ``family``'s prompts (enabled, sampler ``expert``), else None (the policy)."""
    if family not in cfg.experts.enabled or cfg.experts.sampler.get(family, "expert") != "expert":
        return None
    return expert_dir(run, family)


def sample_with_experts(cfg, run: RunDir, prompts_path: Path, out_dir: Path, reward_dir: Path, *, seed: int,
                        device: str = "auto", force: bool = False) -> Path:
    """Rejection-sample the expert families' prompts with their experts; returns the policy's prompts file.

    Experts not trained yet are trained first (skipped when done). With no expert enabled the
    returned file holds every prompt.
    """
    from sampling.rejection import read_prompts, run_rejection_sampling

    out_dir = Path(out_dir)
    records = read_prompts(prompts_path)
    family = lambda record: (record.get("task") or {}).get("family")  # noqa: E731
    experts = {f: path for f in DOMAINS if (path := expert_for(cfg, run, f)) is not None}
    for name, model in experts.items():
        mine = [r for r in records if family(r) == name]
        if not mine:
            continue
        train_expert(cfg, run, name)
        stage = out_dir / "experts" / name
        stage.mkdir(parents=True, exist_ok=True)
        write_jsonl(mine, stage / "prompts.jsonl")
        run_rejection_sampling(cfg.sampling, model, reward_dir, stage / "prompts.jsonl", stage,
                               seed=derive_seed(seed, "experts", name),
                               verifier=domain_verifier(name, cfg.experts.unit_tests),
                               device=device, force=force)
    return write_jsonl([r for r in records if family(r) not in experts], out_dir / POLICY_PROMPTS)


def expert_sft_files(run: RunDir, n: int) -> list[Path]:
    """The experts' rejection-sampled ``sft.jsonl`` files of round ``n`` (empty when no expert sampled)."""
    return sorted((run.round_stage(n, "samples") / "experts").glob("*/sft.jsonl"))
