"""Every use of accelerate's internal API, in one place, for the accelerate release it was written against.

accelerate 1.15 runs FSDP only on accelerator devices: ``AcceleratorState.__init__`` turns a
multi-process launch that asked for FSDP into ``DistributedType.FSDP`` for MULTI_GPU, MLU, NPU, XPU
and the like, but leaves a CPU launch (``MULTI_CPU``, gloo) as plain DDP and drops the FSDP plugin.
torch's FSDP2 (``fully_shard``) itself shards and trains on the CPU over gloo, and the rest of
accelerate's FSDP2 path (``fsdp2_prepare_model``, the optimizer, ``clip_grad_norm_``,
``get_state_dict``) is device-agnostic, so :func:`enable_fsdp_on_cpu` adds the missing case: a CPU
launch with an FSDP plugin becomes ``DistributedType.FSDP`` with that plugin. Moving to another
accelerate means reading ``AcceleratorState.__init__`` in its source and updating
:data:`ACCELERATE_VERSION`.
"""

from __future__ import annotations

import functools
import os

import accelerate
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

ACCELERATE_VERSION = "1.15."  # the release whose AcceleratorState internals are used below
if not accelerate.__version__.startswith(ACCELERATE_VERSION):
    raise ImportError(f"workbench.accelerate_private: written for accelerate {ACCELERATE_VERSION}x, found "
                      f"{accelerate.__version__}; check which distributed types AcceleratorState.__init__ turns "
                      "into DistributedType.FSDP (and whether MULTI_CPU is among them now) and update "
                      "ACCELERATE_VERSION")

__all__ = ["ACCELERATE_VERSION", "enable_fsdp_on_cpu", "fsdp_requested"]


def fsdp_requested() -> bool:
    """True when `accelerate launch` asked this process for FSDP (its ``ACCELERATE_USE_FSDP``)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def enable_fsdp_on_cpu() -> None:
    """Make accelerate run FSDP on a CPU (gloo) launch that asks for it, as it does on GPUs. Idempotent."""
    init = AcceleratorState.__init__
    if getattr(init, "workbench_fsdp_on_cpu", False):
        return

    @functools.wraps(init)
    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        plugin = kwargs.get("fsdp_plugin")
        if self.distributed_type == DistributedType.MULTI_CPU and plugin is not None and fsdp_requested():
            # What the accelerator-device branch of AcceleratorState.__init__ does, for MULTI_CPU.
            self.distributed_type = DistributedType.FSDP
            if self._mixed_precision != "no":
                plugin.set_mixed_precision(self._mixed_precision)
            self.fsdp_plugin = plugin
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    patched.workbench_fsdp_on_cpu = True
    AcceleratorState.__init__ = patched
