"""Supervised fine-tuning with TRL's SFTTrainer, cross-entropy on the assistant's tokens only.

Rows are conversations ``{"messages": [{"role": ..., "content": ...}, ...]}`` (the rejection-sampled
best responses plus curated data). The workbench's chat template marks every assistant turn with
``{% generation %}``, so TRL's ``assistant_only_loss`` masks the system/user turns and the headers and
trains on the assistant's content and its ``<|eot_id|>`` (the model learns to stop). Llama 3 starts
SFT from the pretrained base; ``init_dir`` may be any causal LM folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

from workbench.chat import ROLES
from workbench.jsonl import shown

logger = logging.getLogger(__name__)


def read_rows(paths: list[str | Path]) -> list[dict]:
    """Read SFT rows from JSONL files; errors name the file and line."""
    from workbench.jsonl import iter_jsonl_numbered

    return [check_row(row, f"{path}:{lineno}") for path in paths for lineno, row in iter_jsonl_numbered(path)]


def check_row(row: object, where: str) -> dict:
    """``{"messages": [...]}`` of a conversation with an assistant turn; else a ValueError naming every problem."""
    messages = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: expected {{\"messages\": [{{role, content}}, ...]}} with roles in {ROLES}, "
                         f"got {shown(row)}")
    found = [f"messages[{i}] must be {{role, content}} with role in {ROLES} and string content, got {shown(m)}"
             for i, m in enumerate(messages)
             if not (isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str))]
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        found.append("the conversation has no assistant turn to train on")
    if found:
        raise ValueError(f"{where}: " + "; ".join(found))
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in messages]}


def train_sft(sft_cfg, data: list[dict] | list[str | Path], init_dir: str | Path, out_dir: str | Path, *,
              seed: int, tracking: dict | None = None) -> dict:
    """Fine-tune ``init_dir`` on conversations; save model, tokenizer and generation config to ``out_dir``.

    ``data`` is a list of rows or of JSONL paths. ``tracking`` holds `report_to`/`project`/`run_name`
    (``workbench.tracking.trainer_kwargs``); None disables reporting. Returns the metrics, with
    ``loss`` the last logged training loss. An interrupted run resumes from its last checkpoint.
    """
    from datasets import Dataset
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    from workbench.posttrain.common import (final_metrics, load_policy, resume_checkpoint, save_final,
                                            trl_kwargs, work_dir)
    from workbench.tokenizer import load_tokenizer

    rows = ([check_row(r, f"row {i}") for i, r in enumerate(data)] if data and isinstance(data[0], dict)
            else read_rows(data))
    if not rows:
        raise ValueError("sft: no training rows")
    tokenizer = load_tokenizer(init_dir)
    model = load_policy(init_dir)
    if sft_cfg.packing and model.config._attn_implementation != "flash_attention_2":
        logger.warning("sft.packing: packed rows attend across their boundaries with %s attention; "
                       "packing is exact only with flash-attention", model.config._attn_implementation)
    args = TRLSFTConfig(**trl_kwargs(sft_cfg, Path(out_dir), seed, tracking), assistant_only_loss=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, peft_config=sft_cfg.lora.peft_config())
    output = trainer.train(resume_from_checkpoint=resume_checkpoint(work_dir(out_dir)))
    save_final(trainer, tokenizer, out_dir)
    return {**final_metrics(trainer, output), "rows": len(rows)}
