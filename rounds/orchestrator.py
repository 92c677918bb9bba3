"""The round orchestrator: it only sequences stages; each stage is a recipe in ``rounds/stages/``.

Before the rounds: data, tokenizer, base (pretrained, or a user's model adopted), bootstrap, and
the enabled capability experts. Then the six stages of each round. Every stage runs through
:func:`workbench.stage.run_stage`, which writes its manifest (``running`` -> ``done``/``failed``/
``waiting``); models are written with an atomic rename, so a killed run restarted with the same
command skips the stages that are done, redoes the interrupted one from its own checkpoints, and
never mixes outputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rounds.stages import ROUND_STAGES, bootstrap
from rounds.stages.common import log
from workbench import tracking
from workbench.rundir import RunDir, StageWaiting
from workbench.stage import run_stage


class Orchestrator:
    """Runs one run folder's pipeline: data, tokenizer, base, bootstrap, rounds, report."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.run = RunDir(cfg.run_path)
        self.run.root.mkdir(parents=True, exist_ok=True)
        tracking.use_run_dir(self.run.tracking)
        self.run.write_config(cfg)

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
        self._experts()

    def _adopt_base(self, path: Path) -> None:
        """Use a user's own HF causal LM as ``base/``."""
        if self.run.is_done("base"):
            return
        with self.run.stage("base", config=self.cfg.model, inputs={"model": path}) as st:
            shutil.copytree(path, st.path, dirs_exist_ok=True)
            st.output("model", st.path)

    def _bootstrap(self) -> None:
        """SFT of the base on curated demonstrations: the first chat policy (rounds/stages/bootstrap.py)."""
        run_stage(bootstrap.STAGE, self.cfg, self.run, log=log)

    def _experts(self) -> None:
        """Train the enabled capability experts before the rounds (each skipped when done)."""
        from experts.train import train_expert

        for domain in self.cfg.experts.enabled:
            log(f"experts: {domain}")
            train_expert(self.cfg, self.run, domain)

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
        for stage in ROUND_STAGES:
            try:
                run_stage(stage, self.cfg, self.run, n, log=log)
            except StageWaiting as waiting:
                log(f"round {n}: {stage.name} is waiting: {waiting}")
                return False
        return True

    # -- all of it -----------------------------------------------------------------------------------

    def demo(self) -> bool:
        """data -> tokenizer -> pretrain -> bootstrap -> rounds -> report; False when waiting for annotations."""
        from rounds.report import write_report

        self.prepare()
        finished = self.run_rounds()
        path = write_report(self.run.root)
        log(f"report: {path}")
        return finished
