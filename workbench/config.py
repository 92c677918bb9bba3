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
    path: str | None = field(None, "use this HF tokenizer instead of training one (any tokenizer with a chat template)")

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
    path: str | None = field(None, "start from this HF causal LM instead of pretraining one (Llama, Qwen2/3, Mistral, Gemma, Phi-3: any architecture with a sequence-classification class for the reward model)")

    def validate(self) -> None:
        """Check the size name."""
        from workbench.modeling import SIZES

        if self.size not in SIZES:
            raise ConfigError(f"size: {self.size!r} is not one of {sorted(SIZES)}")


@dataclass
class TrackingConfig:
    """Experiment tracking: TRL's ``report_to`` and the workbench's stage metrics, stored in the run folder."""

    backend: Literal["trackio", "mlflow", "wandb", "none"] = field(
        "trackio", "trackio: offline SQLite database in runs/<name>/tracking/; mlflow: a local MLflow SQLite store "
                   "runs/<name>/tracking/mlflow.db (mlflow-skinny is installed); wandb: needs `pip install wandb` "
                   "(set WANDB_MODE=offline to log without an account); none disables tracking")
    project: str | None = field(None, "tracker project name (MLflow experiment, wandb project; default: the run's name)")
    mlflow_tracking_uri: str | None = field(
        None, "MLflow: a tracking server or store URI instead of the run folder's (e.g. http://host:5000)")

    def validate(self) -> None:
        """Refuse wandb when it is not installed (before any work starts)."""
        if self.backend == "wandb":
            from workbench.tracking import require_wandb

            require_wandb(section="")


SUITES = ("task_world", "harness", "reward")


@dataclass
class EvalConfig:
    """`workbench eval` and the rounds' policy evaluation: which suites run, and how.

    task_world: accuracy on fresh task-world instances per family; harness: EleutherAI's
    lm-evaluation-harness tasks; reward: a prompt set answered greedily and scored by a reward model
    (mean reward, and win rate against a baseline model).
    """

    suites: list[Literal["task_world", "harness", "reward"]] = field(
        ["task_world"], "evaluations to run, any of task_world, harness, reward")
    n_per_family: int = field(100, "task_world: distinct held-out items per family (multilingual holds out 176)")
    seed: int = field(20261123, "seed of the fresh instances and of generation (differs from every training seed)")
    max_new_tokens: int = field(160, "most tokens generated per answer (task_world and reward)")
    batch_size: int = field(32, "prompts generated together")
    harness_tasks: list[str] = field([], "harness: lm-evaluation-harness task names (built-in or from harness_include_path)")
    harness_include_path: str | None = field(None, "harness: a folder of task YAMLs (local tasks, e.g. over a JSONL)")
    harness_limit: int | None = field(None, "harness: documents per task (null: all)")
    harness_num_fewshot: int | None = field(None, "harness: few-shot examples (null: each task's default)")
    harness_chat_template: bool = field(False, "harness: render requests with the model's chat template")
    harness_batch_size: int = field(8, "harness: requests per forward pass")
    prompts: str | None = field(None, "reward: the prompt set (JSONL, parquet or datasets folder; any prompt format)")
    reward_model: str | None = field(
        "round", "reward: a reward-model folder, or 'round' for the round's own reward model (in the rounds; "
                 "`workbench eval` then needs --reward)")
    baseline: str | None = field(
        "previous", "reward: the model to compare with: a model folder, 'previous' for the previous round's "
                    "policy (the bootstrap policy in round 1), or null for no win rate")
    tie_margin: float = field(0.0, "reward: reward differences at most this count as ties (equal answers always tie)")

    def validate(self) -> None:
        """Check ranges and that each chosen suite has what it needs."""
        if self.n_per_family < 1 or self.max_new_tokens < 1 or self.batch_size < 1 or self.harness_batch_size < 1:
            raise ConfigError("n_per_family, max_new_tokens, batch_size, harness_batch_size: must be at least 1")
        if not self.suites:
            raise ConfigError(f"suites: empty; choose any of {list(SUITES)}")
        if len(set(self.suites)) != len(self.suites):
            raise ConfigError(f"suites: {self.suites} names a suite twice")
        if "harness" in self.suites and not self.harness_tasks:
            raise ConfigError("harness_tasks: empty, but suites includes harness; name lm-evaluation-harness tasks")
        if "reward" in self.suites and not self.prompts:
            raise ConfigError("prompts: null, but suites includes reward; give the prompt set's path")
        if self.harness_limit is not None and self.harness_limit < 1:
            raise ConfigError("harness_limit: must be at least 1 (or null for every document)")
        if self.tie_margin < 0:
            raise ConfigError("tie_margin: must be at least 0")


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
