"""The sft/dpo/averaging config sections: TRL passthrough checked, ranges and levels validated."""

from __future__ import annotations

import pytest

from rounds.full_config import load_config
from workbench.config_base import ConfigError


def test_shipped_configs_load_with_the_llama3_dpo_settings():
    for name in ("demo", "smoke"):
        cfg = load_config(f"configs/{name}.yaml")
        assert (cfg.dpo.beta, cfg.dpo.nll_coef) == (0.1, 0.2)
        assert cfg.sft.lora.r == 0 and cfg.sft.lora.peft_config() is None
    # the embedded default trains on the two strongest levels (Llama 3); smoke on all, so that its
    # barely trained models still give DPO pairs to train on
    assert load_config("configs/demo.yaml").dpo.levels == ["significantly_better", "better"]


@pytest.mark.parametrize("override, message", [
    ("dpo.trl_args={learning_rate: 0.1}", "dpo.trl_args.learning_rate: set by the workbench; use the section's"),
    ("sft.trl_args={no_such_option: 1}", "sft.trl_args.no_such_option: not a field of trl.SFTConfig"),
    ("dpo.trl_args={loss_type: [ipo]}", "dpo.trl_args.loss_type: set by the workbench"),
    ("dpo.levels=[best]", "dpo.levels: \\['best'\\]"),
    ("sft.lora.r=-1", "sft.lora.r: must be >= 0"),
])
def test_bad_values_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("configs/smoke.yaml", [override])


def test_trl_args_pass_through_to_the_trl_config():
    cfg = load_config("configs/smoke.yaml", ["dpo.trl_args={lr_scheduler_type: cosine}"])
    kwargs = cfg.dpo.trl_config_kwargs()
    assert kwargs["lr_scheduler_type"] == "cosine" and kwargs["beta"] == 0.1
    assert "nll_coef" not in kwargs and "lora" not in kwargs
