"""Bring your own model: configs/byo.yaml runs round 1 end to end on a ChatML model that is not a Llama.

The newcomer of the README: a Qwen2-architecture model with Qwen2.5's ChatML template (built here,
random weights: no hub), the shipped example prompts, preferences and SFT rows, and the AI judge
(the same model; its answers are garbage, so every item is skipped and counted and the reward model
and DPO train on the user's preferences). `workbench rounds run --config configs/byo.yaml` in a
child process, the paths set with --set as a user would edit them. Every stage's manifest must say
which formatting tokens, data formats and judge were used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chat_families import build_tokenizer
from model_families import save_family_model
from workbench.rundir import read_manifest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHATML = {"<|im_start|>", "<|im_end|>"}  # what Qwen2.5's template puts around a turn's content


@pytest.fixture(scope="module")
def byo_run(tmp_path_factory):
    """A finished round 1 of configs/byo.yaml on a tiny Qwen2 ChatML model: (run folder, model folder)."""
    root = tmp_path_factory.mktemp("byo")
    model = save_family_model("qwen2", build_tokenizer("qwen2"), root / "my-chat-model")
    run = root / "run"
    command = [sys.executable, "-m", "rounds.main", "rounds", "run", "--config", str(ROOT / "configs" / "byo.yaml"),
               "--run-dir", str(run), "--set", f"model.path={model}", "--set", f"tokenizer.path={model}",
               "--set", f"annotation.judge.model={model}", "--set", "tracking.backend=none", "--set", "device=cpu",
               "--set", "annotation.judge.max_new_tokens=24", "--set", "sampling.max_new_tokens=32",
               "--set", "eval.max_new_tokens=32"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return run, model


def test_round_one_finishes_on_a_chatml_model_with_the_users_data(byo_run):
    run, model = byo_run
    round_1 = run / "rounds" / "round_01"
    for stage in ("preferences", "reward", "samples", "sft", "dpo", "policy"):
        assert read_manifest(round_1 / stage)["status"] == "done", stage
    policy = json.loads((round_1 / "policy" / "config.json").read_text())
    assert policy["architectures"] == ["Qwen2ForCausalLM"]  # the user's architecture all the way through
    assert read_manifest(run / "base")["architecture"] == "Qwen2ForCausalLM"
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(round_1 / "policy").chat_template
    assert template == AutoTokenizer.from_pretrained(model).chat_template  # the user's own, not Llama 3's


def test_dpo_masked_the_chatml_formatting_tokens_and_says_so(byo_run):
    run, _ = byo_run
    dpo = read_manifest(run / "rounds" / "round_01" / "dpo")
    assert set(dpo["metrics"]["masked_tokens"]) == CHATML
    assert dpo["metrics"]["pairs_used"] >= 1
    assert {f["format"] for f in dpo["data_formats"]} == {"trl_explicit"}


def test_the_judge_and_the_users_data_are_recorded(byo_run):
    run, model = byo_run
    round_1 = run / "rounds" / "round_01"
    prefs = read_manifest(round_1 / "preferences")
    assert prefs["inputs"]["judge"]["path"] == str(model)
    assert prefs["metrics"]["judge_model"] == str(model) and prefs["metrics"]["judge_rubric"] == "default"
    judged = prefs["metrics"]["judge_submitted"] + prefs["metrics"]["judge_skipped"]
    assert judged == prefs["metrics"]["items"] == 8
    assert prefs["prompt_source"] == "user"
    assert [f["format"] for f in prefs["data_formats"]] == ["prompt_text"]
    items = [json.loads(line) for line in (round_1 / "preferences" / "items.jsonl").read_text().splitlines()]
    user_prompts = {json.loads(line)["prompt"] for line in (ROOT / "examples/byo/prompts.jsonl").read_text().splitlines()}
    assert all(item["prompt"][-1]["content"] in user_prompts for item in items)

    reward = read_manifest(round_1 / "reward")
    assert any(k.startswith("user_preference_data") for k in reward["inputs"])
    samples = read_manifest(round_1 / "samples")
    assert samples["prompt_source"] == "user" and samples["metrics"]["verifier_pass_rate"] is None
    rows = [json.loads(line) for line in (round_1 / "samples" / "sft.jsonl").read_text().splitlines()]
    assert all(row["messages"][-1]["role"] == "assistant" for row in rows)


def test_the_policy_is_evaluated_on_the_held_out_prompts_by_the_rounds_reward_model(byo_run):
    run, _ = byo_run
    policy = run / "rounds" / "round_01" / "policy"
    result = json.loads((policy / "eval.json").read_text())
    reward = result["reward"]
    assert reward["prompts"] == len((ROOT / "examples/byo/eval_prompts.jsonl").read_text().splitlines())
    assert reward["wins"] + reward["losses"] + reward["ties"] == reward["prompts"]
    assert reward["baseline"] == str(run / "bootstrap")  # round 1 is compared with the first policy
    metrics = read_manifest(policy)["metrics"]
    assert metrics["reward/mean_reward"] == pytest.approx(reward["mean_reward"])
    assert metrics["reward/win_rate"] == pytest.approx((reward["wins"] + reward["ties"] / 2) / reward["prompts"])


def test_the_report_shows_the_reward_suite_and_no_empty_task_columns(byo_run):
    from rounds.report import write_report

    run, _ = byo_run
    write_report(run)
    table = (run / "report" / "index.md").read_text()
    assert "policy reward (eval prompts)" in table and "win rate vs previous" in table
    assert "policy task acc" not in table  # task_world is not among this config's eval.suites


def test_a_folder_that_is_not_a_model_is_refused_before_any_stage_runs(tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))  # no weights, no tokenizer
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "rounds.main", "rounds", "run", "--config",
                           str(ROOT / "configs" / "byo.yaml"), "--run-dir", str(run), "--set", f"model.path={folder}",
                           "--set", f"tokenizer.path={folder}", "--set", f"annotation.judge.model={folder}",
                           "--set", "tracking.backend=none"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2  # a bad input, as for every command
    assert f"{folder}: no weights (*.safetensors or *.bin)" in proc.stderr
    assert not (run / "base").exists() and not (run / "tokenizer").exists()
