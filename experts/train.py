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


def prepare_corpus(cfg, run: RunDir, domain: str, force: bool = False) -> dict:
    """Build the expert's domain-heavy corpus (a ``data`` stage of its cpt run); returns its target and measured mix."""
    from workbench.tokenizer import load_tokenizer

    sub = cpt_run(run, domain)
    if sub.is_done("data") and not force:
        manifest = read_manifest(sub.data)
        return {"target": manifest["config"]["target"], **manifest["metrics"]}
    if not sub.tokenizer.exists():
        shutil.copytree(run.tokenizer, sub.tokenizer)
    target = target_mix(domain, cfg.experts.domain_share[domain], cfg.data.mix)
    with sub.stage("data", config={"target": target}, inputs={"train": run.data / "train.jsonl"}) as st:
        measured = build_domain_corpus(run.data, sub.data, target, load_tokenizer(run.tokenizer),
                                       seed=derive_seed(cfg.seed, "experts", domain, "mix"),
                                       anneal_fraction=cfg.data.anneal_fraction)
        st.metrics.update(measured)  # the target is the stage's config, not a measurement
        for name in ("train", "anneal", "heldout"):
            st.output(name, sub.data / f"{name}.jsonl")
    return {"target": target, **measured}


def continue_pretraining(cfg, run: RunDir, domain: str, force: bool = False) -> Path:
    """Continued pretraining of the base on the domain-heavy corpus (the pretraining stage); returns the model."""
    from workbench.pretrain.stage import STAGE
    from workbench.stage import run_stage

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


def train_expert(cfg, run: RunDir, domain: str, force: bool = False) -> Path:
    """Make the ``domain`` expert in ``runs/<name>/experts/<domain>/`` (skipped when done); returns it."""
    from workbench.tracking import trainer_kwargs, using_run_dir

    if domain not in DOMAINS:
        raise ValueError(f"expert {domain!r}: expected one of {list(DOMAINS)}")
    out, rel = expert_dir(run, domain), Path("experts") / domain
    if run.is_done(rel) and not force:
        return out
    # Continued pretraining and SFT log to the expert's own trackio database (also when the continued
    # pretraining is already done) unless this process imported trackio already (it fixes its folder
    # on import: inside the rounds the run's database gets them).
    trackio = cfg.tracking.backend == "trackio"
    with using_run_dir(cpt_run(run, domain).tracking) if trackio else contextlib.nullcontext():
        return _make_expert(cfg, run, domain, out, rel, force, trainer_kwargs(cfg, f"expert-{domain}"))


def _make_expert(cfg, run: RunDir, domain: str, out: Path, rel: Path, force: bool, tracking: dict) -> Path:
    """The three steps of :func:`train_expert`."""
    from workbench.posttrain.sft import train_sft

    # 1) the domain-heavy corpus and 2) continued pretraining from the base
    mix = prepare_corpus(cfg, run, domain, force)
    cpt_dir = continue_pretraining(cfg, run, domain, force)
    # 3) SFT on the checked demonstrations (SFT writes ``out`` in one rename, so it goes first)
    rows, checks = curated_demonstrations(cfg, domain)
    if not rows:
        raise ValueError(f"expert {domain}: no demonstration passed the checks ({checks})")
    inputs = {"base": run.base, "cpt_model": cpt_dir, "corpus": cpt_run(run, domain).data / "train.jsonl"}
    with run.stage(rel, config=cfg.experts, inputs=inputs) as st:
        sft = train_sft(cfg.sft, rows, cpt_dir, out, seed=derive_seed(cfg.seed, "experts", domain, "sft"),
                        tracking=tracking)
        write_jsonl(rows, out / "demos.jsonl")
        atomic_write_json(out / "mix.json", mix)
        st.extra["mix"] = {k: mix[k] for k in ("target", "char_shares", "token_shares", "documents")}
        st.metrics.update({"domain_token_share": mix["token_shares"].get(domain, 0.0),
                           "domain_char_share": mix["char_shares"].get(domain, 0.0),
                           "demonstrations": len(rows), **{f"checks_{k}": v for k, v in checks.items()},
                           **cpt_metrics(cpt_dir, domain),
                           **{f"sft_{k}": v for k, v in sft.items() if isinstance(v, (int, float))}})
        for name in ("config.json", "model.safetensors", "demos.jsonl", "mix.json"):
            st.output(name, out / name)
    return out
