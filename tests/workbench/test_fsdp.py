"""FSDP2 over gloo on 2 CPU processes, through accelerate: sharded, and the same run as 1 process.

"The same run" is checked as the DDP tests check it: the same steps, the same loss within 1e-4 and
the same final weights within 1e-4 at the same global batch. Sharding changes only the order of
float32 sums (a gradient is reduced over 2 processes in place of being summed in one), which moves
a weight by ~1e-7 per step here; a wrong global batch, a dropped gradient shard or an unsynchronised
process moves it by the learning rate (1e-3) or more.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workbench.config import DistributedConfig
from workbench.launch import launch_dir, run_call

pytestmark = pytest.mark.slow
FSDP = DistributedConfig(strategy="fsdp", num_processes=2)
HERE = Path(__file__).resolve().parent


def max_weight_difference(a_dir: Path, b_dir: Path) -> float:
    """The largest element-wise difference between two saved models' weights (the same tensor names)."""
    a, b = load_file(str(a_dir / "model.safetensors")), load_file(str(b_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def sharding_probe(model_dir: str, out_dir: str) -> dict:
    """In each launched process: prepare the model and AdamW with accelerate, take one clipped step; what is held."""
    from accelerate import Accelerator
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor
    from transformers import AutoModelForCausalLM

    local = lambda t: t.to_local() if isinstance(t, DTensor) else t  # noqa: E731
    accelerator = Accelerator(cpu=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    full = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    ids = torch.arange(16).reshape(2, 8) + 10 * accelerator.process_index
    accelerator.backward(model(input_ids=ids, labels=ids).loss)
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    state = [local(v) for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0]
    held = torch.tensor([sum(local(p).numel() for p in model.parameters()), sum(t.numel() for t in state)])
    return {"distributed_type": accelerator.distributed_type.value, "full_parameters": full,
            "held": accelerator.gather(held.unsqueeze(0)).tolist(), "grad_norm": float(grad_norm),
            "wrapped": sorted({type(m).__name__ for m in model.modules() if isinstance(m, FSDPModule)})}


def test_accelerate_shards_the_model_and_the_optimizer_per_decoder_layer(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    probe = run_call(FSDP, sharding_probe, tmp_path / "probe", model_dir=str(tiny_model_dir), out_dir=str(tmp_path))
    assert probe["distributed_type"] == "FSDP"
    assert "FSDPLlamaDecoderLayer" in probe["wrapped"] and "FSDPLlamaForCausalLM" in probe["wrapped"]
    full = probe["full_parameters"]
    for parameters, optimizer_state in probe["held"]:  # each process: about half of the model, Adam's 2 moments
        assert abs(parameters - full / 2) <= 0.01 * full
        assert abs(optimizer_state - full) <= 0.02 * full
    assert sum(p for p, _ in probe["held"]) >= full  # shards cover the model (an odd row count pads one)
    assert torch.isfinite(torch.tensor(probe["grad_norm"])) and probe["grad_norm"] > 0


def test_dpo_under_fsdp_matches_one_process(tmp_path, tiny_model_dir):
    """TRL's DPOTrainer shards the policy and its reference model; 8 pairs at a global batch of 4."""
    from workbench.posttrain.config import DPOConfig
    from workbench.posttrain.dpo import train_dpo

    sys_path = str(HERE / "posttrain")
    import sys

    sys.path.insert(0, sys_path)
    try:
        from test_dpo import pref
    finally:
        sys.path.remove(sys_path)
    prefs = [pref(i, "significantly_better" if i % 2 else "better") for i in range(8)]

    def cfg(batch: int) -> DPOConfig:
        return DPOConfig(per_device_train_batch_size=batch, num_train_epochs=1, learning_rate=1e-3, max_length=128,
                         trl_args={"disable_tqdm": True})

    one = train_dpo(cfg(4), prefs, tiny_model_dir, tmp_path / "one", seed=0)
    two = run_call(FSDP, train_dpo, tmp_path / "two", dpo_cfg=cfg(2), preferences=prefs, sft_dir=tiny_model_dir,
                   out_dir=tmp_path / "two", seed=0)
    assert one["global_step"] == two["global_step"] == 2 and two["num_processes"] == 2
    for key in ("loss", "rewards/margins", "rewards/accuracies", "nll"):
        assert abs(one[key] - two[key]) < 1e-4, key
    assert max_weight_difference(tmp_path / "one", tmp_path / "two") < 1e-4
    assert not (launch_dir(tmp_path / "two") / "call.pkl").exists()
    loads_in_transformers_and_vllm(tmp_path / "two")


def loads_in_transformers_and_vllm(model_dir: Path) -> None:
    """The gathered checkpoint is plain HF: transformers and vLLM load it and agree on a greedy continuation."""
    vllm = pytest.importorskip("vllm")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}],
                                        add_generation_prompt=True)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        hf = model.generate(torch.tensor([ids]), max_new_tokens=8, min_new_tokens=8, do_sample=False)[0, len(ids):]
    engine = vllm.LLM(model=str(model_dir), dtype="float32", max_model_len=256, seed=0, enable_chunked_prefill=False,
                      enforce_eager=True, disable_log_stats=True)
    try:
        params = vllm.SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
        out = engine.generate([{"prompt_token_ids": ids}], params, use_tqdm=False)[0].outputs[0].token_ids
    finally:
        del engine
    assert list(out) == hf.tolist()


def test_pretraining_under_fsdp_matches_one_process(tmp_path, tiny_tokenizer_dir):
    """The pretraining loop sharded: checkpoints and annealing snapshots gathered, the averaged base saved."""
    from test_pretrain_run import config, losses, make_run, run_pretrain, weights

    from workbench.rundir import RunDir, read_manifest

    one, two = make_run(tmp_path / "one", tiny_tokenizer_dir), make_run(tmp_path / "two", tiny_tokenizer_dir)
    run_pretrain(config(one), RunDir(one))
    run_pretrain(config(two, distributed={"strategy": "fsdp", "num_processes": 2}), RunDir(two))
    assert read_manifest(two / "base")["metrics"]["processes"] == 2
    assert losses(two) == pytest.approx(losses(one), abs=1e-4)
    expected = weights(one)
    assert weights(two).keys() == expected.keys()
    assert all(torch.allclose(w, expected[k], atol=1e-4) for k, w in weights(two).items())
