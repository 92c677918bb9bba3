"""EleutherAI's lm-evaluation-harness on a model folder, through its Python API (written for lm-eval 0.4.13).

Tasks are named as on the harness's command line (``hellaswag``, ``arc_easy``, or a local task's
``task:`` name); ``include_path`` adds a folder of task YAMLs, so a task over a local JSONL
(``dataset_path: json`` with ``dataset_kwargs.data_files``) runs offline::

    result = run_harness("runs/demo/rounds/round_01/policy", ["my_task"], include_path="tasks/")
    result["results"]["my_task"]["acc,none"]

The model is loaded by the harness's ``HFLM`` (transformers) from the folder, with its own tokenizer.
"""

from __future__ import annotations

import time
from pathlib import Path

from workbench.config_base import ConfigError


def task_manager(include_path: str | Path | list | None = None):
    """The harness's ``TaskManager`` with the built-in tasks and those under ``include_path``."""
    from lm_eval.tasks import TaskManager

    paths = [include_path] if isinstance(include_path, (str, Path)) else list(include_path or [])
    for path in paths:
        if not Path(path).is_dir():
            raise FileNotFoundError(f"eval.harness_include_path {path}: not a folder of task YAML files")
    return TaskManager(include_path=[str(p) for p in paths] or None)


def check_tasks(manager, tasks: list[str]) -> None:
    """Refuse task names the harness does not know, naming them all at once."""
    if not tasks:
        raise ConfigError("eval.harness_tasks: empty; name at least one lm-evaluation-harness task")
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"eval.harness_tasks: unknown lm-evaluation-harness task(s) {unknown}; "
                          "list them with `lm-eval ls tasks`, or add their folder as eval.harness_include_path")


def run_harness(model_dir: str | Path, tasks: list[str], *, include_path: str | Path | list | None = None,
                limit: int | None = None, num_fewshot: int | None = None, batch_size: int = 8,
                device: str = "cpu", apply_chat_template: bool = False, seed: int = 0,
                log_samples: bool = False) -> dict:
    """Run the harness's ``simple_evaluate`` on ``model_dir``; its per-task metrics (JSON-able).

    The result has ``results`` (``{task: {"acc,none": ..., "acc_stderr,none": ...}}``), ``n_samples``,
    ``versions``, ``config`` and, with ``log_samples``, ``samples`` (every document, its arguments,
    the model's responses and its metrics, as the harness records them).
    """
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a model folder (no config.json)")
    manager = task_manager(include_path)
    check_tasks(manager, tasks)
    start = time.monotonic()
    lm = HFLM(pretrained=str(model_dir), device=device, dtype="float32" if device == "cpu" else "auto",
              batch_size=batch_size)
    out = lm_eval.simple_evaluate(
        model=lm, tasks=list(tasks), task_manager=manager, limit=limit, num_fewshot=num_fewshot,
        log_samples=log_samples, apply_chat_template=apply_chat_template, bootstrap_iters=0,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
    result = {"model": str(model_dir), "tasks": list(tasks), "results": _jsonable(out["results"]),
              "n_samples": _jsonable(out.get("n-samples", {})), "versions": _jsonable(out.get("versions", {})),
              "config": {"limit": limit, "num_fewshot": num_fewshot, "apply_chat_template": apply_chat_template,
                         "include_path": [str(p) for p in ([include_path] if isinstance(include_path, (str, Path))
                                                           else include_path or [])]},
              "lm_eval_version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else _version(),
              "seconds": round(time.monotonic() - start, 2)}
    if log_samples:
        result["samples"] = _jsonable(out.get("samples", {}))
    return result


def headline(result: dict) -> dict[str, float]:
    """One number per task and metric, named ``harness/<task>/<metric>`` (stderr and filters' ``,none`` dropped)."""
    flat = {}
    for task, metrics in result["results"].items():
        for key, value in metrics.items():
            name, _, filt = key.partition(",")
            if "stderr" in name or name == "sample_len" or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            flat[f"harness/{task}/{name}" + (f"/{filt}" if filt and filt != "none" else "")] = float(value)
    return flat


def format_table(result: dict) -> str:
    """The harness's metrics as a plain table: task, metric, value."""
    rows = [f"{'task/metric':<48} value"]
    rows += [f"{name.removeprefix('harness/'):<48} {value:.4f}" for name, value in headline(result).items()]
    return "\n".join(rows)


def _version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


def _jsonable(value):
    """Numbers, strings, lists and dicts only (numpy scalars and tuples converted, the rest shown as text)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)
