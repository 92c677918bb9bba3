"""Config of `workbench data build`."""

from dataclasses import dataclass

from workbench.config_base import field


@dataclass
class DataConfig:
    """The generated pretraining corpus and its cleaning pipeline."""

    num_documents: int = field(4000, "clean documents generated before noise is planted")
