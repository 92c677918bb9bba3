"""Config of the capability experts (`workbench experts`)."""

from dataclasses import dataclass

from workbench.config_base import field


@dataclass
class ExpertsConfig:
    """Capability experts for code, multilingual and math."""

    enabled: list[str] = field([], "experts trained and used in rounds (code, multilingual, math)")
