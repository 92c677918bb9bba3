"""The workbench's top-level config: one typed section per stage, loaded from YAML plus overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from experts.config import ExpertsConfig
from preference_ui.config import AnnotationConfig
from reward.config import RewardConfig
from rounds.config import BootstrapConfig, RoundsConfig
from sampling.config import SamplingConfig
from workbench.config_base import ConfigError, apply_overrides, build, field, read_yaml
from workbench.data.config import DataConfig
from workbench.posttrain.config import AveragingConfig, DPOConfig, SFTConfig
from workbench.pretrain.config import PretrainConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "demo.yaml"


@dataclass
class TokenizerConfig:
    """The byte-level BPE tokenizer trained on the corpus (or a user's own)."""

    vocab_size: int = field(2048, "vocabulary size including the special tokens")
    min_frequency: int = field(2, "a merge needs a pair seen at least this often")
    path: str | None = field(None, "use this HF tokenizer instead of training one (needs the Llama 3 special tokens)")

    def validate(self) -> None:
        """Check ranges."""
        if self.vocab_size < 300:
            raise ConfigError("vocab_size: must be at least 300 (256 bytes + special tokens + merges)")


@dataclass
class ModelConfig:
    """Architecture of the base model (transformers' LlamaForCausalLM)."""

    size: str = field("tiny", "named size: tiny (~1M), small (~5M), base (~13M), 125m, 1b, 8b")
    rope_theta: float = field(500000.0, "RoPE base frequency (Llama 3: 500000)")
    tie_word_embeddings: bool = field(True, "share input and output embeddings")
    path: str | None = field(None, "start from this HF causal LM instead of pretraining one")

    def validate(self) -> None:
        """Check the size name."""
        from workbench.modeling import SIZES

        if self.size not in SIZES:
            raise ConfigError(f"size: {self.size!r} is not one of {sorted(SIZES)}")


@dataclass
class TrackingConfig:
    """Experiment tracking (trackio, offline, a SQLite database in the run folder)."""

    backend: Literal["trackio", "none"] = field("trackio", "trackio logs offline; none disables tracking")
    project: str | None = field(None, "tracker project name (default: the run's name)")


@dataclass
class EvalConfig:
    """`workbench eval`: accuracy on fresh task-world instances per family."""

    n_per_family: int = field(100, "fresh instances per family")
    seed: int = field(20261123, "seed of the fresh instances (differs from every training seed)")
    max_new_tokens: int = field(160, "most tokens generated per answer")
    batch_size: int = field(32, "prompts generated together")


@dataclass
class WorkbenchConfig:
    """Everything one run needs; each section configures one stage."""

    name: str = field("demo", "run name; the run folder is runs/<name> unless run_dir is set")
    run_dir: str | None = field(None, "run folder (default: runs/<name>)")
    seed: int = field(0, "global seed; stages derive their own seeds from it")
    device: Literal["auto", "cpu", "cuda"] = field("auto", "auto picks cuda when available")
    tracking: TrackingConfig = field(TrackingConfig(), TrackingConfig.__doc__)
    tokenizer: TokenizerConfig = field(TokenizerConfig(), TokenizerConfig.__doc__)
    model: ModelConfig = field(ModelConfig(), ModelConfig.__doc__)
    data: DataConfig = field(DataConfig(), DataConfig.__doc__)
    pretrain: PretrainConfig = field(PretrainConfig(), PretrainConfig.__doc__)
    bootstrap: BootstrapConfig = field(BootstrapConfig(), BootstrapConfig.__doc__)
    annotation: AnnotationConfig = field(AnnotationConfig(), AnnotationConfig.__doc__)
    reward: RewardConfig = field(RewardConfig(), RewardConfig.__doc__)
    sampling: SamplingConfig = field(SamplingConfig(), SamplingConfig.__doc__)
    sft: SFTConfig = field(SFTConfig(), SFTConfig.__doc__)
    dpo: DPOConfig = field(DPOConfig(), DPOConfig.__doc__)
    averaging: AveragingConfig = field(AveragingConfig(), AveragingConfig.__doc__)
    rounds: RoundsConfig = field(RoundsConfig(), RoundsConfig.__doc__)
    experts: ExpertsConfig = field(ExpertsConfig(), ExpertsConfig.__doc__)
    eval: EvalConfig = field(EvalConfig(), EvalConfig.__doc__)

    @property
    def run_path(self) -> Path:
        """The run folder."""
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.name

    def resolved_device(self) -> str:
        """cuda when asked for or available under auto, else cpu."""
        from workbench.modeling import resolve_device

        return resolve_device(self.device)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> WorkbenchConfig:
    """Load a YAML config (default: configs/demo.yaml) with ``a.b=value`` overrides, validated."""
    path = Path(path) if path else DEFAULT_CONFIG
    data = apply_overrides(read_yaml(path), list(overrides or []))
    return build(WorkbenchConfig, data, f"{path}:")
