"""Config of the annotation app and store (`workbench annotate`)."""

from dataclasses import dataclass
from typing import Literal

from workbench.config_base import ConfigError, field


@dataclass
class AnnotationConfig:
    """Who answers preference items, and how the store hands them out.

    The store is one SQLite file, by default ``runs/<name>/annotations.sqlite``; every round's items
    live in it, told apart by their ``round``.
    """

    mode: Literal["simulated", "human", "mixed"] = field("simulated", "who annotates the round's items")
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
