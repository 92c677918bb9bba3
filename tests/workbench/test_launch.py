"""Training calls under `accelerate launch`: 2 gloo processes (DDP or FSDP2) match 1 process with the same global batch."""

from __future__ import annotations

import pytest
import torch

from workbench.config import DistributedConfig
from workbench.config_base import ConfigError
from workbench.launch import accelerate_command, launch_dir, run_call
from workbench.posttrain.config import SFTConfig
from workbench.posttrain.sft import train_sft

ROWS = [{"messages": [{"role": "user", "content": f"What is {a} + {b}?"},
                      {"role": "assistant", "content": f"{a} + {b} = {a + b}\nAnswer: {a + b}"}]}
        for a, b in [(1, 2), (30, 12), (7, 7), (45, 9), (12, 30), (8, 80), (5, 50), (99, 1)]]


def sft(per_device: int) -> SFTConfig:
    """Two optimizer steps over the 8 rows at a global batch of 4, with a learning rate that moves weights."""
    return SFTConfig(per_device_train_batch_size=per_device, num_train_epochs=1, learning_rate=1e-3, max_length=64,
                     trl_args={"disable_tqdm": True, "dataloader_drop_last": False})


def test_the_command_launches_this_module_with_the_strategy(tmp_path):
    ddp = DistributedConfig(strategy="ddp", num_processes=2)
    command = accelerate_command(ddp, tmp_path / "call.pkl")
    assert command[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in command
    assert command[-3:] == ["-m", "workbench.launch", str(tmp_path / "call.pkl")]
    assert command[command.index("--num_processes") + 1] == "2"
    assert command[command.index("--main_process_port") + 1] != "29500"  # one machine: a free port each launch
    two = accelerate_command(DistributedConfig(strategy="ddp", num_machines=2, main_process_port=29611), tmp_path)
    assert two[two.index("--main_process_port") + 1] == "29611"  # several: the agreed one
    fsdp = accelerate_command(DistributedConfig(strategy="fsdp", num_processes=2), tmp_path / "call.pkl")
    assert fsdp[fsdp.index("--config_file") + 1].endswith("configs/accelerate/fsdp2.yaml")
    assert launch_dir(tmp_path / "sft" / "model") == tmp_path / "sft" / ".model.launch"


def test_strategy_none_calls_in_this_process(tmp_path):
    assert run_call(DistributedConfig(), lambda out_dir: str(out_dir), tmp_path, out_dir=tmp_path) == str(tmp_path)
    assert not launch_dir(tmp_path).exists()


def test_deepspeed_is_refused_where_accelerate_would_not_shard(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the strategy can run")
    with pytest.raises(ConfigError, match="strategy: deepspeed needs GPUs.*use strategy: fsdp or ddp"):
        run_call(DistributedConfig(strategy="deepspeed", num_processes=2), train_sft, tmp_path, out_dir=tmp_path)
    assert not launch_dir(tmp_path).exists()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_launched_processes_match_one_in_process(tmp_path, tiny_model_dir, strategy):
    """DDP or FSDP2 over gloo: the same global batch (4 = 2 processes x 2) gives the same steps, loss and weights."""
    from safetensors.torch import load_file

    one = train_sft(sft(4), ROWS, tiny_model_dir, tmp_path / "one", seed=0)
    two = run_call(DistributedConfig(strategy=strategy, num_processes=2), train_sft, tmp_path / "two",
                   sft_cfg=sft(2), data=ROWS, init_dir=tiny_model_dir, out_dir=tmp_path / "two", seed=0)
    assert one["global_step"] == two["global_step"] == 2  # one process at per-device 2 would take 4 steps
    assert abs(one["loss"] - two["loss"]) < 1e-4
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    moved = load_file(str(tiny_model_dir / "model.safetensors"))
    assert max((a[k] - moved[k]).abs().max().item() for k in a) > 1e-3  # training really moved the weights
    assert not (launch_dir(tmp_path / "two") / "call.pkl").exists()
    assert torch.isfinite(torch.tensor(two["loss"]))


@pytest.mark.parametrize("name, kind", [("fsdp2.yaml", "FSDP"), ("deepspeed_zero3.yaml", "DEEPSPEED")])
def test_the_shipped_accelerate_configs_load(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    from workbench.launch import ACCELERATE_CONFIGS

    config = load_config_from_file(str(ACCELERATE_CONFIGS / name))
    assert config.distributed_type.value == kind
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_version"] == 2 and config.fsdp_config["fsdp_reshard_after_forward"]
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    else:
        assert config.deepspeed_config["zero_stage"] == 3 and config.deepspeed_config["zero3_save_16bit_model"]


@pytest.mark.slow
def test_a_second_machine_joins_through_the_shared_run_folder(tmp_path, tiny_model_dir):
    """Two "machines" of one process each (both on this host): machine 1 follows, machine 0 launches."""
    import threading

    from safetensors.torch import load_file

    from workbench.launch import follow

    def machine(rank: int) -> DistributedConfig:
        return DistributedConfig(strategy="ddp", num_processes=1, num_machines=2, machine_rank=rank,
                                 main_process_port=29517)

    joined = []
    follower = threading.Thread(target=lambda: joined.append(follow(tmp_path, machine(1), idle_seconds=20, poll=0.5)))
    follower.start()
    two = run_call(machine(0), train_sft, tmp_path / "two", sft_cfg=sft(2), data=ROWS, init_dir=tiny_model_dir,
                   out_dir=tmp_path / "two", seed=0)
    follower.join(120)
    one = train_sft(sft(4), ROWS, tiny_model_dir, tmp_path / "one", seed=0)
    assert joined == [1] and two["num_processes"] == 2 and one["global_step"] == two["global_step"] == 2
    assert abs(one["loss"] - two["loss"]) < 1e-4
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4


def test_follow_refuses_machine_zero(tmp_path):
    from workbench.launch import follow

    with pytest.raises(ValueError, match="machine_rank: 0 runs the orchestrator"):
        follow(tmp_path, DistributedConfig(), idle_seconds=0)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_the_reward_model_on_two_launched_processes_matches_one(tmp_path, tiny_model_dir, strategy):
    """DDP or FSDP2. Packed rows of 2 or 3 responses (so the processes hold different numbers of pairs), 16 training rows
    (18 preferences less the held-out share) at a global batch of 8: the same steps, loss and weights."""
    from safetensors.torch import load_file

    from reward.train import train_reward_model
    from rounds.full_config import WorkbenchConfig
    from workbench.config import TrackingConfig
    from workbench.preferences import Preference

    prefs = [Preference(id=f"e{i}", prompt=[{"role": "user", "content": f"What is {i} + {i + 1}?"}],
                        chosen=f"Answer: {2 * i + 1}", rejected="I do not know.",
                        edited=f"{i} + {i + 1} = {2 * i + 1}\nAnswer: {2 * i + 1}" if i % 2 else None,
                        level="significantly_better") for i in range(18)]

    def cfg(batch: int):
        config = WorkbenchConfig(tracking=TrackingConfig(backend="none"), device="cpu")
        config.reward.batch_size, config.reward.num_train_epochs = batch, 1.0
        return config

    one = train_reward_model(cfg(8), prefs, tiny_model_dir, tmp_path / "one", seed=0)
    two = run_call(DistributedConfig(strategy=strategy, num_processes=2), train_reward_model, tmp_path / "two",
                   cfg=cfg(4), preferences=prefs, base_dir=tiny_model_dir, out_dir=tmp_path / "two", seed=0)
    assert one["global_step"] == two["global_step"] == 2 and two["num_processes"] == 2
    a, b = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    assert one["heldout_accuracy"] == two["heldout_accuracy"]


@pytest.mark.slow
def test_a_killed_orchestrator_takes_its_launched_processes_with_it(tmp_path):
    """torchrun starts the trainers in sessions of their own; they must not outlive the orchestrator."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")])}
    script = ("import sys; from pathlib import Path; from launch_helpers import nap; "
              "from workbench.config import DistributedConfig; from workbench.launch import run_call; "
              "run_call(DistributedConfig(strategy='ddp', num_processes=2), nap, Path(sys.argv[1]), "
              "seconds=300, out_dir=sys.argv[1])")
    orchestrator = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out")], env=env,
                                    cwd=here.parents[1], start_new_session=True)
    call = str(launch_dir(tmp_path / "out") / "call.pkl")

    def launched() -> list[int]:
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            if call in cmdline and "accelerate" not in cmdline and "--exec" not in cmdline:
                pids.append(int(pid))
        return pids

    deadline = time.time() + 300
    while len(launched()) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert len(launched()) == 2, "the two launched processes never started"
    orchestrator.kill()  # SIGKILL the orchestrator alone, not its group
    orchestrator.wait()
    deadline = time.time() + 30
    while launched() and time.time() < deadline:
        time.sleep(0.2)
    assert launched() == []


def test_accelerate_internals_are_used_in_one_module_written_for_the_installed_accelerate():
    import re
    from pathlib import Path

    import accelerate

    from workbench import accelerate_private

    assert accelerate.__version__.startswith(accelerate_private.ACCELERATE_VERSION)
    repo, internals = Path(__file__).resolve().parents[2], re.compile(r"\baccelerate\.(state|utils\.\w+_utils)\b|AcceleratorState")
    offenders = [f"{path.relative_to(repo)}: {m.group(0)}"
                 for package in ("workbench", "reward", "sampling", "experts", "rounds", "preference_ui")
                 for path in (repo / package).rglob("*.py") if path.name != "accelerate_private.py"
                 for m in internals.finditer(path.read_text(encoding="utf-8"))]
    assert not offenders, "\n".join(offenders)
