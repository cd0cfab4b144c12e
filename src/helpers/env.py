"""Where the code runs: the device, the random seed, and a report of the environment.

Layer 1 of the helpers package: imports only `validate` (layer 1 too) from the rest of `helpers`.
Introduced in the `start` notebook; every notebook's setup cell uses `set_seed` and `get_device`.
`seconds_per_call` times a function (the `convolutions` notebook); `use_one_thread` runs tiny CPU experiments on one
thread (the `regularization` and `bug_zoo` notebooks).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from helpers.validate import positive_int

__all__ = ["get_device", "sync", "set_seed", "detect_platform", "environment_report", "EnvironmentReport",
           "seconds_per_call", "use_one_thread"]


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the device: CUDA if there is a GPU, then Apple's MPS, then the CPU.

    Nothing is cached: each call looks again (it is cheap). A notebook calls it once, in its setup cell, and
    passes `device` on.

    `prefer` (or the environment variable `HELPERS_DEVICE`) forces a choice, for example "cpu" to
    compare speeds on a GPU machine. Asking for a device that is not there is an error that says so.
    Introduced in the `tensors` notebook (moving tensors to the device).
    """
    choice = prefer or os.environ.get("HELPERS_DEVICE")
    if choice:
        try:
            device = torch.device(choice)
        except (RuntimeError, TypeError) as e:
            raise ValueError(
                f"{choice!r} is not a device PyTorch knows ({e}). Use 'cpu', 'cuda', 'cuda:0' or 'mps', "
                "or leave prefer (and HELPERS_DEVICE) unset to let get_device() pick what is available."
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"You asked for the device {choice!r}, but PyTorch sees no CUDA GPU here. "
                "Unset HELPERS_DEVICE (or pass prefer=None) to let get_device() pick what is available."
            )
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(
                f"You asked for the device {choice!r}, but Apple's MPS backend is not available here. "
                "Unset HELPERS_DEVICE (or pass prefer=None) to let get_device() pick what is available."
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def sync(device) -> None:
    """Wait until the GPU has finished its queued work, so a timer reads the real time (no-op on the CPU).

    Introduced in the `gpu_loop` notebook.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def set_seed(seed: int = 42, deterministic: bool = False) -> int:
    """Seed every random number generator the course uses: Python's, NumPy's and PyTorch's (all devices).

    With `deterministic=True` PyTorch is also asked for deterministic kernels (slower on a GPU).
    Returns the seed, so a notebook can print what it used. Introduced in the `start` notebook.
    """
    seed = positive_int(seed, "seed", example="42, as in set_seed(42)", minimum=0)
    if seed >= 2**63:
        raise ValueError(f"seed must be below 2**63 (PyTorch's limit), got {seed}. Try set_seed(42).")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return seed


def detect_platform() -> str:
    """Say where the notebook runs: "colab", "kaggle", "jupyterlab" (or another Jupyter front end), or "script"."""
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ or "KAGGLE_URL_BASE" in os.environ:
        return "kaggle"
    if "ipykernel" in sys.modules:
        return "jupyterlab"
    return "script"


_GPU_HINTS = {
    "colab": "Runtime → Change runtime type → Hardware accelerator: T4 GPU, then run the notebook again.",
    "kaggle": "Settings (right panel) → Accelerator → GPU T4 x2 or P100; phone verification may be needed.",
}


@dataclass
class EnvironmentReport:
    """What `environment_report()` found; printing it gives one line per fact."""

    platform: str
    python: str
    torch: str
    fastai: str | None
    device: str
    device_name: str
    cpu_count: int
    advice: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"platform : {self.platform}",
            f"python   : {self.python}",
            f"torch    : {self.torch}",
            f"fastai   : {self.fastai or 'not installed (only the `modules` notebook and the benchmarks need it)'}",
            f"device   : {self.device} ({self.device_name})",
            f"cpu cores: {self.cpu_count}",
        ]
        lines += [f"advice   : {a}" for a in self.advice]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython shows the readable form
        p.text(str(self))


def environment_report() -> EnvironmentReport:
    """Collect the facts a learner (or a bug report) needs: platform, versions, device.

    On Colab or Kaggle without a GPU the report says how to switch one on. Introduced in the `start` notebook.
    fastai's version is read from its installed metadata: importing all of fastai would take seconds.
    """
    try:
        fastai_version = importlib.metadata.version("fastai")
    except importlib.metadata.PackageNotFoundError:  # fastai is optional outside the `modules` notebook
        fastai_version = None
    where = detect_platform()
    device = get_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple GPU (Metal)"
    else:
        name = platform.processor() or platform.machine() or "CPU"
    advice = []
    if device.type == "cpu":
        if where in _GPU_HINTS:
            advice.append("No GPU in this session. To get one: " + _GPU_HINTS[where])
        else:
            advice.append("No GPU found: every notebook still runs on the CPU; the `gpu_loop` notebook trains fewer epochs.")
    return EnvironmentReport(
        platform=where,
        python=platform.python_version(),
        torch=torch.__version__,
        fastai=fastai_version,
        device=str(device),
        device_name=name,
        cpu_count=os.cpu_count() or 1,
        advice=advice,
    )


# ------------------------------------------------------------------------------ timing and threads


def seconds_per_call(fn, repeat: int = 5, number: int = 1, warmup: int = 1) -> float:
    """How long one call of `fn()` takes, in seconds: the fastest of `repeat` timings of `number` calls each.

    `warmup` calls run first, untimed (the first call of an operation pays for memory allocation and kernel
    choice). The fastest timing is the one least disturbed by whatever else the machine was doing. On a GPU, make
    `fn` end with `torch.cuda.synchronize()` so that the work is finished when the clock stops. Introduced in the
    `convolutions` notebook (a loop over positions against `F.conv2d`).
    """
    import time

    if not callable(fn):
        raise TypeError(f"seconds_per_call wants a function to call, e.g. lambda: F.conv2d(x, w); got {fn!r}.")
    repeat = positive_int(repeat, "seconds_per_call: repeat", example="5")
    number = positive_int(number, "seconds_per_call: number", example="100")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise ValueError(f"seconds_per_call: warmup must be an int ≥ 0, got {warmup!r}.")
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def use_one_thread(device=None) -> int:
    """On a CPU, make PyTorch use one thread; return the number it used before.

    Tiny models (a few small matrix products per step) run fastest on one CPU thread: splitting such small
    products over several threads costs more in coordination than it saves, and a shared machine stays
    responsive. On a GPU (`device` of type "cuda" or "mps") nothing changes. Used by the `regularization` and
    `bug_zoo` notebooks, whose experiments are tiny.
    """
    before = torch.get_num_threads()
    if device is None or torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    return before
