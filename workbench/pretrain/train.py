"""The pretraining loop: packed documents, cosine then annealing, checkpoints, snapshot averaging.

Every process of an ``accelerate launch`` runs :func:`pretrain`. Each builds the same global batch
(the data order is a pure function of the seed and the step) and trains on its share of the rows;
the loss is normalised by the global number of targets, so the averaged gradient, and the run, do
not depend on the number of processes. Only the main process writes files.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm

from workbench import tracking
from workbench.config_base import to_dict
from workbench.launch import savable
from workbench.masking import attention_inputs
from workbench.modeling import count_parameters, create_model, load_causal_lm, save_model
from workbench.pretrain import checkpoint as ckpt
from workbench.pretrain.packing import (IGNORE, Batch, Corpus, TokenStream, eval_batches, next_batch,
                                        read_documents, tokenize_corpus)
from workbench.pretrain.schedule import (anneal_snapshot_steps, is_annealing, learning_rate, ramp,
                                         total_steps)
from workbench.rundir import RunDir, atomic_write_json, atomic_write_text
from workbench.tokenizer import load_tokenizer

REPORT = "pretrain_report.json"
LOG = "train_log.jsonl"
# Settings a checkpoint may be resumed under even if they changed since it was written.
RESUMABLE_CHANGES = {"micro_batch_size", "checkpoint_interval", "keep_checkpoints",
                     "log_interval", "eval_interval", "compile"}


# -- setup -----------------------------------------------------------------------------------------

def load_corpora(data_dir: Path, tokenizer, need_anneal: bool) -> dict[str, Corpus]:
    """The tokenized train, anneal (if needed) and held-out corpora, sharing one domain index."""
    names = ["train", "heldout"] + (["anneal"] if need_anneal else [])
    docs = {name: read_documents(Path(data_dir) / f"{name}.jsonl") for name in names}
    domains = tuple(sorted({d["domain"] for part in docs.values() for d in part}))
    return {name: tokenize_corpus(part, tokenizer, domains) for name, part in docs.items()}


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """AdamW decaying the weight matrices only: not norms, biases or the token embedding (tied to the head or not)."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    params = [p for p in model.parameters() if p.requires_grad]  # a tied embedding is listed once
    decay = [p for p in params if p.dim() >= 2 and id(p) not in embeddings]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2 or id(p) in embeddings], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                             eps=1e-8, fused=True)  # one fused kernel per step (CPU and CUDA)


def fingerprint(cfg) -> dict:
    """The settings a checkpoint must have been written under to be resumed."""
    pretrain = {k: v for k, v in to_dict(cfg.pretrain).items() if k not in RESUMABLE_CHANGES}
    return {"pretrain": pretrain, "model": to_dict(cfg.model), "seed": run_seed(cfg)}


def run_seed(cfg) -> int:
    """The seed of the model's init and of the data order."""
    return cfg.seed if cfg.pretrain.seed is None else cfg.pretrain.seed


# -- one step and the evaluation --------------------------------------------------------------------

def forward_losses(model, batch: Batch) -> torch.Tensor:
    """Per-token cross-entropy [B*T] of the next token (0 where the target is IGNORE)."""
    logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids,
                   **attention_inputs(model, batch.segment_ids)).logits
    return F.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE,
                           reduction="none")


def domain_sums(token_losses: torch.Tensor, batch: Batch, num_domains: int) -> torch.Tensor:
    """[2, num_domains]: summed loss and target count per domain."""
    valid = batch.targets.flatten() != IGNORE
    values = torch.stack([token_losses[valid], torch.ones_like(token_losses[valid])])
    return torch.zeros(2, num_domains, device=values.device).index_add_(1, batch.domains.flatten()[valid], values)


def train_step(model, batch: Batch, global_targets: int, world: int, micro: int, accelerator,
               num_domains: int, losses_fn=forward_losses) -> torch.Tensor:
    """Forward and backward over this process's rows in micro-batches; returns its domain sums.

    ``losses_fn`` is :func:`forward_losses` or its compiled form (``pretrain.compile``).
    """
    sums = torch.zeros(2, num_domains, device=accelerator.device)
    starts = list(range(0, len(batch.input_ids), micro))
    for i, start in enumerate(starts):
        mb = batch.rows(start, start + micro)
        last = i == len(starts) - 1
        with contextlib.nullcontext() if last else accelerator.no_sync(model), accelerator.autocast():
            token_losses = losses_fn(model, mb)
            # DDP averages gradients over processes, hence x world: the result is sum / global targets.
            accelerator.backward(token_losses.sum() * world / global_targets)
        sums += domain_sums(token_losses.detach(), mb, num_domains)
    return sums


@torch.no_grad()
def heldout_losses(model, batches: dict[str, list[Batch]], device) -> dict[str, float]:
    """Mean next-token loss per domain on the held-out rows."""
    was_training = model.training
    model.eval()
    losses = {}
    for domain, domain_batches in batches.items():
        total, count = 0.0, 0
        for batch in domain_batches:
            batch = batch.to(device)
            total += forward_losses(model, batch).sum().item()
            count += batch.num_targets
        losses[domain] = total / max(1, count)
    model.train(was_training)
    return losses


# -- logging ---------------------------------------------------------------------------------------

class Logger:
    """The main process's step log (``train_log.jsonl``), tracker and progress bar."""

    def __init__(self, cfg, stage_dir: Path, start: int, enabled: bool):
        self.enabled, self.path = enabled, Path(stage_dir) / LOG
        self.tracker = None
        if not enabled:
            return
        # Drop entries of steps the resumed run will redo (written after its checkpoint).
        kept = [line for line in _read_log(self.path) if line["step"] < start]
        atomic_write_text(self.path, "".join(json.dumps(line) + "\n" for line in kept))
        self.file = open(self.path, "a", encoding="utf-8")
        # trackio, mlflow or wandb (workbench.tracking); None when tracking is off
        self.tracker = tracking.start_run(cfg, "pretrain", "pretrain", to_dict(cfg.pretrain))
        self.every = cfg.pretrain.log_interval
        self.bar = tqdm(total=total_steps(cfg.pretrain), initial=start, desc="pretrain", unit="step")

    def step(self, record: dict) -> None:
        """Log one finished step."""
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tracker and record["step"] % self.every == 0:
            self.tracker.log({f"pretrain/{k}": v for k, v in record.items() if k != "step"}, step=record["step"])
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}",
                             tok_s=f"{record['tokens_per_s']:.0f}")

    def metrics(self, step: int, name: str, losses: dict[str, float]) -> None:
        """Log held-out losses per domain."""
        if self.enabled and self.tracker:
            self.tracker.log({f"pretrain/{name}/{d}": v for d, v in losses.items()}, step=step)

    def close(self) -> None:
        """Flush and close everything."""
        if self.enabled:
            self.file.close()
            self.bar.close()
            if self.tracker:
                self.tracker.finish()


def _read_log(path: Path) -> list[dict]:
    """Complete lines of a step log (a line cut by a kill is dropped)."""
    if not path.exists():
        return []
    lines = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            break
    return lines


def read_log(stage_dir: Path) -> list[dict]:
    """The per-step records of a pretraining run (step, loss, lr, seq_len, batch_size, ...)."""
    return _read_log(Path(stage_dir) / LOG)


# -- the run ---------------------------------------------------------------------------------------

def pretrain(cfg, run: RunDir, force: bool = False) -> dict:
    """Pretrain, or resume, the base model into ``runs/<name>/base/`` (call it in every process); its metrics.

    Writes no manifest: the stage wrapper does (:mod:`workbench.pretrain.stage`).
    """
    device = cfg.resolved_device()
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision="bf16" if device == "cuda" else "no")
    main = accelerator.is_main_process
    checkpoints = run.base / "checkpoints"
    if force and main:
        shutil.rmtree(checkpoints, ignore_errors=True)
    if main and cfg.tracking.backend == "trackio":
        tracking.use_run_dir(run.tracking)
    accelerator.wait_for_everyone()
    with deterministic_algorithms(cfg.pretrain.deterministic):
        metrics = train(cfg, run, accelerator)
    accelerator.wait_for_everyone()
    return metrics


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool):
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` inside the block, the previous mode after.

    Dynamo guards on the mode and inductor keys its cache on it: under it, inductor lowers an
    accumulating ``index_put`` (the embedding's backward) to ATen's serial kernel instead of
    ``atomic_add`` across threads, whose order, and so whose float sum, changes run to run.
    """
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def train(cfg, run: RunDir, accelerator: Accelerator) -> dict:
    """The loop; returns the stage's metrics. Saves the averaged base model into ``run.base``."""
    pc, seed = cfg.pretrain, run_seed(cfg)
    main, world, rank = accelerator.is_main_process, accelerator.num_processes, accelerator.process_index
    checkpoints = run.base / "checkpoints"
    t0 = time.time()

    # 1) data, model, optimizer
    tokenizer = load_tokenizer(run.tokenizer)
    annealing = pc.anneal_steps > 0 and pc.anneal_upsample > 0
    corpora = load_corpora(run.data, tokenizer, need_anneal=annealing)
    domains = corpora["train"].domain_names
    streams = [TokenStream(corpora["train"], seed)] + ([TokenStream(corpora["anneal"], seed + 1)] if annealing else [])
    eval_seq_len = max(stage[1] for stage in pc.ramp)
    heldout = {d: eval_batches(c, eval_seq_len, pc.eval_tokens, batch_size=8)
               for d, c in corpora["heldout"].by_domain().items()}
    model = create_model(cfg.model.size, tokenizer, seed=seed, rope_theta=cfg.model.rope_theta,
                         tie_word_embeddings=cfg.model.tie_word_embeddings)
    if pc.init_from:  # continued pretraining: same architecture, the given model's weights
        model.load_state_dict(load_causal_lm(pc.init_from)[0].state_dict())
    optimizer = make_optimizer(model, pc)

    # 2) resume from the newest checkpoint, if any
    start, metrics = 0, {}
    latest = ckpt.latest_checkpoint(checkpoints)
    if latest is not None:
        state = ckpt.load_checkpoint(latest)
        if state["fingerprint"] != fingerprint(cfg):
            raise ValueError(f"{latest}: written under other pretrain/model settings; "
                             "restore them or run again with --force to start over")
        model.load_state_dict(state["model"])
        ckpt.set_rng_states(state["rng"])
        for stream, cursor in zip(streams, state["cursors"]):
            stream.cursor = cursor
        start, metrics = state["step"], state["metrics"]
        metrics["resumed_from_step"] = start
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)  # under FSDP2 the sharded model itself (its forward gathers)
    if latest is not None:  # after prepare: under FSDP the optimizer's state is sharded like the parameters
        ckpt.load_full_states(unwrapped, optimizer=optimizer, optimizer_state=state["optimizer"])
    # The model and its loss compiled together (the cross-entropy fuses too), after the DDP wrap as
    # accelerate's dynamo plugin would; not through the plugin, whose process-wide state keeps the
    # first Accelerator's choice for every later one in the process (tests, benchmarks).
    # dynamic=False: one static graph per ramp shape rather than a slower shape-generic one.
    losses_fn = torch.compile(forward_losses, dynamic=False) if pc.compile else forward_losses
    model.train()

    # 3) the loop: one optimizer step per iteration
    total = total_steps(pc)
    snapshot_steps = set(anneal_snapshot_steps(pc))
    logger = Logger(cfg, run.base, start, enabled=main)
    if start == 0:
        log_heldout(metrics, "heldout_loss_init", heldout_losses(unwrapped, heldout, accelerator.device), logger, 0)
    for step in range(start, total):
        t_step = time.time()
        seq_len, batch_size = ramp(pc, step)
        lr = learning_rate(pc, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        mix = [1.0 - pc.anneal_upsample, pc.anneal_upsample] if annealing and is_annealing(pc, step) else [1.0, 0.0]
        batch = next_batch(streams, mix[:len(streams)], batch_size, seq_len, np.random.default_rng([seed, step]))
        per_process = batch_size // world
        local = batch.rows(rank * per_process, (rank + 1) * per_process).to(accelerator.device)
        sums = train_step(model, local, batch.num_targets, world, pc.micro_batch_size or per_process,
                          accelerator, len(domains), losses_fn)
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), pc.grad_clip) if pc.grad_clip > 0 else None
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        # 4) logging: losses summed over processes
        sums = accelerator.reduce(sums, "sum").cpu()
        record = {"step": step, "loss": (sums[0].sum() / sums[1].sum()).item(), "lr": lr,
                  "seq_len": seq_len, "batch_size": batch_size, "tokens": batch_size * seq_len,
                  "phase": "anneal" if is_annealing(pc, step) else "main",
                  "tokens_per_s": batch_size * seq_len / (time.time() - t_step),
                  **({"grad_norm": float(grad_norm)} if grad_norm is not None else {}),
                  **{f"loss/{d}": (sums[0, i] / sums[1, i]).item() for i, d in enumerate(domains) if sums[1, i] > 0}}
        logger.step(record)

        # 5) evaluation, annealing snapshots, checkpoints (after the step: `done` steps finished)
        done = step + 1
        if pc.eval_interval and done % pc.eval_interval == 0 and done < total:
            logger.metrics(done, "heldout_loss", heldout_losses(unwrapped, heldout, accelerator.device))
        if done == pc.max_steps:
            log_heldout(metrics, "heldout_loss_before_anneal",
                        heldout_losses(unwrapped, heldout, accelerator.device), logger, done)
        # (the full states are gathered on every process: under FSDP that is a collective)
        if step in snapshot_steps:
            weights, _ = ckpt.full_states(model)
            if main:
                ckpt.save_snapshot(checkpoints, step, weights)
        if done % pc.checkpoint_interval == 0 and done < total:
            weights, optimizer_state = ckpt.full_states(model, optimizer)
            if main:
                ckpt.save_checkpoint(checkpoints, done, {
                    "step": done, "model": weights, "optimizer": optimizer_state,
                    "rng": ckpt.rng_states(), "cursors": [s.cursor for s in streams], "metrics": metrics,
                    "fingerprint": fingerprint(cfg)})
    logger.close()

    # 6) average the annealing snapshots into the base; evaluate and save it
    accelerator.wait_for_everyone()
    if snapshot_steps:
        log_heldout(metrics, "heldout_loss_last_step", heldout_losses(unwrapped, heldout, accelerator.device))
        paths = [checkpoints / "anneal" / f"step-{s:06d}.pt" for s in sorted(snapshot_steps)]
        ckpt.load_full_states(unwrapped, ckpt.average_snapshots(paths))
    log_heldout(metrics, "heldout_loss_after_anneal", heldout_losses(unwrapped, heldout, accelerator.device))
    accelerator.wait_for_everyone()  # every process has read the snapshots before the main one removes them
    plain = savable(accelerator, model)  # under FSDP: the gathered weights (a collective)
    if main:
        log = read_log(run.base)
        metrics.update(
            final_train_loss=float(np.mean([r["loss"] for r in log[-10:]])),
            tokens=int(sum(r["tokens"] for r in log)),
            steps=total, parameters=count_parameters(plain), processes=world,
            tokens_per_s=float(np.median([r["tokens_per_s"] for r in log])),
            wall_time_s=round(time.time() - t0, 1),
            averaged_snapshots=sorted(snapshot_steps))
        save_model(plain, tokenizer, run.base)
        atomic_write_json(run.base / REPORT, report(metrics, domains))
        if not pc.keep_checkpoints:
            shutil.rmtree(checkpoints, ignore_errors=True)
    return metrics


def log_heldout(metrics: dict, name: str, losses: dict[str, float], logger: Logger | None = None,
                step: int = 0) -> None:
    """Record held-out losses per domain (and their unweighted mean) under ``name``."""
    metrics.update({f"{name}/{d}": v for d, v in losses.items()})
    metrics[f"{name}/mean"] = float(np.mean(list(losses.values())))
    if logger is not None:
        logger.metrics(step, name, losses)


def report(metrics: dict, domains: tuple[str, ...]) -> dict:
    """The small JSON report: held-out loss per domain at each point, and the run's totals."""
    points = ("heldout_loss_init", "heldout_loss_before_anneal", "heldout_loss_last_step", "heldout_loss_after_anneal")
    table = {d: {p.removeprefix("heldout_loss_"): metrics.get(f"{p}/{d}") for p in points} for d in domains}
    totals = {k: v for k, v in metrics.items() if "/" not in k}
    return {"heldout_loss": {d: row for d, row in table.items() if any(v is not None for v in row.values())},
            **totals}
