"""The reward stage's fixed held-out set: evaluation-side items only, built once, the same pairs every round."""

import json
import shutil

import pytest

from reward.synthetic import heldout_preferences, simulated_preferences
from rounds.full_config import WorkbenchConfig
from rounds.stages import reward as reward_stage
from workbench.config import TrackingConfig
from workbench.config_base import ConfigError
from workbench.preferences import write_jsonl
from workbench.rundir import RunDir, hash_path
from workbench.stage import run_stage
from workbench.tasks.heldout import prompt_keys, side


def sides_of(records):
    """The held-out side of every record's item, read back from its prompt text (one item per prompt)."""
    found = []
    for record in records:
        keys = prompt_keys(record.prompt[-1]["content"])
        assert len(keys) == 1, (record.prompt, keys)
        found.append(side(keys.pop()))
    return found


def test_heldout_preferences_hold_only_evaluation_items_and_training_ones_only_posttrain_items():
    held = heldout_preferences(200, seed=3)
    assert len(held) == 200 and set(sides_of(held)) == {"eval"}
    assert all(r.edited is None for r in held)  # scored pairs are chosen vs rejected only
    assert {r.level for r in held} == {"significantly_better", "better", "slightly_better", "marginally_better"}
    assert set(sides_of(simulated_preferences(200, seed=3))) == {"posttrain"}


def config(tmp_path, **reward):
    cfg = WorkbenchConfig(tracking=TrackingConfig(backend="none"), device="cpu", run_dir=str(tmp_path / "run"))
    cfg.reward.heldout_pairs, cfg.reward.num_train_epochs, cfg.reward.batch_size = 40, 1.0, 8
    for key, value in reward.items():
        setattr(cfg.reward, key, value)
    return cfg


def test_the_set_is_built_once_and_a_changed_size_or_file_is_refused(tmp_path):
    cfg, run = config(tmp_path), RunDir(tmp_path / "run")
    records, info = reward_stage.task_world_heldout(cfg, run)
    path = run.root / "reward_heldout" / "preferences.jsonl"
    text = path.read_text()
    assert len(records) == 40 and info["sha256"] == hash_path(path)
    assert info["path"] == "reward_heldout/preferences.jsonl" and info["split"] == "eval"
    again, info_again = reward_stage.task_world_heldout(cfg, run)
    assert path.read_text() == text and info_again == info and [r.id for r in again] == [r.id for r in records]
    cfg.seed += 1  # another training seed, the same evaluation seed: another run scores the same pairs
    other = RunDir(tmp_path / "other")
    reward_stage.task_world_heldout(cfg, other)
    assert (other.root / "reward_heldout" / "preferences.jsonl").read_text() == text

    cfg.reward.heldout_pairs = 50
    with pytest.raises(ValueError, match=r"info\.json: the held-out set was built with pairs 40.*pairs 50"):
        reward_stage.task_world_heldout(cfg, run)
    cfg.reward.heldout_pairs, cfg.eval.seed = 40, cfg.eval.seed + 1
    with pytest.raises(ValueError, match=r"info\.json: the held-out set was built with seed"):
        reward_stage.task_world_heldout(cfg, run)
    cfg.eval.seed -= 1
    path.write_text(text.replace("sim-", "sIm-", 1))
    with pytest.raises(ValueError, match=r"preferences\.jsonl: changed since it was built"):
        reward_stage.task_world_heldout(cfg, run)


def test_where_the_held_out_pairs_come_from(tmp_path):
    cfg = config(tmp_path)
    assert reward_stage.heldout_source(cfg) == "task_world"
    cfg.reward.heldout_pairs = 0
    assert reward_stage.heldout_source(cfg) == "fraction"
    cfg.reward.heldout_pairs, cfg.rounds.prompt_source = 40, "user"
    assert reward_stage.heldout_source(cfg) == "fraction"  # the user's prompts: no task world to draw from
    cfg.reward.heldout_data = [str(tmp_path / "held.jsonl")]
    assert reward_stage.heldout_source(cfg) == "user"
    with pytest.raises(ConfigError, match=r"heldout_data\[0\]: .*held\.jsonl not found"):
        cfg.reward.validate()


def prepare_run(tmp_path, tiny_model_dir, rounds):
    run = RunDir(tmp_path / "run")
    shutil.copytree(tiny_model_dir, run.base)
    for n in rounds:
        write_jsonl(simulated_preferences(16, seed=n), run.round_stage(n, "preferences") / "preferences.jsonl")
    return run


@pytest.mark.slow
def test_every_round_scores_its_reward_model_on_the_same_fixed_pairs(tmp_path, tiny_model_dir):
    cfg, run = config(tmp_path), prepare_run(tmp_path, tiny_model_dir, (1, 2))
    metrics = {n: run_stage(reward_stage.STAGE, cfg, run, n) for n in (1, 2)}
    manifests = {n: json.loads((run.round_stage(n, "reward") / "manifest.json").read_text()) for n in (1, 2)}
    held_path = run.root / "reward_heldout" / "preferences.jsonl"
    held = [json.loads(line) for line in held_path.read_text().splitlines()]
    levels = {r["level"] for r in held}
    for n in (1, 2):
        m, manifest = metrics[n], manifests[n]
        assert manifest["inputs"]["reward_heldout"]["hash"] == hash_path(held_path)
        assert manifest["reward_heldout"]["source"] == "task_world"
        assert manifest["reward_heldout"]["sha256"] == hash_path(held_path)
        # every held-out pair is scored (none is a near-duplicate) and no training preference is held back
        assert m["heldout_pairs"] == 40 and m["train_preferences"] == 16 * n
        assert 0.0 <= m["heldout_accuracy"] <= 1.0
        assert sum(m[f"heldout_pairs_{level}"] for level in levels) == 40
    assert manifests[1]["reward_heldout"] == manifests[2]["reward_heldout"]


@pytest.mark.slow
def test_a_users_held_out_file_is_read_in_its_format_and_recorded(tmp_path, tiny_model_dir):
    held = tmp_path / "held.jsonl"  # TRL's explicit-prompt format, no levels (rounds.preference_level applies)
    rows = [{"prompt": [{"role": "user", "content": f"Name a colour number {i}."}],
             "chosen": [{"role": "assistant", "content": f"Colour {i} is blue."}],
             "rejected": [{"role": "assistant", "content": "No."}]} for i in range(6)]
    held.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg, run = config(tmp_path, heldout_data=[str(held)]), prepare_run(tmp_path, tiny_model_dir, (1,))
    metrics = run_stage(reward_stage.STAGE, cfg, run, 1)
    manifest = json.loads((run.round_stage(1, "reward") / "manifest.json").read_text())
    entry = manifest["reward_heldout"]
    assert entry["source"] == "user" and entry["sha256"] == {str(held): hash_path(held)}
    assert [(f["path"], f["records"]) for f in entry["data_formats"]] == [(str(held), 6)]
    assert entry["data_formats"][0]["format"] != "workbench"
    assert manifest["inputs"]["reward_heldout_00"]["hash"] == hash_path(held)
    assert metrics["heldout_pairs"] == 6 and metrics[f"heldout_pairs_{cfg.rounds.preference_level}"] == 6
    assert not (run.root / "reward_heldout").exists()


def test_a_bad_user_held_out_record_is_named(tmp_path):
    held = tmp_path / "held.jsonl"
    held.write_text(json.dumps({"prompt": "Hi", "chosen": "Hello", "rejected": "Bye"}) + "\n"
                    + json.dumps({"prompt": "Hi", "chosen": 3, "rejected": None}) + "\n")
    cfg = config(tmp_path, heldout_data=[str(held)])
    with pytest.raises(ValueError, match=r"held\.jsonl:2.*chosen.*rejected"):
        reward_stage.heldout_set(cfg, RunDir(tmp_path / "run"))
