"""Which number format a device trains in: bf16 or float16 autocast on GPUs, float32 (or native bf16) on CPUs.

Layer 3 of the helpers package: imports nothing from the rest of `helpers`. `helpers.train.fit`'s `amp` setting
goes through `amp_dtype_from_setting`, and its training step runs under `autocast_for`. Introduced in the
`gpu_loop` notebook (mixed precision).
"""

from __future__ import annotations

import os

import torch

__all__ = ["cpu_has_native_bf16", "amp_dtype_for", "amp_dtype_from_setting", "autocast_for"]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (x86 AVX512-BF16 or AMX), where bf16 autocast speeds up
    convolutions and matrix multiplies instead of emulating them slowly. False where torch cannot tell, and
    where the environment variable `HELPERS_CPU_BF16` is `0`: then the float32 path of a CPU without bf16 runs
    (`make test-portable` and `benchmarks/cpu_time_to_99.py` use it to act as such a CPU)."""
    if os.environ.get("HELPERS_CPU_BF16", "").strip() == "0":
        return False
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        try:
            if getattr(cpu, probe)():
                return True
        except (AttributeError, RuntimeError):  # not on this torch or this platform (e.g. ARM)
            continue
    return False


def amp_dtype_for(device) -> torch.dtype | None:
    """The autocast dtype a device should train with: bfloat16 on GPUs that have it natively, float16 on older
    CUDA GPUs (with a gradient scaler), None (plain float32) on the CPU, where bf16 autocast is often slower.
    Introduced in the `gpu_loop` notebook.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    try:
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch
        native = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if native else torch.float16


def amp_dtype_from_setting(amp, device) -> torch.dtype | None:
    """`fit`'s `amp` setting as an autocast dtype: "auto" -> `amp_dtype_for(device)`; True -> that, or bfloat16
    where it says None (the CPU); False -> None (float32)."""
    if amp == "auto":
        return amp_dtype_for(device)
    if amp is True:
        return amp_dtype_for(device) or torch.bfloat16
    if amp is False:
        return None
    raise ValueError(f"amp must be 'auto' (bf16 or float16 on GPUs, off on the CPU), True or False, got {amp!r}.")


def autocast_for(device, amp_dtype: torch.dtype | None):
    """The `torch.autocast` context for `amp_dtype` on `device` (a device or its type, e.g. "cuda"); None: autocast
    off, plain float32."""
    device_type = device if isinstance(device, str) else torch.device(device).type
    return torch.autocast(device_type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None)
