"""Training calls in this process, or in several under `accelerate launch` (DDP, FSDP2, DeepSpeed ZeRO-3).

A training stage calls its trainer through :func:`run_call`. With ``distributed.strategy: none`` that
is a plain call. Otherwise the call (the function's import path and its arguments) is pickled into
``.<out>.launch/call.pkl`` beside the stage's output folder, ``accelerate launch`` starts
``distributed.num_processes`` children on ``python -m workbench.launch call.pkl``, every child runs the
same call (the trainers are accelerate-aware: TRL's, and the pretraining loop), and the main process
writes the call's result to ``result.json``, which the parent reads. The children inherit the
terminal, so their progress shows. A killed launch leaves no result: running the stage again
launches again, and the trainers resume from their own checkpoints.

FSDP on machines without CUDA: accelerate 1.15 would run the children as DDP over gloo, so each
child first routes an FSDP launch to accelerate's FSDP2 path (:mod:`workbench.accelerate_private`),
and savers gather the sharded weights through :func:`savable`.

Several machines: machine 0 runs the orchestrator; every other machine runs ``workbench launch
follow`` on the same shared run folder, which joins each launch it finds (see :func:`follow`).
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from workbench.config_base import ConfigError
from workbench.rundir import atomic_write_json, atomic_write_text

ACCELERATE_CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "accelerate"
SHIPPED = {"fsdp": "fsdp2.yaml", "deepspeed": "deepspeed_zero3.yaml"}
CALL, RESULT, JOINED = "call.pkl", "result.json", "joined-{rank}"


def in_launched_process() -> bool:
    """True inside a process started by `accelerate launch` or torchrun."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_dir(out: str | Path) -> Path:
    """Where a launched call of the stage writing ``out`` keeps its call and result: ``.<out>.launch/``."""
    out = Path(out)
    return out.with_name(f".{out.name}.launch")


def accelerate_config_file(dist) -> Path | None:
    """The accelerate config the strategy uses: the configured one, else the shipped one (fsdp, deepspeed)."""
    if dist.accelerate_config:
        path = Path(dist.accelerate_config)
        if not path.is_file():
            raise FileNotFoundError(f"distributed.accelerate_config: {path} does not exist")
        return path
    return ACCELERATE_CONFIGS / SHIPPED[dist.strategy] if dist.strategy in SHIPPED else None


def free_port() -> int:
    """A TCP port of this machine that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_command(dist, call_file: Path, machine_rank: int | None = None) -> list[str]:
    """The `accelerate launch` command line that runs ``call_file`` on this machine's processes."""
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    config = accelerate_config_file(dist)
    if config is not None:
        command += ["--config_file", str(config)]
    else:  # ddp: torchrun under accelerate; on the CPU the trainers' use_cpu makes it DDP over gloo
        command += ["--multi_gpu"]
    # One machine: a free port per launch, so a killed launch's lingering rendezvous cannot block the
    # next one; several: the agreed port, which every machine must know.
    port = dist.main_process_port if dist.num_machines > 1 else free_port()
    command += ["--num_processes", str(dist.num_processes * dist.num_machines),
                "--num_machines", str(dist.num_machines),
                "--machine_rank", str(dist.machine_rank if machine_rank is None else machine_rank),
                "--main_process_ip", dist.main_process_ip, "--main_process_port", str(port),
                "--mixed_precision", dist.mixed_precision, "--dynamo_backend", "no",
                "-m", "workbench.launch", str(call_file)]
    return command


def check_strategy(dist) -> None:
    """Refuse a strategy this machine cannot run, rather than let accelerate quietly run a weaker one."""
    import torch

    if dist.strategy == "deepspeed" and not torch.cuda.is_available():
        # accelerate 1.15 turns a multi-process CPU launch into MULTI_CPU (DDP over gloo) and ignores the
        # DeepSpeed plugin there: the run would train unsharded without saying so. (FSDP is routed to the
        # CPU by workbench.accelerate_private.)
        raise ConfigError("distributed.strategy: deepspeed needs GPUs (accelerate runs CPU processes as "
                          "DDP over gloo and ignores DeepSpeed there); on the CPU use strategy: fsdp or ddp")
    if dist.strategy == "deepspeed":
        try:
            import deepspeed  # noqa: F401
        except ImportError as exc:
            raise ConfigError("distributed.strategy: deepspeed needs the deepspeed package "
                              "(`pip install deepspeed` on the GPU machines)") from exc


def savable(accelerator, model):
    """The trained model as the main process should save it (call on every process; None on the others).

    Unsharded, that is the unwrapped model. Under FSDP its parameters are shards, so the full weights
    are gathered (``accelerator.get_state_dict``, FULL_STATE_DICT) into a plain copy of the model's own
    class, whose ``save_pretrained`` writes ordinary HF safetensors. The copy is for saving only: its
    non-persistent buffers (rotary frequencies) stay on the meta device.
    """
    import torch
    from torch.distributed.fsdp import FSDPModule

    model = accelerator.unwrap_model(model)
    if not any(isinstance(m, FSDPModule) for m in model.modules()):
        return model if accelerator.is_main_process else None
    state = accelerator.get_state_dict(model)  # a collective: every process takes part
    if not accelerator.is_main_process:
        return None
    cls = next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule))  # fully_shard's subclass's base
    with torch.device("meta"):
        plain = cls(model.config)
    plain.load_state_dict(state, strict=False, assign=True)
    plain.tie_weights()
    missing = [name for name, p in plain.named_parameters() if p.is_meta]
    if missing:
        raise RuntimeError(f"the gathered FSDP state dict lacks {missing[:5]}")
    if getattr(model, "generation_config", None) is not None:
        plain.generation_config = model.generation_config
    return plain


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when ``parent`` dies (PR_SET_PDEATHSIG); elsewhere, nothing.

    A killed orchestrator then takes its launch with it: torchrun starts the trainers in sessions of
    their own, so killing the orchestrator's process group would otherwise leave them training and
    writing into the stage folder the resumed run works on. ``parent`` is the pid this process was
    started by (passed down, since by the time a process asks it may have been re-parented already).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


LAUNCHER_PARENT, TRAINER_PARENT = "WORKBENCH_LAUNCHER_PARENT", "WORKBENCH_TRAINER_PARENT"


def tied_to_this_process(command: list[str]) -> list[str]:
    """``command`` run through this module, which asks to die with this process and then execs it."""
    return [sys.executable, "-m", "workbench.launch", "--exec", *command]


def child_env(dist) -> dict[str, str]:
    """The children's environment: the cores shared between this machine's processes."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // dist.num_processes)))
    env[LAUNCHER_PARENT] = str(os.getpid())
    return env


def run_call(dist, fn: Callable[..., Any], out: str | Path, **kwargs) -> Any:
    """``fn(**kwargs)`` here (strategy none, or already launched) or under `accelerate launch`; its result.

    ``out`` is the folder the call writes (its launch files go beside it). The result must be JSON.
    """
    if dist is None or dist.strategy == "none" or in_launched_process():
        return fn(**kwargs)
    check_strategy(dist)
    folder = launch_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (folder / RESULT, *folder.glob("joined-*")):
        stale.unlink(missing_ok=True)
    target = f"{fn.__module__}:{fn.__qualname__}"
    call_file = folder / CALL
    tmp = call_file.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps({"fn": target, "kwargs": kwargs}))
    tmp.replace(call_file)
    command = accelerate_command(dist, call_file)
    atomic_write_text(folder / "command.txt", " ".join(command) + "\n")
    done = subprocess.run(tied_to_this_process(command), env=child_env(dist))
    if done.returncode != 0:
        raise RuntimeError(f"{target} failed under `accelerate launch` with exit code {done.returncode} "
                           f"(strategy {dist.strategy}, {dist.num_processes} process(es) per machine); "
                           f"its output is above; the command is in {folder / 'command.txt'}")
    result = json.loads((folder / RESULT).read_text(encoding="utf-8"))["result"]
    call_file.unlink()
    return result


def follow(run_root: str | Path, dist, idle_seconds: float | None = None, poll: float = 2.0) -> int:
    """On a machine of rank > 0: join every launch machine 0 starts in the shared run folder.

    Watches ``run_root`` for call files that have no result yet and that this machine has not joined,
    and runs its share of each (the same `accelerate launch`, with this machine's rank). Returns the
    number of launches joined, after ``idle_seconds`` without a new one (None: until interrupted).
    """
    if dist.machine_rank == 0:
        raise ValueError("distributed.machine_rank: 0 runs the orchestrator; follow runs on machines 1..N-1")
    joined, idle_since = 0, time.monotonic()
    while idle_seconds is None or time.monotonic() - idle_since < idle_seconds:
        pending = [c for c in sorted(Path(run_root).rglob(f".*.launch/{CALL}"))
                   if not (c.parent / RESULT).exists() and not (c.parent / JOINED.format(rank=dist.machine_rank)).exists()]
        if not pending:
            time.sleep(poll)
            continue
        call_file = pending[0]
        (call_file.parent / JOINED.format(rank=dist.machine_rank)).touch()
        done = subprocess.run(tied_to_this_process(accelerate_command(dist, call_file)), env=child_env(dist))
        if done.returncode != 0:
            raise RuntimeError(f"{call_file}: this machine's share failed with exit code {done.returncode}")
        joined, idle_since = joined + 1, time.monotonic()
    return joined


def enable_sharding_here() -> None:
    """On a machine without CUDA, let an FSDP launch shard over gloo (accelerate alone would run DDP)."""
    import torch

    from workbench import accelerate_private

    if accelerate_private.fsdp_requested() and not torch.cuda.is_available():
        accelerate_private.enable_fsdp_on_cpu()


def main(call_file: str) -> None:
    """Inside each launched process: run the pickled call; the main process writes its result."""
    die_with_parent(int(os.environ.get(TRAINER_PARENT, os.getppid())))
    enable_sharding_here()
    call = pickle.loads(Path(call_file).read_bytes())
    module, _, name = call["fn"].partition(":")
    fn: Any = importlib.import_module(module)
    for part in name.split("."):
        fn = getattr(fn, part)
    result = fn(**call["kwargs"])
    if int(os.environ.get("RANK", "0")) == 0:
        atomic_write_json(Path(call_file).with_name(RESULT), {"fn": call["fn"], "result": result})


if __name__ == "__main__":
    if sys.argv[1] == "--exec":  # the launcher: dies with the orchestrator (the request survives exec)
        die_with_parent(int(os.environ[LAUNCHER_PARENT]))
        os.environ[TRAINER_PARENT] = str(os.getpid())  # accelerate, in this same process, starts the trainers
        os.execv(sys.argv[2], sys.argv[2:])
    main(sys.argv[1])
