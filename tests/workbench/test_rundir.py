"""Run directory: the path contract, atomic writes, manifests with status, hashes and provenance."""

import json

import pytest

from workbench.rundir import RunDir, atomic_dir, atomic_write_text, hash_path, read_manifest


def test_paths_follow_the_contract(tmp_path):
    run = RunDir(tmp_path / "runs" / "demo")
    assert run.config_path.name == "config.yaml"
    assert run.round_stage(3, "policy") == run.root / "rounds" / "round_03" / "policy"
    with pytest.raises(ValueError, match="stage 'bogus'"):
        run.round_stage(1, "bogus")


def test_stage_writes_running_then_done_with_provenance(tmp_path):
    run = RunDir(tmp_path)
    source = tmp_path / "in.txt"
    source.write_text("hello")
    with run.stage("base", config={"lr": 0.1}, inputs={"corpus": source}) as st:
        assert read_manifest(st.path)["status"] == "running"
        st.metrics["loss"] = 1.5
        st.output("model", st.path / "model.safetensors")
    manifest = read_manifest(tmp_path / "base")
    assert manifest["status"] == "done"
    assert manifest["inputs"]["corpus"]["hash"] == hash_path(source)
    assert manifest["outputs"] == {"model": "model.safetensors"}
    assert manifest["metrics"] == {"loss": 1.5}
    assert manifest["wall_time_s"] >= 0
    assert "torch" in manifest["versions"] and "python" in manifest["versions"]
    assert "git_commit" in manifest
    assert run.is_done("base")


def test_a_crash_leaves_failed_never_done(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RuntimeError):
        with run.stage("sft"):
            raise RuntimeError("out of memory")
    manifest = read_manifest(tmp_path / "sft")
    assert manifest["status"] == "failed"
    assert "out of memory" in manifest["error"]
    assert not run.is_done("sft")


def test_folder_hash_changes_with_content(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.bin").write_bytes(b"1")
    first = hash_path(tmp_path / "a")
    (tmp_path / "a" / "w.bin").write_bytes(b"2")
    assert hash_path(tmp_path / "a") != first


def test_atomic_write_leaves_old_content_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    atomic_write_text(target, "old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path):
    out = tmp_path / "model"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_corrupt_manifest_is_named(tmp_path):
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match="manifest.json: manifest is not valid JSON"):
        read_manifest(tmp_path)


def test_write_config_round_trips(tmp_path):
    import yaml

    from rounds.full_config import load_config

    cfg = load_config()
    RunDir(tmp_path).write_config(cfg)
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["name"] == cfg.name and data["dpo"]["beta"] == cfg.dpo.beta
    json.dumps(data)
