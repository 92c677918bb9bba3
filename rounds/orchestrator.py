"""The round orchestrator: the pipeline before round 1, the six stages of a round, resume after a crash.

Every stage runs inside ``RunDir.stage`` (manifest ``running`` -> ``done``/``failed``/``waiting``) and
writes its models with an atomic rename, so a killed run restarted with the same command skips the
stages that are done, redoes the interrupted one from its own checkpoints, and never mixes outputs.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from rounds import data as round_data
from workbench import tracking
from workbench.jsonl import write_jsonl
from workbench.rundir import STAGES, RunDir, StageWaiting, atomic_dir, atomic_write_json, read_manifest
from workbench.seeds import derive_seed

MODEL_STAGES = ("reward", "sft", "dpo")


def log(message: str) -> None:
    """One progress line on stderr, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Orchestrator:
    """Runs one run folder's pipeline: data, tokenizer, base, bootstrap, rounds, report."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.run = RunDir(cfg.run_path)
        self.run.root.mkdir(parents=True, exist_ok=True)
        tracking.use_run_dir(self.run.tracking)
        self.run.write_config(cfg)

    # -- paths -------------------------------------------------------------------------------------

    def policy_before(self, n: int) -> Path:
        """The newest policy when round ``n`` starts: round n-1's policy, else the bootstrap."""
        return self.run.round_stage(n - 1, "policy") if n > 1 else self.run.bootstrap

    def second_model(self, n: int) -> Path:
        """The other model whose responses are compared with the newest policy's in round ``n``."""
        if n > 2:
            return self.run.round_stage(n - 2, "policy")
        return self.run.bootstrap if n == 2 else self.run.base

    def model_dir(self, n: int, stage: str) -> Path:
        """The model a round's reward, sft or dpo stage wrote."""
        return self.run.round_stage(n, stage) / "model"

    # -- the pipeline ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Data, tokenizer, base model and the bootstrap policy (each skipped when done)."""
        from workbench.data.build import build_data
        from workbench.pretrain.cli import run_pretrain
        from workbench.stages import train_run_tokenizer

        if self.cfg.model.path is None:
            log("data: building the pretraining corpus")
            build_data(self.cfg, self.run, force=False)
        log("tokenizer")
        train_run_tokenizer(self.cfg, self.run)
        if self.cfg.model.path is None:
            log("pretrain: the base model")
            run_pretrain(self.cfg, self.run, force=False)
        else:
            self._adopt_base(Path(self.cfg.model.path))
        self._bootstrap()

    def _adopt_base(self, path: Path) -> None:
        """Use a user's own HF causal LM as ``base/``."""
        if self.run.is_done("base"):
            return
        with self.run.stage("base", config=self.cfg.model, inputs={"model": path}) as st:
            shutil.copytree(path, st.path, dirs_exist_ok=True)
            st.output("model", st.path)

    def _bootstrap(self) -> None:
        """SFT of the base on curated demonstrations: the first chat policy; base and it are evaluated."""
        if self.run.is_done("bootstrap"):
            return
        from workbench.posttrain.sft import train_sft

        log("bootstrap: SFT on curated demonstrations")
        with self.run.stage("bootstrap", config=self.cfg.bootstrap, inputs={"base": self.run.base}) as st:
            rows = round_data.curated_examples(self.cfg)
            write_jsonl(rows, st.path / "curated.jsonl")
            work = self.run.root / ".bootstrap-model"
            metrics = train_sft(self.cfg.sft, rows, self.run.base, work, seed=derive_seed(self.cfg.seed, "bootstrap"),
                                tracking=tracking.trainer_kwargs(self.cfg, "bootstrap"))
            for item in work.iterdir():
                target = st.path / item.name
                if target.is_dir():
                    shutil.rmtree(target)
                item.replace(target)
            shutil.rmtree(work, ignore_errors=True)
            st.metrics.update({f"sft_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
            base_eval = self.evaluate(self.run.base, st.path / "base_eval.json")
            boot_eval = self.evaluate(st.path, st.path / "eval.json")
            st.metrics.update({"base_accuracy_mean": base_eval["mean"], "accuracy_mean": boot_eval["mean"]})
            st.output("model", st.path)
        tracking.log_stage(self.cfg, "bootstrap", read_manifest(st.path)["metrics"])

    def run_rounds(self, num_rounds: int | None = None) -> bool:
        """Rounds 1..num_rounds; False when a round stopped to wait for annotations."""
        for n in range(1, (num_rounds or self.cfg.rounds.num_rounds) + 1):
            if not self.run_round(n):
                return False
        return True

    def run_round(self, n: int) -> bool:
        """The six stages of round ``n`` in order; False when it stopped to wait for annotations."""
        if n > 1 and not self.run.is_done(self.run.round_stage(n - 1, "policy").relative_to(self.run.root)):
            raise ValueError(f"round {n} needs round {n - 1}'s policy; run `workbench round run {n - 1}` first")
        for stage in STAGES:
            rel = self.run.round_stage(n, stage).relative_to(self.run.root)
            if self.run.is_done(rel):
                continue
            log(f"round {n}: {stage}")
            if stage == "samples":
                self._samples(n)
                tracking.log_stage(self.cfg, stage, read_manifest(self.run.round_stage(n, stage))["metrics"], round=n)
                continue
            try:
                with self.run.stage(rel, config=self._stage_config(stage), inputs=self._inputs(n, stage)) as st:
                    getattr(self, f"_{stage}")(n, st)
            except StageWaiting as waiting:
                log(f"round {n}: {stage} is waiting: {waiting}")
                return False
            tracking.log_stage(self.cfg, stage, read_manifest(st.path)["metrics"], round=n)
        return True

    def _stage_config(self, stage: str):
        return {"preferences": self.cfg.annotation, "reward": self.cfg.reward,
                "sft": self.cfg.sft, "dpo": self.cfg.dpo, "policy": self.cfg.eval}[stage]

    def _inputs(self, n: int, stage: str) -> dict:
        run = self.run
        return {
            "preferences": {"policy": self.policy_before(n), "other": self.second_model(n)},
            "reward": {"base": run.base, **{f"preferences_{r:02d}": run.round_stage(r, "preferences") / "preferences.jsonl"
                                              for r in range(1, n + 1)}},
            "sft": {"init": self._sft_init(n), **{f"samples_{r:02d}" + (f"_expert_{expert}" if expert else ""): path
                                                   for r, expert, path in round_data.sampled_sft_files(run, n)}},
            "dpo": {"sft": self.model_dir(n, "sft"), "preferences": run.round_stage(n, "preferences") / "preferences.jsonl"},
            "policy": {"dpo": self.model_dir(n, "dpo"), "sft": self.model_dir(n, "sft")},
        }[stage]

    def _sft_init(self, n: int) -> Path:
        """Where round ``n``'s SFT starts: sft.init_from is base (Llama 3), policy (the newest) or a folder."""
        init = self.cfg.sft.init_from
        return {"base": self.run.base, "policy": self.policy_before(n)}.get(init) or Path(init)

    # -- generation and evaluation -----------------------------------------------------------------

    @contextmanager
    def generator(self, model_dir: Path, backend: str | None = None):
        """A sampling backend on ``model_dir`` (the rounds' generation backend unless named)."""
        from sampling.backends import make_backend

        scfg = dataclasses.replace(self.cfg.sampling, backend=backend or self.cfg.rounds.generation_backend)
        with make_backend(scfg, model_dir) as b:
            yield b

    def evaluate(self, model_dir: Path, out_json: Path) -> dict:
        """Task-world accuracy of ``model_dir`` on fresh canonical instances, written to ``out_json``."""
        from sampling.evaluation import evaluate_model

        result = evaluate_model(model_dir, self.cfg.eval, self.cfg.sampling, self.cfg.rounds.generation_backend)
        atomic_write_json(out_json, result)
        return result

    # -- the six stages ----------------------------------------------------------------------------

    def _preferences(self, n: int, st) -> None:
        """Two models answer the round's prompts; the pairs go to the annotation store and come back ranked."""
        from preference_ui.export import write_export
        from preference_ui.items import read_items
        from preference_ui.store import Store

        items_path = st.path / "items.jsonl"
        if not items_path.exists():
            write_jsonl(self._preference_items(n), items_path)
        store = Store.from_config(self.cfg)
        try:
            items = read_items(items_path)
            store.import_items(items, overlap=self.cfg.annotation.overlap)
            needed = self._annotate(store, n, len(items))
            while (done := store.count_completed(round=n)) < needed and self.cfg.rounds.annotation_wait:
                log(f"round {n}: {done}/{needed} items annotated; waiting for annotators")
                time.sleep(10)
            if done < needed:
                raise StageWaiting(f"{done}/{needed} items of round {n} fully annotated; annotate with "
                                   f"`workbench annotate serve` and run the same command again")
            stats = write_export(store, st.path, round=n)
        finally:
            store.close()
        st.metrics.update({"items": len(items), "preferences": stats.get("annotations", done),
                           **{k: v for k, v in stats.items() if isinstance(v, (int, float))}})
        st.output("preferences", st.path / "preferences.jsonl")

    def _preference_items(self, n: int) -> list[dict]:
        """The round's prompts answered once by the newest policy and once by the other model."""
        prompts = round_data.round_prompts(self.cfg, n, "preferences", self.cfg.rounds.prompts_per_round)
        models = [self.policy_before(n), self.second_model(n)]
        responses = []
        for i, model in enumerate(models):
            with self.generator(model) as backend:
                outs = backend.generate([p["messages"] for p in prompts], n=1,
                                        temperature=self.cfg.rounds.preference_temperature, top_p=1.0,
                                        max_new_tokens=self.cfg.sampling.max_new_tokens,
                                        seed=derive_seed(self.cfg.seed, "preferences", n, i))
            # an empty response cannot be annotated; keep the item with a visible placeholder
            responses.append([o[0].text.strip() or "(empty response)" for o in outs])
        names = [str(m.relative_to(self.run.root)) for m in models]
        return [{"id": p["id"], "prompt": p["messages"], "responses": [a, b], "models": names,
                 "round": n, "meta": {"task": p["task"]}} for p, a, b in zip(prompts, *responses)]

    def _annotate(self, store, n: int, num_items: int) -> int:
        """Let the simulated annotator answer its share; returns how many items must be complete."""
        from preference_ui.simulated import SimulatedAnnotator

        ann = self.cfg.annotation
        human_items = {"simulated": 0, "human": num_items, "mixed": round(ann.human_share * num_items)}[ann.mode]
        human_items = min(num_items, ann.human_quota or human_items) if ann.mode != "simulated" else 0
        sim_items = num_items - (num_items if ann.mode == "human" else human_items)
        if sim_items > 0:
            for k in range(ann.overlap):
                name = ann.simulated_user if k == 0 else f"{ann.simulated_user}-{k + 1}"
                annotator = SimulatedAnnotator(store, name, ann.edit_prob, ann.noise,
                                               derive_seed(self.cfg.seed, "annotator", n, k))
                annotator.run(round=n, limit=sim_items)
        return sim_items + human_items

    def _trained_variants(self, n: int, stage: str, st, train) -> dict:
        """Train ``variants[stage]`` seeds with ``train(seed, out_dir) -> metrics``; several are averaged into model/.

        Each training call writes its model atomically and resumes from its own checkpoints, so an
        interrupted stage redoes only the variant that was cut short.
        """
        count = self.cfg.rounds.variants.get(stage, 1)
        seeds = [derive_seed(self.cfg.seed, stage, n, v) for v in range(count)]
        if count == 1:
            return train(seeds[0], st.path / "model")
        from workbench.posttrain.averaging import average_models

        runs = []
        for v, seed in enumerate(seeds):
            out = st.path / "variants" / f"seed_{v}"
            record = out.with_name(f"seed_{v}.metrics.json")
            if not record.exists():
                atomic_write_json(record, train(seed, out))
            runs.append(json.loads(record.read_text()))
        average_models([st.path / "variants" / f"seed_{v}" for v in range(count)], st.path / "model")
        numeric = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        metrics = {k: sum(r[k] for r in runs) / count for k in numeric if all(k in r for r in runs)}
        return metrics | {"averaged_variants": count}

    def _tracking(self, n: int, stage: str) -> dict:
        return tracking.trainer_kwargs(self.cfg, f"round_{n:02d}/{stage}")

    def _reward(self, n: int, st) -> None:
        """A reward model on the base, trained on every preference collected so far."""
        from reward.train import train_reward_model
        from workbench.preferences import read_jsonl

        prefs = [p for r in range(1, n + 1) for p in read_jsonl(self.run.round_stage(r, "preferences") / "preferences.jsonl")]
        metrics = self._trained_variants(n, "reward", st, lambda seed, out: train_reward_model(
            self.cfg, prefs, self.run.base, out, seed=seed, round_number=n))
        st.metrics.update({k.replace("/", "_"): v for k, v in metrics.items()})
        st.output("model", st.path / "model")

    def _samples(self, n: int) -> None:
        """Rejection sampling: K samples per prompt from the newest policy, the reward model keeps the best.

        The sampling stage writes its own manifest (it resumes shard by shard), so it runs outside
        the orchestrator's stage wrapper.
        """
        from experts.rounds import sample_with_experts
        from sampling.rejection import run_rejection_sampling

        out = self.run.round_stage(n, "samples")
        prompts_path = out / "prompts.jsonl"
        if not prompts_path.exists():
            write_jsonl(
                round_data.round_prompts(self.cfg, n, "samples", self.cfg.rounds.rs_prompts_per_round), prompts_path)
        seed, device = derive_seed(self.cfg.seed, "samples", n), self.cfg.resolved_device()
        # capability experts sample their own families' prompts (experts.enabled); the policy the rest
        policy_prompts = sample_with_experts(self.cfg, self.run, prompts_path, out, self.model_dir(n, "reward"),
                                             seed=seed, device=device)
        run_rejection_sampling(self.cfg.sampling, self.policy_before(n), self.model_dir(n, "reward"),
                               policy_prompts, out, seed=seed, device=device)

    def _sft(self, n: int, st) -> None:
        """SFT of the base on every round's rejection-sampled data plus the curated share."""
        from workbench.posttrain.sft import train_sft

        mix = round_data.sft_mix(self.cfg, self.run, n)
        write_jsonl(mix, st.path / "mix.jsonl")
        metrics = self._trained_variants(n, "sft", st, lambda seed, out: train_sft(
            self.cfg.sft, mix, self._sft_init(n), out, seed=seed, tracking=self._tracking(n, "sft")))
        st.metrics.update(metrics | {"examples": len(mix),
                                     "curated_examples": sum(r["source"] == "curated" for r in mix)})
        if "train_loss" not in st.metrics and "loss" in st.metrics:
            st.metrics["train_loss"] = st.metrics["loss"]
        st.output("model", st.path / "model")

    def _dpo(self, n: int, st) -> None:
        """The modified DPO on the SFT model with the newest (or all) preferences."""
        from workbench.posttrain.dpo import preference_pairs, train_dpo
        from workbench.preferences import read_jsonl

        rounds = [n] if self.cfg.rounds.dpo_preferences == "newest" else range(1, n + 1)
        prefs = [p for r in rounds for p in read_jsonl(self.run.round_stage(r, "preferences") / "preferences.jsonl")]
        pairs, counts = preference_pairs(prefs, self.cfg.dpo.levels)
        if not pairs:
            # Nothing rated strongly enough (early rounds of a tiny model): DPO would have no data,
            # so the SFT model goes on unchanged and the manifest says why.
            log(f"round {n}: dpo: no preference rated {self.cfg.dpo.levels}; the SFT model is kept as is")
            with atomic_dir(st.path / "model") as tmp:
                shutil.copytree(self.model_dir(n, "sft"), tmp, dirs_exist_ok=True)
            st.metrics.update(counts | {"skipped_no_pairs": 1})
            st.output("model", st.path / "model")
            return
        metrics = self._trained_variants(n, "dpo", st, lambda seed, out: train_dpo(
            self.cfg.dpo, prefs, self.model_dir(n, "sft"), out, seed=seed, tracking=self._tracking(n, "dpo")))
        st.metrics.update({k.replace("/", "_"): v for k, v in metrics.items()})
        st.output("model", st.path / "model")

    def _policy(self, n: int, st) -> None:
        """Evaluate SFT and DPO models on fresh instances; the DPO model becomes the round's policy."""
        sft_eval = self.evaluate(self.model_dir(n, "sft"), st.path / "sft_eval.json")
        for item in self.model_dir(n, "dpo").iterdir():
            if item.is_file():
                shutil.copy2(item, st.path / item.name)
        policy_eval = self.evaluate(st.path, st.path / "eval.json")
        st.metrics.update({"accuracy_mean": policy_eval["mean"], "sft_accuracy_mean": sft_eval["mean"],
                           "dpo_minus_sft": policy_eval["mean"] - sft_eval["mean"],
                           **{f"accuracy_{f}": a for f, a in policy_eval["per_family"].items()}})
        st.output("model", st.path)

    # -- all of it -----------------------------------------------------------------------------------

    def demo(self) -> bool:
        """data -> tokenizer -> pretrain -> bootstrap -> rounds -> report; False when waiting for annotations."""
        from rounds.report import write_report

        self.prepare()
        finished = self.run_rounds()
        path = write_report(self.run.root)
        log(f"report: {path}")
        return finished
