"""An expert end to end on a tiny run: domain-heavy corpus, continued pretraining, SFT, manifest; rounds wiring."""

import json
import shutil
from pathlib import Path

import pytest

from experts.config import ExpertsConfig
from experts.corpus import target_mix
from experts.rounds import expert_for, sample_with_experts
from experts.train import cpt_run, expert_dir, train_expert
from workbench import tasks
from rounds.full_config import WorkbenchConfig
from workbench.config_base import ConfigError, build
from workbench.jsonl import read_jsonl
from workbench.pretrain.stage import STAGE as PRETRAIN_STAGE
from workbench.rundir import RunDir, read_manifest
from workbench.stage import run_stage

PRETRAIN = {"max_steps": 4, "warmup_steps": 1, "anneal_steps": 0, "anneal_average": 1, "ramp": [[0, 64, 4]],
            "eval_interval": 0, "eval_tokens": 512, "checkpoint_interval": 100}


def write_documents(path: Path, n_per_family: int, seed: int) -> None:
    """Task-world documents in the data pipeline's JSONL format."""
    with open(path, "w", encoding="utf-8") as f:
        for family in tasks.FAMILIES:
            for i, task in enumerate(tasks.generate(family, n_per_family, seed)):
                f.write(json.dumps({"id": f"{family}-{seed}-{i}", "text": f"{task.prompt}\n{task.solution}",
                                    "domain": family, "url": f"https://example.org/{family}/{i}",
                                    "quality": 0.5 + (i % 5) / 10}) + "\n")


def config(root: Path, **experts):
    return build(WorkbenchConfig, {
        "name": "experts-test", "run_dir": str(root), "tracking": {"backend": "none"}, "model": {"size": "tiny"},
        "pretrain": PRETRAIN, "sft": {"num_train_epochs": 1, "per_device_train_batch_size": 8, "max_length": 128},
        "experts": {"enabled": ["code"], "cpt_steps": 3, "cpt_warmup_steps": 1, "cpt_anneal_steps": 2,
                    "sft_examples": 16, "unit_tests": 2, **experts}}, "test:")


def measured_shares(corpus: Path, tokenizer_dir: Path) -> dict[str, dict[str, float]]:
    """Each domain's share of a corpus file's characters and of its tokens, counted here."""
    from workbench.tokenizer import load_tokenizer

    tokenizer, counts = load_tokenizer(tokenizer_dir), {"chars": {}, "tokens": {}}
    for doc in read_jsonl(corpus):
        counts["chars"][doc["domain"]] = counts["chars"].get(doc["domain"], 0) + len(doc["text"])
        tokens = len(tokenizer(doc["text"], add_special_tokens=False)["input_ids"])
        counts["tokens"][doc["domain"]] = counts["tokens"].get(doc["domain"], 0) + tokens
    return {kind: {d: n / sum(c.values()) for d, n in c.items()} for kind, c in counts.items()}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_tokenizer_dir):
    root = tmp_path_factory.mktemp("experts") / "run"
    shutil.copytree(tiny_tokenizer_dir, root / "tokenizer")
    (root / "data").mkdir()
    write_documents(root / "data" / "train.jsonl", 40, seed=1)
    write_documents(root / "data" / "heldout.jsonl", 3, seed=2)
    cfg = config(root)
    run_stage(PRETRAIN_STAGE, cfg, RunDir(root))
    return cfg, RunDir(root)


@pytest.mark.slow
def test_code_expert_is_trained_and_its_manifest_records_the_measured_mix(tiny_run):
    cfg, run = tiny_run
    out = train_expert(cfg, run, "code")
    manifest = read_manifest(out)
    assert out == expert_dir(run, "code") and manifest["status"] == "done"
    assert set(manifest["inputs"]) == {"base", "cpt_model", "corpus"} and manifest["inputs"]["cpt_model"]["hash"]
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    mix, corpus = manifest["mix"], measured_shares(cpt_run(run, "code").data / "train.jsonl", run.tokenizer)
    assert mix["char_shares"] == pytest.approx(corpus["chars"]) and mix["token_shares"] == pytest.approx(corpus["tokens"])
    assert manifest["metrics"]["domain_token_share"] == pytest.approx(corpus["tokens"]["code"])
    assert abs(corpus["chars"]["code"] - cfg.experts.domain_share["code"]) < 0.1 and corpus["tokens"]["code"] > 0.7
    assert set(corpus["tokens"]) == set(tasks.FAMILIES)
    assert "target" not in read_manifest(cpt_run(run, "code").data)["metrics"]  # a config, not a measurement
    assert manifest["metrics"]["cpt_heldout_loss_before"] and manifest["metrics"]["cpt_heldout_loss_after"]
    cpt = read_manifest(cpt_run(run, "code").base)
    assert cpt["status"] == "done"  # and it started from the base: its first held-out loss is the base's last
    assert cpt["metrics"]["heldout_loss_init/code"] == pytest.approx(
        read_manifest(run.base)["metrics"]["heldout_loss_after_anneal/code"], abs=1e-5)
    demos = read_jsonl(out / "demos.jsonl")
    assert len(demos) == manifest["metrics"]["demonstrations"] == 16 and manifest["metrics"]["checks_kept"] == 1.0
    assert train_expert(cfg, run, "code") == out and read_manifest(out)["finished_at"] == manifest["finished_at"]


def test_target_mix_keeps_the_run_proportions_outside_the_domain():
    mix = target_mix("code", 0.85, {"general": 0.5, "math": 0.25, "code": 0.17, "multilingual": 0.08})
    assert mix["code"] == 0.85 and sum(mix.values()) == pytest.approx(1.0)
    assert mix["general"] / mix["math"] == pytest.approx(2.0)


def test_expert_for_follows_enabled_and_sampler(tmp_path):
    run = RunDir(tmp_path)
    cfg = config(tmp_path, enabled=["code", "math"], sampler={"math": "policy"})
    assert expert_for(cfg, run, "code") == tmp_path / "experts" / "code"
    assert expert_for(cfg, run, "math") is None and expert_for(cfg, run, "multilingual") is None


def test_with_no_expert_enabled_every_prompt_goes_to_the_policy(tmp_path):
    cfg = config(tmp_path, enabled=[])
    records = [{"id": str(i), "messages": [{"role": "user", "content": t.prompt}], "task": t.to_dict()}
               for i, t in enumerate(tasks.generate(None, 8, 0))]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in records))
    path = sample_with_experts(cfg, RunDir(tmp_path), prompts, tmp_path / "samples", tmp_path / "reward", seed=0)
    assert [r["id"] for r in read_jsonl(path)] == [r["id"] for r in records]


def test_sampling_never_trains_an_expert(tmp_path):
    cfg = config(tmp_path, enabled=["code"])
    records = [{"id": str(i), "messages": [{"role": "user", "content": t.prompt}], "task": t.to_dict()}
               for i, t in enumerate(tasks.generate("code", 2, 0))]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(FileNotFoundError, match="the code expert is not trained; run `workbench experts train code`"):
        sample_with_experts(cfg, RunDir(tmp_path), prompts, tmp_path / "samples", tmp_path / "reward", seed=0)
    assert not (tmp_path / "experts").exists()


def test_config_names_unknown_domains():
    with pytest.raises(ConfigError, match="enabled"):
        build(ExpertsConfig, {"enabled": ["poetry"]}, "test:")
    with pytest.raises(ConfigError, match="domain_share"):
        build(ExpertsConfig, {"domain_share": {"code": 1.5}}, "test:")
