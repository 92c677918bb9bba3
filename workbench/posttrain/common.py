"""What SFT and DPO share: TRL config kwargs, the resumable work folder, and the atomic final save.

A run trains in ``.<out>.partial/`` beside ``out_dir`` (TRL's ``output_dir``, holding its
``checkpoint-*`` folders); running the same command again resumes from the newest checkpoint. Only
a finished run writes ``out_dir``, in one rename, so an interrupted run never leaves half a model there.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

# Defaults the workbench picks where TRL's differ (each can be overridden through trl_args).
TRAINER_DEFAULTS = {"logging_steps": 1, "save_total_limit": 1, "save_strategy": "steps", "save_steps": 200}


def work_dir(out_dir: str | Path) -> Path:
    """The folder a run trains and checkpoints in until it finishes."""
    out_dir = Path(out_dir)
    return out_dir.with_name(f".{out_dir.name}.partial")


def resume_checkpoint(work: Path) -> str | None:
    """The newest ``checkpoint-N`` in ``work`` (an interrupted run), else None."""
    checkpoints = sorted(work.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(checkpoints[-1]) if checkpoints else None


def trl_kwargs(section, out_dir: Path, seed: int, tracking: dict | None) -> dict[str, Any]:
    """Keyword arguments of the section's TRL config class for one run."""
    return {
        **TRAINER_DEFAULTS,
        "bf16": torch.cuda.is_available(),  # TRL defaults to bf16, which is slow or missing on the CPU
        # Without CUDA, use_cpu makes a multi-process launch (torchrun, `accelerate launch --multi_gpu`)
        # train with DDP over gloo; without it each process would train alone on all the data.
        "use_cpu": not torch.cuda.is_available(),
        **section.trl_config_kwargs(),
        **(tracking or {"report_to": "none"}),
        "output_dir": str(work_dir(out_dir)),
        "seed": seed,
        "data_seed": seed,
    }


def load_policy(path: str | Path):
    """A causal LM for training: float32 on the CPU (bfloat16 on CUDA, where it is fast)."""
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)


def save_final(trainer, tokenizer, out_dir: str | Path) -> Path:
    """Merge LoRA adapters if any, save model + tokenizer + generation config atomically, drop the work folder."""
    from workbench.launch import savable
    from workbench.modeling import save_model
    from workbench.rundir import atomic_dir

    out_dir = Path(out_dir)
    trainer.accelerator.wait_for_everyone()
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):  # on every process: under FSDP the merge works on the shards
        model = model.merge_and_unload()
    model = savable(trainer.accelerator, model)  # under FSDP: gathered (a collective)
    if trainer.accelerator.is_main_process:
        with atomic_dir(out_dir) as tmp:
            save_model(model, tokenizer, tmp)
        shutil.rmtree(work_dir(out_dir), ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return out_dir


def final_metrics(trainer, train_output) -> dict[str, float]:
    """The last logged training step's metrics plus the run's averages (train_loss, runtime)."""
    steps = [entry for entry in trainer.state.log_history if "loss" in entry]
    last = {k: v for k, v in (steps[-1] if steps else {}).items() if isinstance(v, (int, float))}
    return {**last, **{k: v for k, v in train_output.metrics.items() if isinstance(v, (int, float))},
            "global_step": trainer.state.global_step, "num_processes": trainer.accelerator.num_processes}
