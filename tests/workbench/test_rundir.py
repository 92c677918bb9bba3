"""Run directory: the path contract, atomic writes, manifests with status, hashes and provenance."""

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from workbench.rundir import (RunDir, atomic_dir, atomic_write_text, current_umask, exit_on_os_error, hash_path,
                              read_manifest)


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


# -- modes and OS errors ---------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                        (0o002, 0o664, 0o775)])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        written = atomic_write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "inner.txt").write_text("y")
        with RunDir(tmp_path / "run").stage("base") as st:
            st.metrics["n"] = 1
    finally:
        os.umask(old)
    assert stat.S_IMODE(written.stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "run" / "base" / "manifest.json").stat().st_mode) == file_mode


def in_private_mount(script: str, *, user: str | None = None) -> subprocess.CompletedProcess:
    """Run a Python script in a private mount namespace (so its tmpfs mounts vanish with it), as ``user``."""
    prefix = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--mount", "--map-root-user"]
    probe = subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", "/mnt"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace here: {probe.stderr.decode().strip()}")
    return subprocess.run([*prefix, sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_full_disk_is_reported_with_the_path_and_what_to_do(tmp_path):
    script = textwrap.dedent(f"""
        import subprocess, pathlib
        from workbench.rundir import RunDir, atomic_write_text, os_error_message, read_manifest
        disk = pathlib.Path({str(tmp_path / "disk")!r})
        disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
        atomic_write_text(disk / "kept.txt", "old")
        try:
            atomic_write_text(disk / "kept.txt", "x" * 1_000_000)
        except OSError as exc:
            print("WRITE", os_error_message(exc))
        print("KEPT", (disk / "kept.txt").read_text(), sorted(p.name for p in disk.iterdir()))
        stage = RunDir(disk / "run").stage("base")
        try:
            with stage:
                with open(stage.path / "weights.bin", "wb") as f:
                    f.write(b"w" * 1_000_000)  # the library-style write that names no file
        except OSError as exc:
            print("STAGE", os_error_message(exc))
        print("STATUS", read_manifest(stage.path)["status"])
    """)
    out = in_private_mount(script)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    disk = tmp_path / "disk"
    assert lines["WRITE"] == (f"{disk / 'kept.txt'}: No space left on device; free some space (or set run_dir to "
                              "a folder on another disk) and run the same command again")
    assert lines["KEPT"] == "old ['kept.txt']"  # the old content, and no temp file left behind
    assert lines["STAGE"].startswith(f"{disk / 'run' / 'base'}: No space left on device; free some space")
    assert lines["STATUS"] in ("running", "failed")  # never done; running reads as interrupted


def test_a_read_only_run_folder_is_reported_with_the_path_and_what_to_do(tmp_path):
    script = textwrap.dedent(f"""
        import subprocess, pathlib
        from workbench.rundir import atomic_write_text, os_error_message
        disk = pathlib.Path({str(tmp_path / "disk")!r})
        disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(disk)], check=True)
        try:
            atomic_write_text(disk / "run" / "config.yaml", "name: x")
        except OSError as exc:
            print(os_error_message(exc))
    """)
    out = in_private_mount(script)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"{tmp_path / 'disk' / 'run'}: Read-only file system; the file system is "
                                  "mounted read-only; set run_dir to a folder on a writable disk")


def test_a_folder_without_write_permission_is_reported_for_a_non_root_user():
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the nobody user")
    base = Path(tempfile.mkdtemp(prefix="rundir-perm-"))  # pytest's tmp_path sits in a folder only root can enter
    try:
        base.chmod(0o755)
        (base / "open").mkdir(mode=0o777)
        (base / "open").chmod(0o777)
        (base / "run").mkdir()
        (base / "run").chmod(0o555)
        script = textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(ROOT)!r})
            from workbench.rundir import atomic_write_text, os_error_message
            atomic_write_text({str(base / "open" / "config.yaml")!r}, "name: x")  # the user can write elsewhere
            try:
                atomic_write_text({str(base / "run" / "config.yaml")!r}, "name: x")
            except OSError as exc:
                print(os_error_message(exc))
        """)
        # the system interpreter: the virtual environment's may sit under a folder nobody cannot enter
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                              "-c", script], capture_output=True, text=True, timeout=120, cwd="/")
    finally:
        shutil.rmtree(base)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"{base / 'run'}: Permission denied; make it writable (e.g. chmod u+w) or set "
                                  "run_dir to a folder you can write")


def test_exit_on_os_error_prints_one_line_and_returns_1(capsys):
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    exc.filename = "/runs/x/base"
    assert exit_on_os_error("pretrain", exc) == 1
    assert capsys.readouterr().err == ("workbench pretrain: error: /runs/x/base: No space left on device; "
                                       "free some space (or set run_dir to a folder on another disk) and run the "
                                       "same command again\n")
