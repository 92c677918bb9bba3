"""`workbench sft`, `dpo` and `average` on plain folders: one manifest through the stage wrapper, skip when done."""

from __future__ import annotations

import json

import pytest

from rounds.main import main
from workbench.jsonl import write_jsonl
from workbench.preferences import Preference
from workbench.preferences import write_jsonl as write_preferences

ROWS = [{"messages": [{"role": "user", "content": f"What is {i} + 3?"},
                      {"role": "assistant", "content": f"Answer: {i + 3}"}]} for i in range(4)]
COMMON = ["--config", "configs/smoke.yaml", "--set", "tracking.backend=none", "--set", "device=cpu"]


def manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.slow
def test_sft_dpo_and_average_write_one_manifest_and_skip_a_done_folder(tmp_path, tiny_model_dir, capsys):
    write_jsonl(ROWS, tmp_path / "sft.jsonl")
    prefs = [Preference(id=f"p{i}", prompt=ROWS[i]["messages"][:1], chosen=f"Answer: {i + 3}",
                        rejected=f"Answer: {i + 4}", level="significantly_better") for i in range(4)]
    write_preferences(prefs, tmp_path / "prefs.jsonl")
    sft, dpo, avg = tmp_path / "sft", tmp_path / "dpo", tmp_path / "avg"
    settings = ["--set", "sft.num_train_epochs=1", "--set", "dpo.num_train_epochs=1"]

    assert main(["sft", "--init", str(tiny_model_dir), "--data", str(tmp_path / "sft.jsonl"), "--out", str(sft),
                 *COMMON, *settings]) == 0
    first = manifest(sft)
    assert first["status"] == "done" and first["stage"] == "sft" and first["outputs"] == {"model": "."}
    assert set(first["inputs"]) == {"init", "data0"} and first["metrics"]["global_step"] >= 1
    assert first["config"]["num_train_epochs"] == 1 and "packing" in first["config"]  # the sft section

    assert main(["sft", "--init", str(tiny_model_dir), "--data", str(tmp_path / "sft.jsonl"), "--out", str(sft),
                 *COMMON, *settings]) == 0
    assert "done already" in capsys.readouterr().out and manifest(sft) == first

    assert main(["dpo", "--sft", str(sft), "--prefs", str(tmp_path / "prefs.jsonl"), "--out", str(dpo),
                 *COMMON, *settings]) == 0
    assert manifest(dpo)["status"] == "done" and manifest(dpo)["metrics"]["pairs_used"] == 4

    assert main(["average", str(sft), str(dpo), "--out", str(avg), *COMMON]) == 0
    record = manifest(avg)
    assert record["status"] == "done" and record["weights"] == [1.0, 1.0] and record["metrics"]["models"] == 2
    assert (avg / "model.safetensors").is_file()
