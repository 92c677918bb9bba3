"""Model averaging (Llama 3 averages RM, SFT and DPO variants): mergekit's linear merge.

mergekit 0.1.5 runs cleanly with the pinned stack: its linear merge gives exactly the weighted mean
of every tensor, keeps tied embeddings tied (no ``lm_head`` is invented), and it copies the
tokenizer, chat template and generation config from the first checkpoint. It knows Llama, Qwen2/3,
Mistral, Gemma and Phi-3 causal LMs by name and infers the layout of other transformers models
(their ``*ForSequenceClassification`` reward models among them: the ``score`` head is averaged too).
The workbench adds what mergekit does not check: the checkpoints must share architecture, tensor
names and shapes, and tokenizer (vocabulary and chat template), and carry every tensor mergekit's
definition of their architecture requires; otherwise the error names the checkpoints and the tensor.
"""

from __future__ import annotations

import json
from pathlib import Path

from workbench.rundir import atomic_dir


class AveragingError(ValueError):
    """The checkpoints cannot be averaged; the message names the ones that differ."""


def tensor_shapes(model_dir: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a checkpoint's safetensors files (headers only)."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise AveragingError(f"{model_dir}: no *.safetensors weights (is it a Hugging Face model folder?)")
    shapes = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            shapes.update({name: tuple(f.get_slice(name).get_shape()) for name in f.keys()})
    return shapes


def _architecture(model_dir: Path) -> list[str]:
    config = model_dir / "config.json"
    if not config.is_file():
        raise AveragingError(f"{model_dir}: no config.json (is it a Hugging Face model folder?)")
    return json.loads(config.read_text(encoding="utf-8")).get("architectures") or []


def check_compatible(model_dirs: list[Path]) -> None:
    """Raise AveragingError unless all checkpoints share architecture, tensor shapes and tokenizer."""
    from workbench.tokenizer import load_tokenizer

    first = model_dirs[0]
    arch, shapes, tok = _architecture(first), tensor_shapes(first), load_tokenizer(first)
    for other in model_dirs[1:]:
        if _architecture(other) != arch:
            raise AveragingError(f"{first} is {arch} but {other} is {_architecture(other)}; "
                                 "only checkpoints of one architecture can be averaged")
        other_shapes = tensor_shapes(other)
        if set(other_shapes) != set(shapes):
            name = sorted(set(other_shapes) ^ set(shapes))[0]
            raise AveragingError(f"{first} and {other} have different tensors (e.g. {name!r} is in only one)")
        for name, shape in shapes.items():
            if other_shapes[name] != shape:
                raise AveragingError(f"{first} and {other} have incompatible shapes: {name} is {list(shape)} "
                                     f"vs {list(other_shapes[name])}")
        other_tok = load_tokenizer(other)
        if other_tok.get_vocab() != tok.get_vocab() or other_tok.chat_template != tok.chat_template:
            raise AveragingError(f"{first} and {other} have different tokenizers (vocabulary or chat template)")


def check_mergekit_layout(model_dir: Path) -> None:
    """Raise AveragingError if mergekit's definition of the architecture needs a tensor the checkpoint lacks.

    mergekit's Phi-3 definition, for one, requires ``lm_head.weight``, which a Phi-3 saved with tied
    embeddings (Phi-4-mini) does not store; mergekit would fail deep inside its planner.
    """
    from mergekit.architecture import arch_info_for_config
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_dir))
    known = arch_info_for_config(config)
    if known is None:
        return  # mergekit infers the layout from the checkpoint itself
    shapes = tensor_shapes(model_dir)
    for weight in known.all_weights(config):
        names = (weight.name, *(weight.aliases or ()), *(weight.tied_names or ()))
        if not weight.optional and not any(name in shapes for name in names):
            tied = " (tie_word_embeddings is true: the checkpoint stores only the input embeddings)" \
                if getattr(config.get_text_config(), "tie_word_embeddings", False) else ""
            raise AveragingError(f"{model_dir}: mergekit's definition of {config.architectures[0]} requires the tensor "
                                 f"{weight.name!r}, which the checkpoint does not have{tied}; mergekit cannot "
                                 "average it: average untied copies (save with tie_word_embeddings=False)")


def average_models(model_dirs: list[str | Path], out_dir: str | Path, weights: list[float] | None = None) -> Path:
    """Write the (weighted) mean of HF checkpoints of one architecture to ``out_dir``, with the first's tokenizer."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    from workbench.tokenizer import load_tokenizer

    dirs = [Path(d) for d in model_dirs]
    if len(dirs) < 2:
        raise AveragingError(f"averaging needs at least two checkpoints, got {[str(d) for d in dirs]}")
    weights = list(weights) if weights is not None else [1.0] * len(dirs)
    if len(weights) != len(dirs) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise AveragingError(f"weights {weights}: expected {len(dirs)} non-negative numbers with a positive sum")
    check_compatible(dirs)
    check_mergekit_layout(dirs[0])
    merged: dict[Path, float] = {}  # mergekit refuses a folder listed twice: add up its weights instead
    for d, w in zip(dirs, weights):
        merged[d.resolve()] = merged.get(d.resolve(), 0.0) + w
    dtype = json.loads((dirs[0] / "config.json").read_text(encoding="utf-8")).get("dtype") or "float32"
    config = MergeConfiguration.model_validate({
        "merge_method": "linear",
        "models": [{"model": str(d), "parameters": {"weight": w}} for d, w in merged.items()],
        "parameters": {"normalize": True},
        "dtype": dtype,
    })
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        try:
            run_merge(config, str(tmp), options=MergeOptions(copy_tokenizer=True, lazy_unpickle=False, quiet=True))
        except Exception as exc:  # noqa: BLE001 - mergekit raises plain RuntimeErrors and KeyErrors
            raise AveragingError(f"mergekit could not average {_architecture(dirs[0])} checkpoints "
                                 f"{[str(d) for d in dirs]}: {type(exc).__name__}: {exc}") from exc
        load_tokenizer(tmp)  # mergekit only logs a failed tokenizer copy; a model without one is useless here
    return out_dir
