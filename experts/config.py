"""Config of the capability experts (`workbench experts`)."""

from dataclasses import dataclass
from typing import Literal

from workbench.config_base import ConfigError, field

DOMAINS = ("code", "multilingual", "math")


@dataclass
class ExpertsConfig:
    """Capability experts for code, multilingual and math (Llama 3, section 4.3).

    An expert is the run's base continued-pretrained for ``cpt_steps`` on a domain-heavy mix of the
    run's corpus (``domain_share`` of its tokens from the domain, the rest in the run's proportions),
    then SFT-ed on ``sft_examples`` task-world demonstrations of its domain that pass the domain's
    checks. In rounds, ``sampler`` says whether a family's rejection samples come from its expert.
    """

    enabled: list[str] = field([], "experts trained and used in rounds (code, multilingual, math)")
    domain_share: dict[str, float] = field(
        {"code": 0.85, "multilingual": 0.9, "math": 0.7},
        "target share of characters from the expert's domain in its continued-pretraining mix")
    cpt_steps: int = field(100, "continued-pretraining steps from the base (cosine phase)")
    cpt_warmup_steps: int = field(10, "warm-up steps of the continued pretraining")
    cpt_learning_rate: float = field(1e-3, "peak learning rate of the continued pretraining")
    cpt_anneal_steps: int = field(10, "final annealing steps (linear to 0) on the domain's best documents")
    sft_examples: int = field(400, "task-world demonstrations of the domain generated for the expert's SFT "
                                   "(those failing the checks are dropped)")
    unit_tests: int = field(8, "random unit-test lists generated per code problem, on top of the edge cases")
    max_corrections: int = field(2, "code: feedback rounds a failing sample gets to correct itself")
    sampler: dict[str, Literal["expert", "policy"]] = field(
        {"code": "expert", "multilingual": "expert", "math": "expert"},
        "who generates a family's rejection samples in rounds when its expert is enabled")

    def validate(self) -> None:
        """Check domain names and ranges."""
        for name, keys in (("enabled", self.enabled), ("domain_share", self.domain_share),
                           ("sampler", self.sampler)):
            unknown = sorted(set(keys) - set(DOMAINS))
            if unknown:
                raise ConfigError(f"{name}: unknown domains {unknown}; expected some of {list(DOMAINS)}")
        missing = sorted(set(self.enabled) - set(self.domain_share))
        if missing:
            raise ConfigError(f"domain_share: no share for the enabled experts {missing}")
        if any(not 0.0 < s < 1.0 for s in self.domain_share.values()):
            raise ConfigError(f"domain_share: shares must be in (0, 1), got {self.domain_share}")
        if self.cpt_steps < 1 or self.cpt_warmup_steps > self.cpt_steps or self.cpt_anneal_steps < 0:
            raise ConfigError("cpt_steps, cpt_warmup_steps, cpt_anneal_steps: need cpt_steps >= 1, "
                              "warm-up <= cpt_steps and anneal >= 0")
        if self.cpt_learning_rate <= 0:
            raise ConfigError("cpt_learning_rate: must be > 0")
        if self.sft_examples < 1 or self.unit_tests < 0 or self.max_corrections < 0:
            raise ConfigError("sft_examples >= 1, unit_tests >= 0, max_corrections >= 0")
