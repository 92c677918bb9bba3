"""rounds.dpo false: the dpo stage keeps the round's SFT model as it is and says so."""

import shutil

from rounds.full_config import CONFIG_DIR, load_config
from rounds.stages import dpo
from workbench.rundir import RunDir, read_manifest
from workbench.stage import run_stage


def test_without_dpo_the_sft_weights_become_the_dpo_model(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file

    run = RunDir(tmp_path / "run")
    sft = run.round_stage(1, "sft") / "model"
    shutil.copytree(tiny_model_dir, sft)
    # no preferences were collected: a DPO stage that tried to train would fail to read them
    cfg = load_config(CONFIG_DIR / "smoke.yaml", [f"run_dir={run.root}", "rounds.dpo=false", "tracking.backend=none"])
    metrics = run_stage(dpo.STAGE, cfg, run, 1)
    assert metrics["skipped_disabled"] == 1 and metrics["global_step"] == 0
    manifest = read_manifest(run.round_stage(1, "dpo"))
    assert manifest["status"] == "done" and set(manifest["inputs"]) == {"sft"}
    kept = run.round_stage(1, "dpo") / "model"
    assert sorted(p.name for p in kept.iterdir()) == sorted(p.name for p in sft.iterdir())
    before, after = load_file(sft / "model.safetensors"), load_file(kept / "model.safetensors")
    assert before.keys() == after.keys() and all(before[k].equal(after[k]) for k in before)
