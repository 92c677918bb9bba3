"""Supervised fine-tuning with TRL's SFTTrainer, cross-entropy on the assistant's tokens only.

Rows are conversations ``{"messages": [{"role": ..., "content": ...}, ...]}`` (the rejection-sampled
best responses plus curated data). The loss covers each assistant message's content and its end of
turn (``<|eot_id|>``, ``<|im_end|>\n``, ...: the model learns to stop), never the system/user turns
or the headers. The workbench's chat template marks those with ``{% generation %}``, so TRL's
``assistant_only_loss`` finds them; for a template without the markers the rows are tokenized here
with the assistant mask of :attr:`workbench.chat.ChatFormat.assistant_masking` (rendered prefixes, or
TRL's training template), which TRL turns into labels. Llama 3 starts
SFT from the pretrained base; ``init_dir`` may be any causal LM folder. With ``packing`` the
conversations of a batch share rows, each attending only to itself
(:mod:`workbench.posttrain.sft_packing`): the same steps and losses without the padding.
"""

from __future__ import annotations

from pathlib import Path

from workbench.chat import ROLES, chat_format
from workbench.jsonl import message_problems, shown


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
    found = message_problems(messages, "messages")
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
    from workbench.posttrain import sft_packing
    from workbench.posttrain.common import final_metrics, resume_checkpoint, save_final, work_dir

    rows = ([check_row(r, f"row {i}") for i, r in enumerate(data)] if data and isinstance(data[0], dict)
            else read_rows(data))
    if not rows:
        raise ValueError("sft: no training rows")
    trainer = build_trainer(sft_cfg, rows, init_dir, out_dir, seed=seed, tracking=tracking)
    with sft_packing.document_masking(trainer.model):
        output = trainer.train(resume_from_checkpoint=resume_checkpoint(work_dir(out_dir)))
    save_final(trainer, trainer.processing_class, out_dir)
    return {**final_metrics(trainer, output), "rows": len(rows), "assistant_spans": trainer.assistant_spans,
            "pad_choice": chat_format(trainer.processing_class).pad_choice}


def build_trainer(sft_cfg, rows: list[dict], init_dir: str | Path, out_dir: str | Path, *, seed: int,
                  tracking: dict | None = None):
    """TRL's SFTTrainer on checked rows, each batch packed if ``sft_cfg.packing`` (train in ``document_masking``)."""
    from datasets import Dataset
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    from workbench.masking import is_varlen
    from workbench.posttrain import sft_packing
    from workbench.posttrain.common import load_policy, trl_kwargs
    from workbench.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(init_dir)
    method, _ = chat_format(tokenizer).assistant_masking  # a template with no way to find them fails here
    markers = method == "generation markers"
    dataset = Dataset.from_list(rows if markers else tokenize_rows(tokenizer, rows))
    model = load_policy(init_dir)
    # Varlen kernels isolate TRL's own padding-free rows; every other implementation gets document masks.
    varlen = is_varlen(model)
    kwargs = {**trl_kwargs(sft_cfg, Path(out_dir), seed, tracking), "packing": False,
              "padding_free": sft_cfg.packing and varlen}
    collator = sft_packing.PackingCollator(tokenizer.pad_token_id) if sft_cfg.packing and not varlen else None
    trainer = SFTTrainer(model=model, args=TRLSFTConfig(**kwargs, assistant_only_loss=markers),
                         train_dataset=dataset, processing_class=tokenizer, data_collator=collator,
                         peft_config=sft_cfg.lora.peft_config())
    trainer.assistant_spans = method
    return trainer


def tokenize_rows(tokenizer, rows: list[dict]) -> list[dict]:
    """``{input_ids, assistant_masks}`` of each conversation (TRL builds the labels from the mask)."""
    fmt = chat_format(tokenizer)
    out = []
    for i, row in enumerate(rows):
        ids, mask = fmt.assistant_mask(row["messages"], where=f"sft row {i}")
        out.append({"input_ids": ids, "assistant_masks": mask})
    return out
