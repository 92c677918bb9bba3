"""Config of `workbench sample` (generation backends and rejection sampling)."""

import logging
from dataclasses import dataclass
from typing import Literal

from workbench.config_base import ConfigError, field

SELECTIONS = ("verifier_reward", "reward", "verifier", "random")
VERIFIED_SELECTIONS = ("verifier_reward", "verifier")  # the modes that check samples with the verifier
SCORED_SELECTIONS = ("verifier_reward", "reward")  # the modes that load the reward model


@dataclass
class SamplingConfig:
    """Generation backend and rejection-sampling settings.

    The vLLM fields (tensor_parallel_size, gpu_memory_utilization, max_model_len, kv_cache_space_gib,
    enforce_eager) are passed through to ``vllm.LLM``; the transformers backend ignores them.
    """

    backend: Literal["vllm", "transformers"] = field("vllm", "generation backend")
    k: int = field(8, "samples per prompt (Llama 3: 10 to 30)")
    temperature: float = field(1.0, "sampling temperature")
    top_p: float = field(1.0, "nucleus sampling threshold")
    max_new_tokens: int = field(128, "most tokens generated per sample")
    system_prompts: list[str] = field([], "system prompts steering tone and format; one drawn per prompt (seeded), none when empty")
    selection: Literal[SELECTIONS] = field(
        "verifier_reward", "how the kept sample of a prompt is picked among those that stopped: verifier_reward "
        "(the reward model's best among those the verifier did not fail; Llama 3), reward (the reward model's best, "
        "verifier off), verifier (a seeded random one among those the verifier did not fail; no reward model), "
        "random (a seeded random one, verifier off; no reward model)")
    verify_tasks: bool | None = field(None, "deprecated, use selection: false means selection reward; true is "
                                            "refused with a selection that turns the verifier off")
    shard_size: int = field(64, "prompts per shard; a finished shard is never redone after a crash")
    batch_size: int = field(16, "prompts per transformers.generate call (each expands to k rows)")
    reward_batch_size: int = field(32, "(prompt, response) pairs the reward model scores together")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = field("auto", "weights dtype (auto: float32 on the CPU, bfloat16 on CUDA)")
    tensor_parallel_size: int = field(1, "vLLM: GPUs the policy is split over")
    gpu_memory_utilization: float = field(0.9, "vLLM: fraction of GPU memory for weights and KV cache")
    max_model_len: int | None = field(None, "vLLM: longest prompt + response (null: the model's maximum)")
    kv_cache_space_gib: float | None = field(None, "vLLM on the CPU: KV cache size in GiB (sets VLLM_CPU_KVCACHE_SPACE; null: vLLM's default or the environment)")
    workers: int = field(1, "sampling processes on this machine, each with its own engine (on GPUs each takes "
                             "tensor_parallel_size GPUs); they claim shards from the stage folder, and workers on "
                             "other machines join with `workbench sample worker --out DIR`")
    lease_seconds: float = field(300.0, "a claimed shard whose worker stopped renewing its claim this long ago "
                                        "is taken over by another worker")
    enforce_eager: bool = field(True, "vLLM: no CUDA graphs / torch.compile (faster start-up; set false on GPUs for throughput)")

    @property
    def selection_mode(self) -> str:
        """``selection``, with the deprecated ``verify_tasks: false`` read as ``reward``."""
        return "reward" if self.verify_tasks is False and self.selection == "verifier_reward" else self.selection

    def validate(self) -> None:
        """Check ranges; a deprecated verify_tasks must agree with selection."""
        if self.verify_tasks and self.selection not in VERIFIED_SELECTIONS:
            raise ConfigError(f"verify_tasks: true contradicts selection {self.selection} (the verifier is off); "
                              "drop verify_tasks (deprecated: selection decides)")
        if self.verify_tasks is False and self.selection != "verifier_reward":
            raise ConfigError(f"verify_tasks: false with selection {self.selection}; drop verify_tasks "
                              "(deprecated: selection decides)")
        if self.verify_tasks is False:
            logging.getLogger(__name__).warning("sampling.verify_tasks is deprecated: false is selection reward")
        if self.k < 1:
            raise ConfigError("k: must be at least 1")
        if self.temperature < 0:
            raise ConfigError("temperature: must be >= 0 (0 is greedy)")
        if not 0 < self.top_p <= 1:
            raise ConfigError("top_p: must be in (0, 1]")
        for name in ("max_new_tokens", "shard_size", "batch_size", "reward_batch_size", "tensor_parallel_size", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if self.lease_seconds < 3:
            raise ConfigError("lease_seconds: must be at least 3 (the claim is renewed every third of it)")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("gpu_memory_utilization: must be in (0, 1]")
