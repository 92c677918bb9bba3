"""DPO's empty-pair filter follows TRL's truncation: keep_start (the default) and keep_end through trl_args."""

from __future__ import annotations

import random

import pytest
import torch
from trl.trainer.dpo_trainer import DataCollatorForPreference

from workbench.posttrain.config import DPOConfig
from workbench.posttrain.dpo import build_trainer, kept_completion, preference_pairs
from workbench.preferences import Preference


@pytest.mark.parametrize("mode", ["keep_start", "keep_end"])
def test_kept_completion_is_what_trls_collator_keeps(mode):
    rng = random.Random(mode)
    for _ in range(300):
        prompt = [rng.randrange(100, 200) for _ in range(rng.randint(1, 12))]
        completion = [rng.randrange(200, 300) for _ in range(rng.randint(1, 12))]
        max_length = rng.choice([None, *range(1, 26)])
        collator = DataCollatorForPreference(pad_token_id=0, max_length=max_length, truncation_mode=mode)
        batch = collator([{"prompt_ids": prompt, "chosen_ids": completion, "rejected_ids": completion}])
        ids, mask = batch["input_ids"][0], batch["completion_mask"][0].bool()
        assert kept_completion(prompt, completion, max_length, mode) == ids[mask].tolist()


def test_an_unknown_truncation_mode_is_refused():
    with pytest.raises(ValueError, match="truncation_mode 'middle'"):
        kept_completion([1], [2], 4, "middle")


def pref(pid: str, question: str, chosen: str) -> Preference:
    return Preference(id=pid, prompt=[{"role": "user", "content": question}], chosen=chosen,
                      rejected="Answer: 0", level="better")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["keep_start", "keep_end"])
def test_keep_end_through_trl_args_filters_what_its_truncation_leaves(tmp_path, tiny_tokenizer, tiny_model_dir,
                                                                       mode):
    from transformers import AutoModelForCausalLM

    long_prompt = pref("long-prompt", "What is 2 + 3? " * 40, "2 + 3 = 5\nAnswer: 5")
    masked_tail = pref("masked-tail", "What is 1 + 1?", "2" + "<|eot_id|>" * 60)
    plain = pref("plain", "What is 4 + 4?", "4 + 4 = 8\nAnswer: 8")
    rows = preference_pairs([long_prompt, masked_tail, plain])[0]
    prompt_len = {r["id"]: len(tiny_tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True)
                                ["input_ids"]) for r in rows}
    max_length = 40
    assert prompt_len["long-prompt"] > max_length > prompt_len["masked-tail"] + 5
    cfg = DPOConfig(per_device_train_batch_size=1, max_length=max_length, trl_args={"truncation_mode": mode})
    policy = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    trainer = build_trainer(cfg, rows, policy, tiny_tokenizer, tmp_path / "out", seed=0, ref_model=ref)
    kept = set(trainer.train_dataset["id"])
    if mode == "keep_end":  # the long prompt's pair keeps its answer; the masked tail keeps only <|eot_id|>s
        assert kept == {"long-prompt", "plain"} and trainer.skipped_rows == {"train": 1}
    else:  # TRL drops a prompt that fills max_length; the masked tail keeps its "2"
        assert kept == {"masked-tail", "plain"} and trainer.skipped_rows == {"train": 0}
