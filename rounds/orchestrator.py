"""The round orchestrator: it only sequences stages; each stage is a recipe in ``rounds/stages/``.

Before the rounds: data, tokenizer, base (pretrained, or a user's model adopted), bootstrap, and
the enabled capability experts. Then the six stages of each round. Every stage runs through
:func:`workbench.stage.run_stage`, which writes its manifest (``running`` -> ``done``/``failed``/
``waiting``); models are written with an atomic rename, so a killed run restarted with the same
command skips the stages that are done, redoes the interrupted one from its own checkpoints, and
never mixes outputs.
"""

from __future__ import annotations

from rounds.stages import ROUND_STAGES, base, bootstrap, data, experts, pretrain, tokenizer
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
        """Data, tokenizer, base model (pretrained, or the user's adopted) and the bootstrap policy; then experts."""
        own_model = self.cfg.model.path is not None
        if own_model and not self.run.is_done("base"):
            from workbench.modeling import check_causal_lm

            check_causal_lm(self.cfg.model.path, tokenizer_dir=self.cfg.tokenizer.path)  # before any stage runs
        for stage in (tokenizer, base) if own_model else (data, tokenizer, pretrain):
            run_stage(stage.STAGE, self.cfg, self.run, log=log)
        run_stage(bootstrap.STAGE, self.cfg, self.run, log=log)
        self._experts()

    def _experts(self) -> None:
        """Train the enabled capability experts before the rounds (each skipped when done)."""
        for domain in self.cfg.experts.enabled:
            log(f"experts: {domain}")
            experts.train_expert(self.cfg, self.run, domain)

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
