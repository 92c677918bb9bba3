"""The trackio folder of a run: set for a block, the caller's restored afterwards."""

import os

import pytest

from workbench.tracking import using_run_dir


def test_using_run_dir_restores_the_callers_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKIO_DIR", "/elsewhere")
    with using_run_dir(tmp_path / "tracking"):
        assert os.environ["TRACKIO_DIR"] == str((tmp_path / "tracking").resolve())
        assert (tmp_path / "tracking").is_dir()
    assert os.environ["TRACKIO_DIR"] == "/elsewhere"


def test_using_run_dir_unsets_a_folder_the_caller_did_not_have(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACKIO_DIR", raising=False)
    with pytest.raises(RuntimeError), using_run_dir(tmp_path / "tracking"):
        raise RuntimeError("the block fails")
    assert "TRACKIO_DIR" not in os.environ
