"""Config of the annotation app and store (`workbench annotate`)."""

from dataclasses import dataclass
from typing import Literal

from workbench.config_base import ConfigError, field


@dataclass
class JudgeConfig:
    """The AI judge of ``annotation.mode: judge``: a chat model rates each pair with a rubric prompt.

    How it is asked, how its answer is parsed and how the two orders combine: preference_ui/judge.py.
    """

    model: str | None = field(None, "folder of the judge model (any Hugging Face chat model with a chat template)")
    backend: Literal["vllm", "transformers"] | None = field(
        None, "generation backend of the judge (null: rounds.generation_backend)")
    rubric: str | None = field(None, "rubric prompt file with {prompt}, {response_a} and {response_b} "
                                     "(null: the shipped preference_ui/rubrics/default.md)")
    max_new_tokens: int = field(256, "most tokens of one judge answer")
    temperature: float = field(0.0, "sampling temperature of the first answer (0: greedy)")
    retries: int = field(2, "new answers asked for an unparseable one before the item is skipped")
    retry_temperature: float = field(0.7, "sampling temperature of retries (a greedy retry would repeat the answer)")
    both_orders: bool = field(True, "ask each pair in both orders (A/B and B/A) to control position bias")
    batch_items: int = field(32, "items judged in one generation call")
    user: str = field("judge", "account name of the judge in the annotation store")

    def validate(self) -> None:
        """Check ranges."""
        for name in ("max_new_tokens", "batch_items"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.retries < 0:
            raise ConfigError("retries: must be 0 or more")
        for name in ("temperature", "retry_temperature"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0 (0 is greedy)")


@dataclass
class AnnotationConfig:
    """Who answers preference items, and how the store hands them out.

    The store is one SQLite file, by default ``runs/<name>/annotations.sqlite``; every round's items
    live in it, told apart by their ``round``.
    """

    mode: Literal["simulated", "human", "mixed", "judge"] = field(
        "simulated", "who annotates the round's items (judge: an AI judge model, see annotation.judge)")
    overlap: int = field(1, "annotations needed per item (distinct annotators; >= 2 gives agreement)")
    db: str | None = field(None, "SQLite database (null: runs/<name>/annotations.sqlite)")
    lease_seconds: int = field(900, "how long a claimed item stays reserved for its annotator")
    quota: int = field(0, "most submissions per annotator (0: no limit)")
    max_edit_chars: int = field(20000, "longest accepted edit of a chosen response, in characters")
    human_share: float = field(0.5, "mixed mode: share of each round's items left to people (the simulated annotator answers the rest)")
    human_quota: int = field(0, "human and mixed modes: items people must complete before the round goes on (0: all their items)")
    edit_prob: float = field(0.1, "simulated annotator: chance of editing the chosen response into the reference solution")
    noise: float = field(0.05, "simulated annotator: chance of picking the worse response, as people err")
    simulated_user: str = field("simulated", "account name of the simulated annotator")
    host: str = field("127.0.0.1", "address `workbench annotate serve` listens on (0.0.0.0 for a network)")
    port: int = field(7860, "port `workbench annotate serve` listens on")
    concurrency: int = field(8, "requests the app handles at once (Gradio queue concurrency)")
    guidelines: str | None = field(None, "Markdown file of the annotation guidelines, shown to each account at its "
                                         "first login until it confirms reading them (null: the shipped guidelines)")
    judge: JudgeConfig = field(JudgeConfig(), "judge mode: the judge model, its rubric and how it is asked")

    def validate(self) -> None:
        """Check ranges."""
        if self.overlap < 1:
            raise ConfigError("overlap: must be at least 1")
        if self.lease_seconds < 1:
            raise ConfigError("lease_seconds: must be at least 1")
        if self.quota < 0:
            raise ConfigError("quota: must be 0 (no limit) or positive")
        if self.max_edit_chars < 1:
            raise ConfigError("max_edit_chars: must be positive")
        if self.human_quota < 0:
            raise ConfigError("human_quota: must be 0 (all) or positive")
        for name in ("edit_prob", "noise", "human_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}: must be a probability in [0, 1]")
        if not 0 <= self.port <= 65535:
            raise ConfigError("port: must be in 0..65535")
        if self.concurrency < 1:
            raise ConfigError("concurrency: must be at least 1")
        if self.mode == "judge" and not self.judge.model:
            raise ConfigError("judge.model: judge mode needs the folder of a judge model "
                              "(e.g. --set annotation.judge.model=path/to/model)")
