"""The modified DPO: data filter, loss against the formula, formatting-token masking, empty rows, 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from workbench.chat import formatting_token_ids
from workbench.posttrain.config import DPOConfig
from workbench.posttrain.dpo import build_trainer, preference_pairs
from workbench.preferences import Preference

HERE = Path(__file__).resolve().parent
BETA, NLL_COEF = 0.1, 0.2


def pref(i: int, level: str = "better", edited: str | None = None, chosen: str | None = None) -> Preference:
    return Preference(id=f"p{i}", prompt=[{"role": "user", "content": f"What is {i} + 3?"}],
                      chosen=chosen or f"{i} + 3 = {i + 3}\nAnswer: {i + 3}", rejected=f"Answer: {i + 4}",
                      level=level, edited=edited)


def test_only_strong_levels_are_kept_and_an_edit_gives_two_pairs():
    prefs = [pref(0, "significantly_better"), pref(1, "better", edited="Answer: 4"),
             pref(2, "slightly_better"), pref(3, "marginally_better", edited="Answer: 6")]
    rows, counts = preference_pairs(prefs)
    pairs = [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows]
    assert pairs == [(prefs[0].chosen, prefs[0].rejected), ("Answer: 4", prefs[1].chosen),
                     ("Answer: 4", prefs[1].rejected)]
    assert counts == {"preferences": 4, "preferences_used": 2, "pairs_used": 3}
    assert all(r["prompt"] == p.prompt for r, p in zip(rows, [prefs[0], prefs[1], prefs[1]]))


def test_an_edit_equal_to_chosen_counts_as_no_edit():
    rows, _ = preference_pairs([pref(0, edited=pref(0).chosen + "\n")])
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [
        (pref(0).chosen, pref(0).rejected)]


def _models(model_dir):
    from transformers import AutoModelForCausalLM

    policy = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    torch.manual_seed(1)
    with torch.no_grad():  # a reference that differs from the policy, so every term of the loss is non-trivial
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return policy, ref


def _trainer(tmp_path, tokenizer, policy, ref, rows, **cfg):
    config = DPOConfig(per_device_train_batch_size=len(rows), max_length=256, beta=BETA, nll_coef=NLL_COEF, **cfg)
    return build_trainer(config, rows, policy, tokenizer, tmp_path / "out", seed=0, ref_model=ref)


def _batch(trainer):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])


def _response_logps(model, tokenizer, prompt, response, skip_ids):
    """Sum and count of log p(token) over the response's tokens that are not in skip_ids, from raw logits."""
    prompt_ids = list(tokenizer.apply_chat_template(prompt, add_generation_prompt=True)["input_ids"])
    full = list(tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": response}])["input_ids"])
    assert full[: len(prompt_ids)] == prompt_ids
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    positions = [t for t in range(len(prompt_ids), len(full)) if full[t] not in skip_ids]
    return sum(logprobs[t - 1, full[t]] for t in positions), len(positions)


def _formula_loss(policy, ref, tokenizer, rows, skip_ids):
    losses = []
    for row in rows:
        prompt = row["prompt"]
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        pi_c, n_c = _response_logps(policy, tokenizer, prompt, chosen, skip_ids)
        pi_r, _ = _response_logps(policy, tokenizer, prompt, rejected, skip_ids)
        ref_c, _ = _response_logps(ref, tokenizer, prompt, chosen, skip_ids)
        ref_r, _ = _response_logps(ref, tokenizer, prompt, rejected, skip_ids)
        dpo = -F.logsigmoid(BETA * ((pi_c - ref_c) - (pi_r - ref_r)))
        losses.append(dpo + NLL_COEF * (-pi_c / n_c))
    return torch.stack(losses).mean()


@pytest.fixture(scope="module")
def rows():
    prefs = [pref(0, edited="0 + 3 = 3\nAnswer: 3"), pref(7, "significantly_better"), pref(12)]
    return preference_pairs(prefs)[0]


@pytest.mark.slow
def test_loss_equals_the_formula_on_raw_logits(tmp_path, tiny_tokenizer, tiny_model_dir, rows):
    policy, ref = _models(tiny_model_dir)
    trainer = _trainer(tmp_path, tiny_tokenizer, policy, ref, rows)
    loss = trainer.compute_loss(trainer.model, _batch(trainer))
    expected = _formula_loss(policy, ref, tiny_tokenizer, rows, set(formatting_token_ids(tiny_tokenizer)))
    assert abs(loss.item() - expected.item()) < 1e-5
    assert trainer.skipped_rows == {"train": 0}


@pytest.mark.slow
def test_the_log_probability_of_formatting_tokens_does_not_change_the_loss(tmp_path, tiny_tokenizer,
                                                                           tiny_model_dir, rows):
    policy, ref = _models(tiny_model_dir)
    formatting = torch.tensor(formatting_token_ids(tiny_tokenizer))
    seen = {}

    def remember_ids(module, args, kwargs):
        seen["ids"] = kwargs["input_ids"]

    def shift_formatting_predictions(module, args, hidden):
        # The final norm's output at position t only feeds the prediction of token t+1: perturbing it where
        # t+1 is a formatting token changes that token's log-probability and nothing else.
        nxt = torch.zeros_like(seen["ids"], dtype=torch.bool)
        nxt[:, :-1] = torch.isin(seen["ids"][:, 1:], formatting)
        return hidden + 3.0 * nxt.unsqueeze(-1) * torch.randn_like(hidden)

    def loss_with_and_without_perturbation(mask):
        trainer = _trainer(tmp_path, tiny_tokenizer, policy, ref, rows, mask_formatting_tokens=mask)
        batch = _batch(trainer)
        before = trainer.compute_loss(trainer.model, batch).item()
        hooks = [policy.register_forward_pre_hook(remember_ids, with_kwargs=True),
                 policy.model.norm.register_forward_hook(shift_formatting_predictions)]
        try:
            after = trainer.compute_loss(trainer.model, batch).item()
        finally:
            for hook in hooks:
                hook.remove()
        return before, after

    before, after = loss_with_and_without_perturbation(mask=True)
    assert abs(before - after) < 1e-6
    before, after = loss_with_and_without_perturbation(mask=False)
    assert abs(before - after) > 1e-3  # the perturbation is real: without masking it moves the loss


@pytest.mark.slow
def test_a_pair_empty_after_masking_is_skipped_and_counted(tmp_path, tiny_tokenizer, tiny_model_dir, rows):
    policy, ref = _models(tiny_model_dir)
    empty = preference_pairs([pref(5, chosen="<|eot_id|>")])[0]
    trainer = _trainer(tmp_path, tiny_tokenizer, policy, ref, rows + empty)
    assert trainer.skipped_rows == {"train": 1}
    assert len(trainer.train_dataset) == len(rows)
    assert torch.isfinite(trainer.compute_loss(trainer.model, _batch(trainer)))


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    from workbench.preferences import write_jsonl

    prefs = tmp_path / "prefs.jsonl"
    write_jsonl([pref(i, "significantly_better" if i % 2 else "better") for i in range(8)], prefs)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    script = str(HERE / "dpo_distributed_run.py")
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    runs = {
        1: [sys.executable, script],
        # `--cpu --num_processes 2` starts ONE process on a machine without MPI (accelerate's simple
        # launcher); `--multi_gpu` starts two through torchrun, and use_cpu makes them DDP over gloo.
        2: [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", script],
    }
    metrics, weights = {}, {}
    for n, cmd in runs.items():
        out = tmp_path / f"dpo_{n}"
        done = subprocess.run([*cmd, str(tiny_model_dir), str(prefs), str(out), str(4 // n)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        metrics[n] = json.loads((out / "metrics.json").read_text())
        weights[n] = load_file(str(out / "model.safetensors"))
    assert (metrics[1]["num_processes"], metrics[2]["num_processes"]) == (1, 2)
    assert metrics[1]["global_step"] == metrics[2]["global_step"] == 2
    for key in ("loss", "rewards/margins", "rewards/accuracies", "nll"):
        assert abs(metrics[1][key] - metrics[2][key]) < 1e-4, key
    assert max((weights[1][k] - weights[2][k]).abs().max().item() for k in weights[1]) < 1e-4
