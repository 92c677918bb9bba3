"""Typed configs: shipped YAML loads, errors name the file and the field, overrides apply."""

from pathlib import Path

import pytest

from workbench.config import CONFIG_DIR, load_config
from workbench.config_base import ConfigError, parse_override


@pytest.mark.parametrize("name", ["demo.yaml", "smoke.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(CONFIG_DIR / name)
    assert cfg.name == name.removesuffix(".yaml")


def test_every_shipped_field_is_commented():
    for path in (CONFIG_DIR / "demo.yaml", CONFIG_DIR / "smoke.yaml"):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#") and not stripped.endswith(":"):
                assert "#" in line, f"{path.name}:{lineno} has no comment: {line!r}"


def test_unknown_field_names_file_and_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sft:\n  learnig_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: sft\.learnig_rate: unknown field"):
        load_config(path)


def test_wrong_type_names_file_and_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sampling:\n  k: two\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: sampling\.k: expected an integer"):
        load_config(path)


def test_validation_names_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  size: huge\n")
    with pytest.raises(ConfigError, match=r"model\.size: 'huge' is not one of"):
        load_config(path)


def test_overrides_apply_with_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\n")
    cfg = load_config(path, ["sampling.k=16", "model.size=small", "run_dir=/tmp/r"])
    assert (cfg.sampling.k, cfg.model.size, cfg.run_path) == (16, "small", Path("/tmp/r"))


def test_malformed_override_is_refused():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("sampling.k")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_ints_widen_to_floats_but_bools_do_not(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dpo:\n  beta: 1\n")
    assert load_config(path).dpo.beta == 1.0
    path.write_text("dpo:\n  beta: true\n")
    with pytest.raises(ConfigError, match="dpo.beta: expected a number"):
        load_config(path)
