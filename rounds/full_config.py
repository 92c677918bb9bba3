"""The full config of one run: every stage's typed section, loaded from YAML plus overrides.

This is the composition root's (it imports every package's section), so it sits in the top package;
no package below imports it: stages receive the loaded config object.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from experts.config import ExpertsConfig
from preference_ui.config import AnnotationConfig
from reward.config import RewardConfig
from rounds.config import BootstrapConfig, RoundsConfig
from sampling.config import SamplingConfig
from workbench.config import DistributedConfig, EvalConfig, ModelConfig, TokenizerConfig, TrackingConfig
from workbench.config_base import ConfigError, apply_overrides, build, check_run_name, field, read_yaml
from workbench.data.config import DataConfig
from workbench.posttrain.config import AveragingConfig, DPOConfig, SFTConfig
from workbench.pretrain.config import PretrainConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "demo.yaml"


@dataclass
class WorkbenchConfig:
    """Everything one run needs; each section configures one stage."""

    name: str = field("demo", "run name; the run folder is runs/<name> unless run_dir is set")
    run_dir: str | None = field(None, "run folder (default: runs/<name>)")
    seed: int = field(0, "global seed; stages derive their own seeds from it")
    device: Literal["auto", "cpu", "cuda"] = field("auto", "auto picks cuda when available")
    tracking: TrackingConfig = field(TrackingConfig(), TrackingConfig.__doc__)
    distributed: DistributedConfig = field(DistributedConfig(), DistributedConfig.__doc__)
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

    def validate(self) -> None:
        """The run name is one plain folder name; pretraining's global batches split over the processes; user prompts need an annotator that can answer them."""
        check_run_name(self.name)
        processes = self.distributed.num_processes * self.distributed.num_machines
        if self.distributed.strategy != "none" and any(batch % processes for _, _, batch in self.pretrain.ramp):
            raise ConfigError(f"pretrain.ramp: every batch_size must be a multiple of the {processes} processes "
                              "(distributed.num_processes x num_machines)")
        if self.rounds.prompt_source != "task_world" and self.annotation.mode in ("simulated", "mixed"):
            raise ConfigError(f"rounds.prompt_source: {self.rounds.prompt_source} prompts carry no task-world "
                              f"task for the simulated annotator (annotation.mode {self.annotation.mode}) to "
                              "answer by; use annotation.mode judge or human")

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
