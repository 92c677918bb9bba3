"""Config of the annotation app and store (`workbench annotate`)."""

from dataclasses import dataclass
from typing import Literal

from workbench.config_base import field


@dataclass
class AnnotationConfig:
    """Who answers preference items, and how the store hands them out."""

    mode: Literal["simulated", "human", "mixed"] = field("simulated", "who annotates the round's items")
    overlap: int = field(1, "annotations needed per item")
