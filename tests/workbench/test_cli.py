"""The `workbench` command line: --help lists the commands; core commands run; errors are one clear line."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rounds.main import main

COMMANDS = ["config", "tokenizer", "model", "eval", "data", "pretrain", "reward", "sample", "sft", "dpo",
            "average", "annotate", "demo", "rounds", "round", "report"]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command}" in out, command


@pytest.mark.parametrize("command", [[str(Path(sys.executable).with_name("workbench"))],
                                     [sys.executable, "-m", "rounds.main"]], ids=["console-script", "module"])
def test_console_script_runs(command):
    out = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "demo" in out.stdout


def test_config_show_applies_overrides(capsys):
    assert main(["config", "show", "--set", "sampling.k=3", "--run-dir", "/tmp/x"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["sampling"]["k"] == 3 and shown["run_dir"] == "/tmp/x"


def test_bad_override_is_one_clear_line(capsys):
    assert main(["config", "show", "--set", "sampling.k=lots"]) == 2
    err = capsys.readouterr().err
    assert "sampling.k: expected an integer" in err and "Traceback" not in err


def test_model_init_saves_an_hf_model(tmp_path, tiny_tokenizer_dir, capsys):
    from transformers import AutoModelForCausalLM

    assert main(["model", "init", "--tokenizer", str(tiny_tokenizer_dir), "--size", "tiny", "--out", str(tmp_path)]) == 0
    assert "parameters" in capsys.readouterr().out
    assert AutoModelForCausalLM.from_pretrained(tmp_path).config.num_hidden_layers == 4


def test_an_os_error_is_one_line_with_the_path(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["reward", "simulate", "--n", "2", "--seed", "0", "--out", str(blocker / "prefs.jsonl")]) == 1
    err = capsys.readouterr().err
    assert str(blocker) in err and "Traceback" not in err and err.count("\n") == 1
