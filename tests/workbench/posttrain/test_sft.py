"""SFT: the loss is cross-entropy on the assistant's tokens only; the saved model is complete; resume."""

from __future__ import annotations

import pytest
import torch

from workbench import chat
from workbench.posttrain.config import SFTConfig
from workbench.posttrain.sft import check_row, train_sft

ROWS = [
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 12 + 30?"},
                  {"role": "assistant", "content": "Answer: 42"}]},
    {"messages": [{"role": "user", "content": "Translate into French: cat"},
                  {"role": "assistant", "content": "Answer: chat"}]},
]


def _assistant_only_ce(model_dir, tokenizer, rows):
    """Mean cross-entropy over the last assistant turn's tokens (content + <|eot_id|>), from raw logits."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    total, count = 0.0, 0
    for row in rows:
        prompt = tokenizer(chat.render(row["messages"][:-1], add_generation_prompt=True))["input_ids"]
        full = tokenizer(chat.render(row["messages"]))["input_ids"]
        assert full[: len(prompt)] == prompt
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([full])).logits[0], dim=-1)
        total -= sum(logprobs[t - 1, full[t]].item() for t in range(len(prompt), len(full)))
        count += len(full) - len(prompt)
    return total / count


def test_rows_must_be_conversations_with_an_assistant_turn():
    with pytest.raises(ValueError, match="row 3: the conversation has no assistant turn"):
        check_row({"messages": [{"role": "user", "content": "hi"}]}, "row 3")
    with pytest.raises(ValueError, match="x.jsonl:2: expected"):
        check_row({"text": "hi"}, "x.jsonl:2")


@pytest.mark.slow
def test_first_step_loss_is_the_assistant_only_cross_entropy_and_the_model_is_saved(tmp_path, tiny_tokenizer,
                                                                                   tiny_model_dir):
    from workbench.tokenizer import load_tokenizer

    cfg = SFTConfig(per_device_train_batch_size=2, num_train_epochs=1, max_length=128,
                    trl_args={"disable_tqdm": True})
    out = tmp_path / "sft"
    metrics = train_sft(cfg, ROWS, tiny_model_dir, out, seed=0)
    assert metrics["global_step"] == 1
    assert abs(metrics["loss"] - _assistant_only_ce(tiny_model_dir, tiny_tokenizer, ROWS)) < 1e-5
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= {
        p.name for p in out.iterdir()}
    assert load_tokenizer(out).chat_template == chat.CHAT_TEMPLATE
    assert not (tmp_path / ".sft.partial").exists()


@pytest.mark.slow
def test_an_interrupted_run_leaves_no_model_and_resumes_from_its_checkpoint(tmp_path, tiny_model_dir,
                                                                            monkeypatch):
    from trl import SFTTrainer

    cfg = SFTConfig(per_device_train_batch_size=1, num_train_epochs=1, max_length=128,
                    trl_args={"disable_tqdm": True, "save_steps": 1})
    out, calls = tmp_path / "sft", []
    step = SFTTrainer.training_step

    def crash_on_second_step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(SFTTrainer, "training_step", crash_on_second_step)
    with pytest.raises(KeyboardInterrupt):
        train_sft(cfg, ROWS, tiny_model_dir, out, seed=0)
    assert not out.exists() and (tmp_path / ".sft.partial" / "checkpoint-1").is_dir()
    resumed = []

    def count(self, *args, **kwargs):
        resumed.append(1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(SFTTrainer, "training_step", count)
    metrics = train_sft(cfg, ROWS, tiny_model_dir, out, seed=0)
    assert metrics["global_step"] == 2 and (out / "model.safetensors").is_file()
    assert len(resumed) == 1  # only the interrupted step ran again
