"""Experts in the rounds: each enabled expert rejection-samples its own family's prompts.

The round's samples stage calls :func:`sample_with_experts` first: the prompts of every family
whose ``experts.sampler`` is ``expert`` are sampled by that expert (checked by its domain's verifier)
into ``samples/experts/<family>/``; the prompts left are returned for the policy. The experts are
trained before the rounds, by their own stage. :func:`expert_sft_files` lists the experts' ``sft.jsonl`` for the SFT mix.
:func:`prepare_sibling_run` makes the run folder in which a round is redone with experts, to compare.
"""

from __future__ import annotations

from pathlib import Path

from experts.config import DOMAINS
from experts.train import expert_dir
from workbench.jsonl import write_jsonl
from workbench.rundir import STAGES, RunDir, atomic_write_text, is_done
from workbench.seeds import derive_seed

POLICY_PROMPTS = "policy_prompts.jsonl"


def expert_for(cfg, run: RunDir, family: str) -> Path | None:
    """The expert that samples ``family``'s prompts (enabled, sampler ``expert``), else None (the policy)."""
    if family not in cfg.experts.enabled or cfg.experts.sampler.get(family, "expert") != "expert":
        return None
    return expert_dir(run, family)


def sample_with_experts(cfg, run: RunDir, prompts_path: Path, out_dir: Path, reward_dir: Path, *, seed: int,
                        device: str = "auto") -> Path:
    """Rejection-sample the expert families' prompts with their experts; returns the policy's prompts file.

    The experts must be trained already (the orchestrator's experts stage, or `workbench experts
    train`): sampling never trains. With no expert enabled the returned file holds every prompt.
    """
    from sampling.rejection import VerifierRef, read_prompts, rejection_sample

    out_dir = Path(out_dir)
    records = read_prompts(prompts_path)
    family = lambda record: (record.get("task") or {}).get("family")  # noqa: E731
    experts = {f: path for f in DOMAINS if (path := expert_for(cfg, run, f)) is not None}
    for name, model in experts.items():
        mine = [r for r in records if family(r) == name]
        if not mine:
            continue
        if not is_done(model):
            raise FileNotFoundError(f"{model}: the {name} expert is not trained; run `workbench experts train "
                                    f"{name}` (or `workbench rounds run`, which trains enabled experts first)")
        stage = out_dir / "experts" / name
        stage.mkdir(parents=True, exist_ok=True)
        write_jsonl(mine, stage / "prompts.jsonl")
        # by import path: helper workers (sampling.workers) rebuild the domain's checks in their process
        verifier = VerifierRef("experts.checks:domain_verifier", {"domain": name, "n_random": cfg.experts.unit_tests})
        rejection_sample(cfg.sampling, model, reward_dir, stage / "prompts.jsonl", stage,
                         seed=derive_seed(seed, "experts", name), verifier=verifier, device=device)
    return write_jsonl([r for r in records if family(r) not in experts], out_dir / POLICY_PROMPTS)


def expert_sft_files(run: RunDir, n: int) -> list[Path]:
    """The experts' rejection-sampled ``sft.jsonl`` files of round ``n`` (empty when no expert sampled)."""
    return sorted((run.round_stage(n, "samples") / "experts").glob("*/sft.jsonl"))


def sibling_stages(run: RunDir, n: int, domains: list[str]) -> list[Path]:
    """The stage folders (relative to ``run``) a sibling run shares with it to redo round ``n`` with experts.

    Everything before round ``n``'s rejection sampling: the pipeline before the rounds, the experts,
    every earlier round, and round ``n``'s preferences and reward model (the experts change neither).
    """
    rounds = [run.round_stage(r, s) for r in range(1, n) for s in STAGES]
    rounds += [run.round_stage(n, s) for s in ("preferences", "reward")]
    return [Path(p) for p in ("data", "tokenizer", "base", "bootstrap")] + \
        [Path("experts") / d for d in domains] + [p.relative_to(run.root) for p in rounds]


def prepare_sibling_run(source: str | Path, target: str | Path, n: int, domains: list[str]) -> list[Path]:
    """Copy into ``target`` the done stages of ``source`` that round ``n`` with experts starts from.

    Each stage is copied whole into a temp folder and renamed into place, so an interrupted copy is
    redone and the orchestrator, which trusts a ``done`` manifest, never sees half a stage. Stages
    already done in ``target`` are kept. Round ``n``'s prompts are copied too (the same prompts on
    both sides). The annotation store is not: round ``n``'s preferences are already exported, and
    the store's later rounds hold answers of the source's models. Returns the stages copied now.
    """
    src, dst = RunDir(source), RunDir(target)
    copied = src.copy_done_stages(dst, sibling_stages(src, n, domains), f"the sibling run {dst.root}")
    prompts = dst.round_stage(n, "samples") / "prompts.jsonl"
    if not prompts.exists():
        atomic_write_text(prompts, (src.round_stage(n, "samples") / "prompts.jsonl").read_text(encoding="utf-8"))
    return copied
