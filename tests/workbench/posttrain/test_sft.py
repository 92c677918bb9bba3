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


# -- packing: several conversations per row, each attending only to itself ------------------------

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# ChatML (not Llama 3): no BOS, turns end in <|im_end|> and a newline that is not the assistant's.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{%- else %}{{- message['content'] + '<|im_end|>' }}{%- endif %}"
    "{{- '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
PACKED_ROWS = ROWS + [
    {"messages": [{"role": "user", "content": "What is 97 - 45?"}, {"role": "assistant", "content": "Answer: 52"},
                  {"role": "user", "content": "And 52 + 1?"}, {"role": "assistant", "content": "Answer: 53"}]},
    {"messages": [{"role": "user", "content": "Reverse the order of these words: red green blue"},
                  {"role": "assistant", "content": "Answer: blue green red"}]},
    {"messages": [{"role": "system", "content": "Answer in French."},
                  {"role": "user", "content": "Translate: white"}, {"role": "assistant", "content": "blanc"}]},
]


@pytest.fixture(scope="module")
def chatml_model_dir(tmp_path_factory):
    """A tiny model whose tokenizer speaks ChatML, with wide weights so that attention matters."""
    from workbench.modeling import create_model, save_model
    from workbench.tokenizer import train_tokenizer

    texts = [m["content"] for row in PACKED_ROWS for m in row["messages"]]
    tokenizer = train_tokenizer(texts * 20, vocab_size=400)
    tokenizer.add_tokens([IM_START, IM_END], special_tokens=True)
    tokenizer.chat_template = CHATML_TEMPLATE
    model = create_model("tiny", tokenizer, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    return save_model(model, tokenizer, tmp_path_factory.mktemp("chatml_model"))


def _chatml_assistant_ce(model_dir, rows):
    """Mean cross-entropy over every assistant turn's content + <|im_end|>, each conversation run alone."""
    from transformers import AutoModelForCausalLM

    from workbench.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    total, count = 0.0, 0
    for row in rows:
        messages = row["messages"]
        full = tokenizer.apply_chat_template(messages)["input_ids"]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([full])).logits[0], dim=-1)
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = len(tokenizer.apply_chat_template(messages[:i], add_generation_prompt=True)["input_ids"])
            stop = full.index(tokenizer.convert_tokens_to_ids(IM_END), start) + 1
            total -= sum(logprobs[t - 1, full[t]].item() for t in range(start, stop))
            count += stop - start
    return total / count


def test_rows_take_the_width_that_computes_the_fewest_positions():
    from workbench.posttrain.sft_packing import fewest_positions

    assert fewest_positions([5, 5, 5, 5, 10]) == ([[4], [0, 1], [2, 3]], 10)  # full rows at the longest
    rows, width = fewest_positions([9, 6, 6, 6, 10])  # 10 wide: 50 positions; 20: 40; 40: 40 but wider
    assert (len(rows), width) == (2, 20) and sorted(i for row in rows for i in row) == [0, 1, 2, 3, 4]


def test_packed_rows_train_exactly_the_assistant_turns_of_each_conversation(tmp_path, chatml_model_dir):
    from workbench.posttrain.sft import build_trainer

    cfg = SFTConfig(per_device_train_batch_size=len(PACKED_ROWS), max_length=96, packing=True)
    trainer = build_trainer(cfg, PACKED_ROWS, chatml_model_dir, tmp_path / "sft", seed=0)
    tokenizer = trainer.processing_class
    batch = next(iter(trainer.get_train_dataloader()))
    longest = max(len(tokenizer.apply_chat_template(row["messages"])["input_ids"]) for row in PACKED_ROWS)
    rows, width = batch["input_ids"].shape
    assert width % longest == 0 and rows < len(PACKED_ROWS)  # conversations share rows
    assert rows * width <= len(PACKED_ROWS) * longest  # fewer positions than the padded batch
    assert set(batch) == {"input_ids", "labels", "attention_mask", "position_ids", "segment_ids"}
    trained = []
    for ids, labels, positions, segments in zip(*(batch[k] for k in ("input_ids", "labels", "position_ids",
                                                                     "segment_ids"))):
        for s in range(int(segments.max()) + 1):
            span = segments == s
            assert positions[span].equal(torch.arange(int(span.sum())))  # each conversation starts at 0
            trained.append(tokenizer.decode(ids[span][labels[span] != -100]))
    expected = ["".join(m["content"] + IM_END for m in row["messages"] if m["role"] == "assistant")
                for row in PACKED_ROWS]
    assert sorted(trained) == sorted(expected)
    assert (batch["attention_mask"] == (batch["segment_ids"] >= 0)).all()


@pytest.mark.slow
def test_a_packed_step_has_the_loss_of_each_conversation_run_alone(tmp_path, chatml_model_dir):
    losses = {}
    for packing in (False, True):
        cfg = SFTConfig(per_device_train_batch_size=len(PACKED_ROWS), num_train_epochs=1, max_length=96,
                        packing=packing, trl_args={"disable_tqdm": True})
        metrics = train_sft(cfg, PACKED_ROWS, chatml_model_dir, tmp_path / f"sft-{packing}", seed=0)
        assert metrics["global_step"] == 1
        losses[packing] = metrics["loss"]
    alone = _chatml_assistant_ce(chatml_model_dir, PACKED_ROWS)
    assert abs(losses[False] - alone) < 1e-5
    assert abs(losses[True] - alone) < 1e-5
