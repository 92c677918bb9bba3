"""Typed configs: shipped YAML loads, errors name the file and the field, overrides apply."""

from pathlib import Path

import pytest

from rounds.full_config import CONFIG_DIR, load_config
from workbench.config_base import ConfigError, check_run_name, parse_override


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


@pytest.mark.parametrize("text, value", [("1e-4", 1e-4), ("5E-5", 5e-5), ("+2e3", 2000.0), (".5e1", 5.0)])
def test_exponent_numbers_are_numbers_in_yaml_and_overrides(tmp_path, text, value):
    path = tmp_path / "c.yaml"
    path.write_text(f"name: x\nsft:\n  learning_rate: {text}\n")
    assert load_config(path).sft.learning_rate == value
    assert load_config(CONFIG_DIR / "smoke.yaml", [f"sft.learning_rate={text}"]).sft.learning_rate == value


def test_non_finite_numbers_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dpo:\n  beta: 1e400\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: dpo\.beta: expected a finite number, got inf"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_config_is_refused(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"c\.yaml: the config file is empty"):
        load_config(path)


def test_top_level_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- name: x\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: expected a mapping of fields at the top level, got list"):
        load_config(path)


def test_non_utf8_config_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"name: x\nsft:\n  learning_rate: 1e-4 # \xff\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3: not UTF-8 text \(byte 0xff\)"):
        load_config(path)


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nsft:\n  learning_rate: 0.1\n  learning_rate: 0.2\n")
    with pytest.raises(ConfigError, match=r"(?s)c\.yaml: not valid YAML: key 'learning_rate' is given twice.*line 4"):
        load_config(path)


def test_deeply_nested_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: " + "[" * 100_000)
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="override 'name=.*not valid YAML"):
        parse_override("name=" + "[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("name", ["demo", "smoke", "run-2.b_c", "R1"])
def test_plain_run_names_pass(name):
    check_run_name(name)


@pytest.mark.parametrize("name", ["../../x", "a/b", "a\\b", "..", ".", ".hidden", "", "a..b", "x" * 101, "/abs"])
def test_run_names_with_path_parts_are_refused(name):
    with pytest.raises(ConfigError, match="name: .* is not a plain folder name"):
        check_run_name(name)


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "/abs"])
def test_a_run_name_with_path_parts_is_refused(name):
    with pytest.raises(ConfigError, match="name: .* is not a plain folder name"):
        load_config(None, [f"name={name}"])


@pytest.mark.parametrize("run_dir", ["2026-11-29", "runs/a: b", "123"])
def test_run_dir_from_the_command_line_is_a_string_whatever_yaml_would_read(run_dir, capsys):
    from rounds.main import main

    assert main(["config", "show", "--run-dir", run_dir]) == 0
    import yaml

    assert yaml.safe_load(capsys.readouterr().out)["run_dir"] == run_dir


def test_pretraining_batches_must_split_over_the_processes():
    with pytest.raises(ConfigError, match="pretrain.ramp: every batch_size must be a multiple of the 2 processes"):
        load_config(None, ["distributed.strategy=ddp", "distributed.num_processes=2", "pretrain.ramp=[[0, 64, 3]]"])
    load_config(None, ["distributed.strategy=ddp", "distributed.num_processes=2", "pretrain.ramp=[[0, 64, 4]]"])


def test_user_prompts_need_an_annotator_that_can_answer_them(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "Say hi."}\n')
    with pytest.raises(ConfigError, match="rounds.prompt_source: user prompts .*simulated annotator"):
        load_config(CONFIG_DIR / "smoke.yaml", ["rounds.prompt_source=user", f"rounds.prompts=[{tmp_path / 'p.jsonl'}]"])
    cfg = load_config(CONFIG_DIR / "smoke.yaml", ["rounds.prompt_source=user", f"rounds.prompts=[{tmp_path / 'p.jsonl'}]",
                                                  "annotation.mode=human"])
    assert cfg.rounds.prompts == [str(tmp_path / "p.jsonl")]
