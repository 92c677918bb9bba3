"""Config sections of the core's own stages (tokenizer, model, tracking, evaluation).

The full config of a run, which composes these with every package's sections, is the composition
root's: :mod:`rounds.full_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workbench.config_base import ConfigError, field


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
class DistributedConfig:
    """How training stages run: in this process, or in several under `accelerate launch`."""

    strategy: Literal["none", "ddp", "fsdp", "deepspeed"] = field(
        "none", "none: train in the orchestrator's process; ddp, fsdp (FSDP2, full shard) or deepspeed (ZeRO-3): "
                "each training stage runs under `accelerate launch` in child processes")
    num_processes: int = field(1, "processes per machine (one per GPU; gloo processes on the CPU)")
    num_machines: int = field(1, "machines taking part; each runs the same command with its machine_rank")
    machine_rank: int = field(0, "this machine's rank (0 runs the orchestrator; others run `workbench launch follow`)")
    main_process_ip: str = field("127.0.0.1", "address of machine 0, reachable from every machine")
    main_process_port: int = field(29500, "port on machine 0 for the rendezvous of several machines (one machine "
                                          "takes a free port per launch)")
    mixed_precision: Literal["no", "bf16", "fp16"] = field("no", "accelerate's mixed precision (bf16 on recent GPUs)")
    accelerate_config: str | None = field(
        None, "an accelerate config file; default for fsdp and deepspeed: the shipped "
              "configs/accelerate/fsdp2.yaml or deepspeed_zero3.yaml (flags above override its fields)")

    def validate(self) -> None:
        """Check ranges."""
        if self.num_processes < 1 or self.num_machines < 1:
            raise ConfigError("num_processes and num_machines: must be at least 1")
        if not 0 <= self.machine_rank < self.num_machines:
            raise ConfigError(f"machine_rank: must be in 0..{self.num_machines - 1}")
        if self.strategy == "none" and self.num_processes * self.num_machines > 1:
            raise ConfigError("strategy: none trains in one process; choose ddp, fsdp or deepspeed for "
                              f"{self.num_processes * self.num_machines} processes")
