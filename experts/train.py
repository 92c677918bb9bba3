"""`workbench experts train`: continued pretraining on a domain-heavy mix, then SFT on checked demonstrations.

Layout (the expert is a stage folder, its continued pretraining a small run of its own)::

    runs/<name>/experts/<domain>/              the expert (HF format) + manifest.json, demos.jsonl, mix.json
    runs/<name>/experts/_cpt/<domain>/data/    the domain-heavy corpus (train, anneal, held-out)
    runs/<name>/experts/_cpt/<domain>/base/    the continued-pretrained model + its pretraining manifest

Each part is skipped when done (``force`` redoes all three), so an interrupted expert resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from pathlib import Path

from experts.checks import check_samples
from experts.config import DOMAINS
from experts.corpus import build_domain_corpus, target_mix
from workbench import tasks as task_world
from workbench.jsonl import write_jsonl
from workbench.rundir import RunDir, atomic_write_json, read_manifest
from workbench.seeds import derive_seed
from workbench.stage import Result, Stage, StageContext, run_stage


def expert_dir(run: RunDir, domain: str) -> Path:
    """``runs/<name>/experts/<domain>/``: the expert model and its manifest."""
    return run.root / "experts" / domain


def cpt_run(run: RunDir, domain: str) -> RunDir:
    """The continued-pretraining run of an expert (its own data/, tokenizer/ and base/)."""
    return RunDir(run.root / "experts" / "_cpt" / domain)


def cpt_config(cfg, run: RunDir, domain: str):
    """The run's config with the pretraining section turned into the expert's continued pretraining."""
    e, pc = cfg.experts, cfg.pretrain
    seq_len, batch = pc.ramp[-1][1:]  # the base ended at its longest sequences; continue there
    pretrain = dataclasses.replace(
        pc, init_from=str(run.base), max_steps=e.cpt_steps, warmup_steps=e.cpt_warmup_steps,
        learning_rate=e.cpt_learning_rate, anneal_steps=e.cpt_anneal_steps,
        anneal_average=max(1, min(pc.anneal_average, e.cpt_anneal_steps)), ramp=[[0, seq_len, batch]],
        eval_interval=0, seed=derive_seed(cfg.seed, "experts", domain, "cpt"))
    return dataclasses.replace(cfg, pretrain=pretrain)


def corpus_stage(domain: str) -> Stage:
    """The expert's domain-heavy corpus: the ``data`` stage of its continued-pretraining run.

    Run it with the run's config and the cpt run (:func:`cpt_run`); the target mix is its recorded config.
    """
    def inputs(ctx: StageContext) -> dict:
        return {"train": _parent(ctx.run).data / "train.jsonl"}

    def run(ctx: StageContext) -> Result:
        from workbench.tokenizer import load_tokenizer

        cfg, parent = ctx.cfg, _parent(ctx.run)
        if not ctx.run.tokenizer.exists():
            shutil.copytree(parent.tokenizer, ctx.run.tokenizer)
        measured = build_domain_corpus(parent.data, ctx.out, _target(cfg, domain), load_tokenizer(parent.tokenizer),
                                       seed=derive_seed(cfg.seed, "experts", domain, "mix"),
                                       anneal_fraction=cfg.data.anneal_fraction)
        # the target is the stage's config, not a measurement
        return Result(measured, {name: ctx.out / f"{name}.jsonl" for name in ("train", "anneal", "heldout")})

    return Stage("data", None, inputs, run)


def _parent(cpt: RunDir) -> RunDir:
    """The run an expert's continued-pretraining run belongs to (``<run>/experts/_cpt/<domain>``)."""
    return RunDir(cpt.root.parent.parent.parent)


def _target(cfg, domain: str) -> dict:
    return target_mix(domain, cfg.experts.domain_share[domain], cfg.data.mix)


def prepare_corpus(cfg, run: RunDir, domain: str, force: bool = False) -> dict:
    """Build the expert's domain-heavy corpus (skipped when done); returns its target and measured mix."""
    measured = run_stage(corpus_stage(domain), cfg, cpt_run(run, domain), force=force,
                         config={"target": _target(cfg, domain)})
    return {"target": _target(cfg, domain), **measured}


def continue_pretraining(cfg, run: RunDir, domain: str, force: bool = False) -> Path:
    """Continued pretraining of the base on the domain-heavy corpus (the pretraining stage); returns the model."""
    from workbench.pretrain.stage import STAGE

    if not run.is_done("base"):
        raise FileNotFoundError(f"{run.base}: no finished base model; run `workbench pretrain` first")
    sub = cpt_run(run, domain)
    run_stage(STAGE, cpt_config(cfg, run, domain), sub, force=force)
    return sub.base


def curated_demonstrations(cfg, domain: str) -> tuple[list[dict], dict]:
    """The domain's task-world reference solutions that pass its checks, as SFT rows; and the check summary."""
    chosen = task_world.generate(domain, cfg.experts.sft_examples, seed=derive_seed(cfg.seed, "experts", domain, "sft"))
    results, summary = check_samples(domain, chosen, [t.solution for t in chosen], n_random=cfg.experts.unit_tests)
    rows = [{"messages": [{"role": "user", "content": t.prompt}, {"role": "assistant", "content": r["response"]}],
             "source": f"expert_{domain}"} for t, r in zip(chosen, results) if r["passed"]]
    return rows, summary


def cpt_metrics(model_dir: Path, domain: str) -> dict:
    """The continued pretraining's held-out loss on the domain before (the base) and after, and its tokens."""
    m = read_manifest(model_dir)["metrics"]
    return {"cpt_heldout_loss_before": m.get(f"heldout_loss_init/{domain}"),
            "cpt_heldout_loss_after": m.get(f"heldout_loss_after_anneal/{domain}"),
            "cpt_tokens": m.get("tokens"), "cpt_steps": m.get("steps")}


def expert_stage(domain: str) -> Stage:
    """The ``domain`` expert as one recipe: corpus and continued pretraining (sub-stages of its cpt run,
    each skipped when done), then SFT on the checked demonstrations into ``experts/<domain>/``."""
    if domain not in DOMAINS:
        raise ValueError(f"expert {domain!r}: expected one of {list(DOMAINS)}")

    def inputs(ctx: StageContext) -> dict:
        sub = cpt_run(ctx.run, domain)
        return {"base": ctx.run.base, "cpt_model": sub.base, "corpus": sub.data / "train.jsonl"}

    def run(ctx: StageContext) -> Result:
        from workbench.launch import run_call
        from workbench.posttrain.sft import train_sft
        from workbench.tracking import trainer_kwargs

        cfg, out = ctx.cfg, ctx.out
        # 1) the domain-heavy corpus and 2) continued pretraining from the base
        mix = prepare_corpus(cfg, ctx.run, domain, ctx.force)
        cpt_dir = continue_pretraining(cfg, ctx.run, domain, ctx.force)
        # 3) SFT on the checked demonstrations (SFT writes ``out`` in one rename, so it goes first)
        rows, checks = curated_demonstrations(cfg, domain)
        if not rows:
            raise ValueError(f"expert {domain}: no demonstration passed the checks ({checks})")
        sft = run_call(cfg.distributed, train_sft, out, sft_cfg=cfg.sft, data=rows, init_dir=cpt_dir, out_dir=out,
                       seed=derive_seed(cfg.seed, "experts", domain, "sft"),
                       tracking=trainer_kwargs(cfg, f"expert-{domain}"))
        write_jsonl(rows, out / "demos.jsonl")
        atomic_write_json(out / "mix.json", mix)
        metrics = {"domain_token_share": mix["token_shares"].get(domain, 0.0),
                   "domain_char_share": mix["char_shares"].get(domain, 0.0),
                   "demonstrations": len(rows), **{f"checks_{k}": v for k, v in checks.items()},
                   **cpt_metrics(cpt_dir, domain),
                   **{f"sft_{k}": v for k, v in sft.items() if isinstance(v, (int, float))}}
        return Result(metrics, {name: out / name for name in ("config.json", "model.safetensors", "demos.jsonl",
                                                              "mix.json")},
                      {"mix": {k: mix[k] for k in ("target", "char_shares", "token_shares", "documents")}})

    return Stage("experts", "experts", inputs, run, folder=lambda run, n: expert_dir(run, domain))


def train_expert(cfg, run: RunDir, domain: str, force: bool = False) -> Path:
    """Make the ``domain`` expert in ``runs/<name>/experts/<domain>/`` (skipped when done); returns it."""
    from workbench.tracking import using_run_dir

    stage = expert_stage(domain)
    if run.is_done(stage.path(run, None).relative_to(run.root)) and not force:
        return stage.path(run, None)
    # Continued pretraining and SFT log to the expert's own trackio database (also when the continued
    # pretraining is already done) unless this process imported trackio already (it fixes its folder
    # on import: inside the rounds the run's database gets them).
    trackio = cfg.tracking.backend == "trackio"
    with using_run_dir(cpt_run(run, domain).tracking) if trackio else contextlib.nullcontext():
        run_stage(stage, cfg, run, force=force)
    return stage.path(run, None)
