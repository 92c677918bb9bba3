"""Rejection sampling (Llama 3): K samples per prompt from the policy, the reward model keeps the best.

The stage runs in two phases so that the policy and the reward model are never in memory together:

1. generate: the prompts are cut into shards of ``shard_size``; each shard's K samples per prompt are
   written to ``generations/shard_NNNNN.jsonl`` (atomically). Then the backend is closed.
2. score: the reward model scores every candidate of a shard in batches, the verifier (if any) marks
   failing samples, the best passing sample per prompt is chosen, and the shard is written to
   ``candidates/shard_NNNNN.parquet`` followed by its record ``shards/shard_NNNNN.json``.
   ``sampling.selection`` switches the parts off for ablations: ``reward`` (no verifier), ``verifier``
   (a seeded random passing sample, no reward model), ``random`` (neither).

A shard counts as finished only once its file (phase 1) or its record (phase 2) exists; every write is
a temp file plus rename. Killing the stage and running it again therefore redoes at most one shard per
phase and never loses or duplicates a prompt. ``plan.json`` pins the prompts and the sampling settings:
resuming with different ones is refused (use ``force``). Stage folder, when done::

    samples/manifest.json               status, inputs, outputs, metrics (workbench.stage.run_stage)
    samples/candidates/*.parquet        every candidate: a `datasets` dataset (see FEATURES)
    samples/shards/shard_NNNNN.json     each shard's record (prompt ids, timings, counts)
    samples/sft.jsonl                   the best response per prompt, as SFT messages

Open the candidates in a notebook with
``datasets.load_dataset("parquet", data_files="samples/candidates/*.parquet", split="train")``.

Samples are reproducible: sample j of prompt P is drawn from a stream seeded by (stage seed, P's id, j)
(:func:`sampling.backends.request_seeds`), so the same seed gives the same candidates and ``sft.jsonl``
whatever the shard size, batch size, number of workers or resumes.

A sample that did not stop (``finish_reason`` length: cut off at ``max_new_tokens``) is never selected,
whatever its score or verdict, and is counted in the metrics (``unfinished_samples``, and per prompt
``prompts_only_unfinished``: prompts left without a selection because every passing sample was cut off).

A system prompt drawn from ``system_prompts`` steers sampling only: the reward model scores, and
``sft.jsonl`` keeps, the response to the prompt as given, so SFT teaches the steered tone unprompted.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sampling.claims import Claims
from sampling.config import SCORED_SELECTIONS, VERIFIED_SELECTIONS
from workbench.config_base import ConfigError, to_dict
from workbench.jsonl import iter_jsonl, iter_jsonl_numbered, message_problems, shown, write_jsonl
from workbench.rundir import RunDir, atomic_write_json, hash_path
from workbench.stage import Result, Stage, run_stage

logger = logging.getLogger(__name__)

Verifier = Callable[[dict, str], "bool | None"]  # (prompt record, response) -> passed; None: not checked


@dataclass(frozen=True)
class VerifierRef:
    """A verifier named by import path: ``target`` ("module:factory") called with ``kwargs`` (JSON) builds it.

    Helper workers rebuild it in their own process, so a verifier from a package ``sampling`` must not
    import (the experts' domain checks) still lets several workers share the stage.
    """

    target: str
    kwargs: dict = field(default_factory=dict)

    def build(self) -> Verifier:
        """Import the factory and call it."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)(**self.kwargs)

CANDIDATES, SHARDS, GENERATIONS, CLAIMS = "candidates", "shards", "generations", "claims"
SFT_FILE, PLAN_FILE = "sft.jsonl", "plan.json"
# Settings that fix which samples a shard holds and which is kept; resuming with other values would mix
# two experiments.
PLANNED = ("k", "temperature", "top_p", "max_new_tokens", "system_prompts", "shard_size", "selection_mode")


def features():
    """The schema of the candidates dataset (one row per sample)."""
    from datasets import Features, List, Value

    return Features({
        "prompt_id": Value("string"),  # the prompt's id from the prompts file (as a string)
        "shard": Value("int32"),
        "sample_index": Value("int32"),  # 0..k-1 within the prompt
        "messages": List({"role": Value("string"), "content": Value("string")}),  # the prompt as given
        "system_prompt": Value("string"),  # the steering system prompt sampled with, or null
        "text": Value("string"),  # the response
        "num_tokens": Value("int32"),  # generated tokens, the stop token included
        "finish_reason": Value("string"),  # stop | length
        "gen_time_s": Value("float64"),  # the shard's generation wall time per prompt (shared by its k samples)
        "score": Value("float64"),  # the reward model's score
        "verified": Value("bool"),  # the verifier's result, null when not checked
        "chosen": Value("bool"),  # the kept sample of its prompt
    })


# -- prompts ---------------------------------------------------------------------------------------

def read_prompts(path: str | Path) -> list[dict]:
    """Prompt records ``{"id", "messages", "task"}`` from JSONL; ids are unique strings; errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prompts file not found")
    records, seen = [], set()
    for lineno, record in iter_jsonl_numbered(path):
        where = f"{path}:{lineno}"
        if not isinstance(record, dict):
            raise ValueError(f'{where}: expected {{"id": ..., "messages": [...], "task": ...}}, got {shown(record)}')
        found = [] if "id" in record else ["missing field 'id'"]
        if "id" in record and (not isinstance(record["id"], str) or not record["id"]):
            found.append(f"field 'id' must be a non-empty string, got {shown(record['id'])}")
        elif record.get("id") in seen:
            found.append(f"duplicate prompt id {record['id']!r}")
        found += message_problems(record.get("messages"), "messages")
        if record.get("task") and not _is_task(record["task"]):
            found.append(f"field 'task' must be null or a task-world task {{{', '.join(TASK_FIELDS)}}}")
        if found:
            raise ValueError(f"{where}: " + "; ".join(found))
        seen.add(record["id"])
        records.append(record)
    if not records:
        raise ValueError(f"{path}: no prompts")
    return records


TASK_FIELDS = ("family", "template", "prompt", "reference", "solution", "meta")


def _is_task(task: object) -> bool:
    """True when ``task`` has the shape of ``Task.to_dict()`` (a family of the task world, string fields)."""
    from workbench.tasks import FAMILIES

    return (isinstance(task, dict) and set(task) <= set(TASK_FIELDS) and task.get("family") in FAMILIES
            and all(isinstance(task.get(k), str) for k in TASK_FIELDS[1:5])
            and isinstance(task.get("meta", {}), dict))


def draw_system_prompt(prompt_id: str, system_prompts: list[str], seed: int) -> str | None:
    """The steering system prompt of one prompt: seeded by (seed, prompt id), so a resume draws the same."""
    if not system_prompts:
        return None
    return random.Random(f"{seed}:{prompt_id}").choice(system_prompts)


def steer(messages: list[dict], system: str | None) -> list[dict]:
    """``messages`` sampled under ``system`` (a prompt with its own system message keeps it)."""
    if system is None or messages[0]["role"] == "system":
        return messages
    return [{"role": "system", "content": system}, *messages]


def task_verifier(record: dict, response: str) -> bool | None:
    """The task world's check when the prompt record carries a task; None (not checked) otherwise."""
    if not record.get("task"):
        return None
    from workbench.tasks import Task, verify

    return bool(verify(Task.from_dict(record["task"]), response).correct)


# -- the two phases, one shard at a time -----------------------------------------------------------

def generate_shard(backend, records: list[dict], cfg, seed: int) -> list[dict]:
    """K samples per prompt record, as rows (prompt id, sample index, text, length, timing).

    Each prompt's samples are seeded by (``seed``, its id), not by its place in the shard.
    """
    systems = [draw_system_prompt(r["id"], cfg.system_prompts, seed) for r in records]
    start = time.perf_counter()
    generations = backend.generate([steer(r["messages"], s) for r, s in zip(records, systems)], n=cfg.k,
                                   temperature=cfg.temperature, top_p=cfg.top_p,
                                   max_new_tokens=cfg.max_new_tokens, seed=seed, keys=[r["id"] for r in records])
    per_prompt = (time.perf_counter() - start) / len(records)
    return [{"prompt_id": r["id"], "sample_index": i, "system_prompt": s, "text": g.text,
             "num_tokens": g.num_tokens, "finish_reason": g.finish_reason, "gen_time_s": per_prompt}
            for r, s, gens in zip(records, systems, generations) for i, g in enumerate(gens)]


def select_best(rows: list[dict], selection: str = "verifier_reward", seed: int = 0) -> None:
    """Mark, per prompt, the kept sample among those that stopped and did not fail the verifier as ``chosen``.

    ``selection`` (``sampling.selection``) verifier_reward or reward: the highest score (the first of
    equal ones); verifier or random: one drawn uniformly, seeded by (``seed``, prompt id), so a rerun
    keeps the same. A sample cut off at ``max_new_tokens`` never wins, whatever its last line: SFT on
    it would teach the policy to stop mid-sentence.
    """
    eligible: dict[str, list[dict]] = {}
    for row in rows:
        row["chosen"] = False
        if row["verified"] is not False and row.get("finish_reason") != "length":
            eligible.setdefault(row["prompt_id"], []).append(row)
    for pid, group in eligible.items():
        if selection in SCORED_SELECTIONS:
            kept = max(group, key=lambda row: row["score"])
        else:
            kept = random.Random(f"{seed}:{pid}:select").choice(sorted(group, key=lambda r: r.get("sample_index", 0)))
        kept["chosen"] = True


def score_shard(rows: list[dict], records: dict[str, dict], scorer, verifier: Verifier | None,
                selection: str = "verifier_reward", seed: int = 0) -> None:
    """Verify, score (with a ``scorer``; else every score is None) and select within one shard's rows, in place.

    A prompt's identical samples are verified once: a small policy repeats itself, and a code check
    runs the sandbox (about 30 ms a sample, most of a shard's time before this cache). Each prompt's
    samples are scored in batches of their own: a batch's padding and shape change a score's last
    bits, so batching across prompts would make scores (and choices) depend on the shard layout.
    """
    verdicts: dict[tuple[str, str], bool | None] = {}
    by_prompt: dict[str, list[dict]] = {}
    for row in rows:
        key = (row["prompt_id"], row["text"])
        if key not in verdicts:
            verdicts[key] = verifier(records[row["prompt_id"]], row["text"]) if verifier else None
        row["verified"] = verdicts[key]
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    for pid, group in by_prompt.items():
        scores = scorer.score([records[pid]["messages"]] * len(group), [row["text"] for row in group]) \
            if scorer is not None else [None] * len(group)
        for row, score in zip(group, scores):
            row["score"] = None if score is None else float(score)
    select_best(rows, selection, seed)


# -- files -----------------------------------------------------------------------------------------

def shard_name(index: int) -> str:
    """``shard_00007``."""
    return f"shard_{index:05d}"


def write_parquet(path: Path, rows: list[dict]) -> None:
    """Rows as a parquet file with the candidates schema, through a temp file and a rename."""
    from datasets import Dataset

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Dataset.from_list(rows, features=features()).to_parquet(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temps(out: Path, older_than: float = 0.0) -> None:
    """Temp files a killed worker left behind (never renamed, so never counted).

    Only those older than ``older_than`` seconds: a live worker may be writing the newer ones.
    """
    now = time.time()
    for folder in (out / GENERATIONS, out / CANDIDATES, out / SHARDS, out / CLAIMS):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            try:
                if now - tmp.stat().st_mtime >= older_than:
                    tmp.unlink()
            except FileNotFoundError:
                pass


def check_plan(out: Path, plan: dict) -> None:
    """Write ``plan.json``, or check that a resumed run uses the same prompts and settings."""
    path = out / PLAN_FILE
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in plan if old.get(k) != plan[k])
        if changed:
            raise ConfigError(
                f"{out}: an earlier, unfinished run used other {', '.join(changed)} "
                f"({', '.join(f'{k}={old.get(k)!r}' for k in changed)}); rerun with the same settings to "
                "resume, or force a fresh start (workbench sample --force)"
            )
    else:
        atomic_write_json(path, plan)


def clear(out: Path) -> None:
    """Remove this stage's earlier outputs (for a forced rerun); nothing else in the folder."""
    for name in (GENERATIONS, CANDIDATES, SHARDS, CLAIMS):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (SFT_FILE, PLAN_FILE, WORKER_SPEC):
        (out / name).unlink(missing_ok=True)


# -- the stage -------------------------------------------------------------------------------------

def run_rejection_sampling(sampling_cfg, policy_dir, reward_dir, prompts_path, out_dir, *, seed: int,
                           verifier: Verifier | None = None, backend=None, scorer=None,
                           device: str = "auto", force: bool = False) -> dict[str, Any]:
    """:func:`rejection_sample` into the stage folder ``out_dir`` as a stage of its own (with its manifest).

    This is ``workbench sample --out DIR``; a stage already ``done`` returns its metrics unless ``force``.
    """
    out = Path(out_dir)
    if force:
        clear(out)
    inputs = {k: Path(v) for k, v in {"policy": policy_dir, "reward": reward_dir, "prompts": prompts_path}.items() if v}
    stage = Stage(out.name, None, lambda ctx: inputs,
                  lambda ctx: rejection_sample(sampling_cfg, policy_dir, reward_dir, prompts_path, out, seed=seed,
                                               verifier=verifier, backend=backend, scorer=scorer, device=device),
                  folder=lambda run, n: out)
    return run_stage(stage, None, RunDir(out.parent), force=force, config=sampling_cfg)


def open_work(cfg, prompts_path, out: Path, seed: int, worker: str | None) -> tuple[list[list[dict]], Claims]:
    """The shards of ``prompts_path`` and this worker's claims on ``out`` (the plan checked, stale temps gone)."""
    records = read_prompts(prompts_path)
    shards = [records[i:i + cfg.shard_size] for i in range(0, len(records), cfg.shard_size)]
    out.mkdir(parents=True, exist_ok=True)
    check_plan(out, {"prompts": hash_path(prompts_path), "seed": seed,
                     **{k: to_dict(getattr(cfg, k)) for k in PLANNED}})
    remove_stale_temps(out, older_than=cfg.lease_seconds)
    return shards, Claims(out / CLAIMS, worker, cfg.lease_seconds)


def work_until_done(cfg, helpers: list, step: Callable[[], None], done: Callable[[], bool],
                    finish_stage: bool) -> bool:
    """Claim and do work (``step``) until ``done()``; stops the local ``helpers`` on the way out.

    The stage's own worker (``finish_stage``) keeps polling while other workers hold the rest, and
    takes over the claims of dead ones after their lease; a helper worker returns False as soon as
    nothing is left for it to claim.
    """
    try:
        while True:
            step()
            if done():
                return True
            if not finish_stage:
                return False
            time.sleep(min(5.0, cfg.lease_seconds / 3))
    finally:
        stop_local_workers(helpers)


def rejection_sample(sampling_cfg, policy_dir, reward_dir, prompts_path, out_dir, *, seed: int,
                     verifier: Verifier | VerifierRef | None = None, backend=None, scorer=None,
                     device: str = "auto", worker: str | None = None, finish_stage: bool = True) -> Result | None:
    """Rejection-sample ``prompts_path`` with the policy and reward model into ``out_dir``; resumes by shard.

    ``sampling.selection`` picks the kept sample (:func:`select_best`). In the modes that verify
    (verifier_reward, verifier), ``verifier`` (prompt record, response) -> bool drops failing samples
    before selection, by default the task world's check of prompts that carry a task; the other modes
    (reward, random) check nothing, even with a ``verifier``. Helper workers start only for the task
    world's verifier or a :class:`VerifierRef` (which they rebuild). The modes that do not score (verifier,
    random) never load a reward model (``reward_dir`` may be None; scores are None). ``backend`` and
    ``scorer`` replace the ones built from ``policy_dir``/``reward_dir`` (and are then not closed here).
    Shards are claimed (:class:`~sampling.claims.Claims`), so other workers can share the folder:
    ``sampling.workers - 1`` local ones are started here, and `workbench sample worker` joins from
    other machines. With ``finish_stage`` this worker waits until every shard is done (taking over
    those of workers that died) and returns the metrics and outputs; a helper worker returns None
    when nothing is left to claim. Writes no manifest (the stage wrapper does).
    """
    cfg, out = sampling_cfg, Path(out_dir)
    mode = cfg.selection_mode
    ref = verifier if isinstance(verifier, VerifierRef) and mode in VERIFIED_SELECTIONS else None
    verifier = ((ref.build() if ref else verifier) or task_verifier) if mode in VERIFIED_SELECTIONS else None
    if mode in SCORED_SELECTIONS and reward_dir is None and scorer is None:
        raise ValueError(f"{out}: sampling.selection {mode} needs a reward model (none given); "
                         "selection verifier or random needs none")
    shards, claims = open_work(cfg, prompts_path, out, seed, worker)
    helpers = start_local_workers(cfg, policy_dir, reward_dir, prompts_path, out, seed, device, verifier=ref) \
        if finish_stage and cfg.workers > 1 and (ref or verifier in (None, task_verifier)) else []

    def step() -> None:
        generate_all(cfg, policy_dir, shards, out, seed=seed, backend=backend, device=device, claims=claims)
        score_all(cfg, reward_dir, shards, out, verifier=verifier, scorer=scorer, device=device, claims=claims,
                  seed=seed)

    records = [out / SHARDS / f"{shard_name(i)}.json" for i in range(len(shards))]
    if not work_until_done(cfg, helpers, step, lambda: all(path.exists() for path in records), finish_stage):
        return None
    return Result(finish(out, len(shards)) | {"selection": mode}, {"candidates": out / CANDIDATES, "sft": out / SFT_FILE},
                  {"data_files": f"{CANDIDATES}/*.parquet"})


def generate_responses(sampling_cfg, model_dir, prompts_path, out_dir, *, seed: int, device: str = "auto",
                       worker: str | None = None, finish_stage: bool = True, backend=None) -> list[dict] | None:
    """Phase 1 alone: ``k`` samples per prompt of ``prompts_path`` into ``out_dir/generations/``, no scoring.

    The preference responses of a round: sharded, claimed and resumed exactly as rejection sampling's
    generation, so ``sampling.workers`` engines (and `workbench sample-worker --out DIR` on other
    machines) share the work. Returns every generated row in prompt order (``prompt_id``,
    ``sample_index``, ``text``, ``finish_reason``, ...); a helper worker returns None.
    """
    cfg, out = sampling_cfg, Path(out_dir)
    shards, claims = open_work(cfg, prompts_path, out, seed, worker)
    files = [out / GENERATIONS / f"{shard_name(i)}.jsonl" for i in range(len(shards))]
    helpers = start_local_workers(cfg, model_dir, None, prompts_path, out, seed, device, generate_only=True) \
        if finish_stage and cfg.workers > 1 else []
    step = lambda: generate_all(cfg, model_dir, shards, out, seed=seed, backend=backend, device=device,  # noqa: E731
                                claims=claims)
    if not work_until_done(cfg, helpers, step, lambda: all(path.exists() for path in files), finish_stage):
        return None
    shutil.rmtree(out / CLAIMS, ignore_errors=True)
    return [row for path in files for row in iter_jsonl(path)]


# -- several workers -------------------------------------------------------------------------------

WORKER_SPEC = "worker.json"


def write_worker_spec(cfg, policy_dir, reward_dir, prompts_path, out: Path, seed: int, device: str,
                      generate_only: bool = False, verifier: VerifierRef | None = None) -> Path:
    """What a helper worker needs to join ``out``: the models (the reward model, if any), the prompts, the seed,
    the settings, whether the folder is generation only (:func:`generate_responses`) and the verifier to
    rebuild (null: the task world's)."""
    return atomic_write_json(out / WORKER_SPEC, {
        "policy": str(Path(policy_dir).resolve()), "reward": str(Path(reward_dir).resolve()) if reward_dir else None,
        "prompts": str(Path(prompts_path).resolve()), "seed": seed, "device": device, "sampling": to_dict(cfg),
        "generate_only": generate_only,
        "verifier": {"target": verifier.target, "kwargs": verifier.kwargs} if verifier else None})


def start_local_workers(cfg, policy_dir, reward_dir, prompts_path, out: Path, seed: int, device: str,
                        generate_only: bool = False, verifier: VerifierRef | None = None) -> list:
    """``workers - 1`` helper processes on this machine (on CUDA each sees its own tensor_parallel_size GPUs)."""
    import subprocess
    import sys

    write_worker_spec(cfg, policy_dir, reward_dir, prompts_path, out, seed, device, generate_only, verifier)
    procs = []
    for w in range(1, cfg.workers):
        env = dict(os.environ)
        if _cuda_count() >= cfg.workers * cfg.tensor_parallel_size:
            tp = cfg.tensor_parallel_size
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in range(w * tp, (w + 1) * tp))
        procs.append(subprocess.Popen([sys.executable, "-m", "sampling.worker", str(out)], env=env))
    return procs


def stop_local_workers(procs: list) -> None:
    """Wait for the helper workers (they exit when nothing is left to claim); kill any still running."""
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except Exception:  # noqa: BLE001 - a stuck helper must not keep the stage from finishing
            proc.kill()
            proc.wait()


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_worker(out_dir: str | Path, worker: str | None = None) -> None:
    """A helper worker on the stage folder ``out_dir`` (from its worker.json): claim shards until none is left."""
    from sampling.config import SamplingConfig
    from workbench.config_base import build

    out = Path(out_dir)
    spec_path = out / WORKER_SPEC
    if not spec_path.is_file():
        raise FileNotFoundError(f"{spec_path}: no worker spec; start the stage first (it writes one when "
                                "sampling.workers > 1), then the workers")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    cfg = build(SamplingConfig, spec["sampling"], f"{spec_path}: sampling")
    if spec["generate_only"]:  # a folder of generate_responses (e.g. a round's preference responses)
        generate_responses(cfg, spec["policy"], spec["prompts"], out, seed=spec["seed"], device=spec["device"],
                           worker=worker, finish_stage=False)
        return
    verifier = VerifierRef(**spec["verifier"]) if spec.get("verifier") else None
    rejection_sample(cfg, spec["policy"], spec["reward"], spec["prompts"], out, seed=spec["seed"],
                     verifier=verifier, device=spec["device"], worker=worker, finish_stage=False)


def generate_all(cfg, policy_dir, shards: list[list[dict]], out: Path, *, seed: int, backend, device: str,
                 claims: Claims) -> None:
    """Phase 1: generate every shard with no generations file yet that this worker can claim.

    The engine starts only once a shard is claimed.
    """
    from sampling.backends import make_backend

    todo = [i for i in range(len(shards))
            if not (out / GENERATIONS / f"{shard_name(i)}.jsonl").exists()
            and not (out / SHARDS / f"{shard_name(i)}.json").exists()]
    owned = backend is None
    try:
        for i in todo:
            key = f"generate-{shard_name(i)}"
            if (out / GENERATIONS / f"{shard_name(i)}.jsonl").exists() or not claims.try_claim(key):
                continue
            with claims.holding(key):
                if backend is None:
                    backend = make_backend(cfg, policy_dir, device=device)
                rows = generate_shard(backend, shards[i], cfg, seed)
                write_jsonl(rows, out / GENERATIONS / f"{shard_name(i)}.jsonl")
            logger.info("generated %s (%d prompts, %d samples)", shard_name(i), len(shards[i]), len(rows))
    finally:
        if owned and backend is not None:
            backend.close()


def score_all(cfg, reward_dir, shards: list[list[dict]], out: Path, *, verifier, scorer, device: str,
              claims: Claims, seed: int) -> None:
    """Phase 2: score, verify and select every generated shard with no record yet that this worker can claim.

    The reward model is loaded only when ``sampling.selection`` scores.
    """
    todo = [i for i in range(len(shards)) if not (out / SHARDS / f"{shard_name(i)}.json").exists()
            and (out / GENERATIONS / f"{shard_name(i)}.jsonl").exists()]
    owned = scorer is None
    (out / CANDIDATES).mkdir(parents=True, exist_ok=True)
    try:
        for i in todo:
            key = f"score-{shard_name(i)}"
            if (out / SHARDS / f"{shard_name(i)}.json").exists() or not claims.try_claim(key):
                continue
            if scorer is None and cfg.selection_mode in SCORED_SELECTIONS:
                from reward.scoring import RewardScorer
                from workbench.modeling import resolve_device

                scorer = RewardScorer(reward_dir, device=resolve_device(device), batch_size=cfg.reward_batch_size)
            with claims.holding(key):
                score_one(cfg, shards[i], i, out, verifier, scorer, claims.worker, seed)
    finally:
        if owned and scorer is not None and hasattr(scorer, "close"):
            scorer.close()


def score_one(cfg, shard: list[dict], i: int, out: Path, verifier, scorer, worker: str, seed: int) -> None:
    """Score, verify and select one generated shard; write its candidates, then its record."""
    rows = list(iter_jsonl(out / GENERATIONS / f"{shard_name(i)}.jsonl"))
    by_id = {r["id"]: r for r in shard}
    start = time.perf_counter()
    score_shard(rows, by_id, scorer, verifier, cfg.selection_mode, seed)
    score_time = time.perf_counter() - start
    for row in rows:
        row.update(shard=i, messages=by_id[row["prompt_id"]]["messages"])
    write_parquet(out / CANDIDATES / f"{shard_name(i)}.parquet", rows)
    checked = [r["verified"] for r in rows if r["verified"] is not None]
    atomic_write_json(out / SHARDS / f"{shard_name(i)}.json", {
        "shard": i, "prompt_ids": list(by_id), "num_candidates": len(rows),
        "num_tokens": sum(r["num_tokens"] for r in rows),
        "gen_time_s": sum(r["gen_time_s"] for r in rows) / cfg.k, "score_time_s": score_time,
        "verifier_checked": len(checked), "verifier_passed": sum(checked), "worker": worker,
    })
    logger.info("scored %s", shard_name(i))


def pick_pass_rates(rows: list[dict]) -> dict[str, float | None]:
    """How often three picks among a prompt's stopped samples pass the verifier, averaged over prompts.

    ``random_pick_pass_rate``: a sample drawn uniformly (the ``random`` selection, in expectation);
    ``distinct_pick_pass_rate``: a distinct text drawn uniformly, each answer once however often it
    was sampled; ``reward_pick_pass_rate``: the reward model's best (the ``reward`` selection). A
    right answer tends to recur among the K samples while wrong ones scatter, so a reward model
    that knows nothing of correctness picks like the distinct draw, below the random one; it helps
    selection only where its pick beats the random draw. Prompts without a checked, stopped sample
    are left out; a rate is None when nothing was checked (no verifier) or scored (no reward model).
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["finish_reason"] != "length" and row["verified"] is not None:
            groups.setdefault(row["prompt_id"], []).append(row)
    if not groups:
        return {"random_pick_pass_rate": None, "distinct_pick_pass_rate": None, "reward_pick_pass_rate": None}
    random_pick, distinct_pick, reward_pick = [], [], []
    for group in groups.values():
        random_pick.append(sum(bool(r["verified"]) for r in group) / len(group))
        distinct = {r["text"]: bool(r["verified"]) for r in group}
        distinct_pick.append(sum(distinct.values()) / len(distinct))
        if all(r["score"] is not None for r in group):
            reward_pick.append(bool(max(group, key=lambda r: r["score"])["verified"]))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {"random_pick_pass_rate": mean(random_pick), "distinct_pick_pass_rate": mean(distinct_pick),
            "reward_pick_pass_rate": mean(reward_pick) if len(reward_pick) == len(groups) else None}


def finish(out: Path, num_shards: int) -> dict[str, Any]:
    """Write ``sft.jsonl`` from the chosen candidates, drop the generations, and return the metrics."""
    import pyarrow.parquet as pq

    columns = ["prompt_id", "messages", "text", "num_tokens", "finish_reason", "score", "verified", "chosen"]
    rows = [row for i in range(num_shards)
            for row in pq.read_table(out / CANDIDATES / f"{shard_name(i)}.parquet", columns=columns).to_pylist()]
    chosen = [r for r in rows if r["chosen"]]
    write_jsonl([{"messages": [*r["messages"], {"role": "assistant", "content": r["text"]}],
                  "prompt_id": r["prompt_id"], "score": r["score"]} for r in chosen], out / SFT_FILE)
    shutil.rmtree(out / GENERATIONS, ignore_errors=True)
    taken_over = len(list((out / CLAIMS).glob("*.stale-*"))) if (out / CLAIMS).is_dir() else 0
    shutil.rmtree(out / CLAIMS, ignore_errors=True)
    records = [json.loads((out / SHARDS / f"{shard_name(i)}.json").read_text()) for i in range(num_shards)]
    gen_time = sum(r["gen_time_s"] for r in records)
    checked = sum(r["verifier_checked"] for r in records)
    prompts = {r["prompt_id"] for r in rows}
    chosen_ids = {r["prompt_id"] for r in chosen}
    cut_off_passing = {r["prompt_id"] for r in rows if r["finish_reason"] == "length" and r["verified"] is not False}
    finished_passing = {r["prompt_id"] for r in rows if r["finish_reason"] != "length" and r["verified"] is not False}
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {
        "num_prompts": len(prompts),
        "claims_taken_over": taken_over,  # pieces of work a worker took over from one that stopped
        "num_candidates": len(rows),
        "num_selected": len(chosen),
        "prompts_without_passing_sample": len(prompts) - len(chosen),
        "mean_score_all": mean([r["score"] for r in rows if r["score"] is not None]),  # None: nothing scored
        "mean_score_selected": mean([r["score"] for r in chosen if r["score"] is not None]),
        "verifier_pass_rate": sum(r["verifier_passed"] for r in records) / checked if checked else None,
        **pick_pass_rates(rows),  # is the reward model's pick better than a random sample's?
        "mean_tokens": mean([r["num_tokens"] for r in rows]),
        "stop_rate": mean([r["finish_reason"] == "stop" for r in rows]),
        "unfinished_samples": sum(r["finish_reason"] == "length" for r in rows),  # dropped before selection
        # prompts left without a selection only because their passing samples were all cut off
        "prompts_only_unfinished": len((cut_off_passing - finished_passing) - chosen_ids),
        "generation_time_s": gen_time,
        "scoring_time_s": sum(r["score_time_s"] for r in records),
        "samples_per_s": len(rows) / gen_time if gen_time else None,
        "tokens_per_s": sum(r["num_tokens"] for r in rows) / gen_time if gen_time else None,
    }
