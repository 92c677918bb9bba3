"""Config of `workbench sample` (generation backends and rejection sampling)."""

from dataclasses import dataclass
from typing import Literal

from workbench.config_base import field


@dataclass
class SamplingConfig:
    """Generation backend and rejection-sampling settings."""

    backend: Literal["vllm", "transformers"] = field("vllm", "generation backend")
    k: int = field(8, "samples per prompt (Llama 3: 10 to 30)")
    temperature: float = field(1.0, "sampling temperature")
    top_p: float = field(1.0, "nucleus sampling threshold")
    max_new_tokens: int = field(128, "most tokens generated per sample")
