"""Checkpoints that survive a crash, and the random-number states that make a resumed run exact.

Layer 1 of the helpers package: imports only `files` (layer 1 too) from the rest of `helpers`.
Introduced in the `gpu_loop` notebook.

- `save_checkpoint(path, **state)` writes atomically: to a temporary file in the same folder, flushed to disk,
  then renamed over `path` with `os.replace`. A crash (or a kill) in the middle leaves the previous checkpoint
  untouched and no half-written file behind.
- `load_checkpoint(path)` reads with `torch.load(..., weights_only=True)`, which refuses to run code hidden in a
  file. That is why everything here is stored as tensors, numbers, strings, lists and dicts only.
- `get_rng_state()` / `set_rng_state()` capture and restore every random-number generator a training run
  uses: Python's, NumPy's, PyTorch's (CPU and every GPU), and optionally the generator that shuffles the data.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "get_rng_state", "set_rng_state"]


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read (truncated, corrupt, or not a safe checkpoint)."""


def save_checkpoint(path, **state) -> Path:
    """Save the keyword arguments as one dict to `path`, atomically. Returns the path.

    Example: `save_checkpoint("run.pt", model=model.state_dict(), opt=opt.state_dict(), epoch=3,
    rng=get_rng_state(generator))`. Values must be things `torch.load(weights_only=True)` accepts: tensors,
    numbers, strings, None, and lists/tuples/dicts of them (every `state_dict()` qualifies).
    Introduced in the `gpu_loop` notebook.
    """
    if not state:
        raise ValueError("save_checkpoint got nothing to save: pass the state as keywords, e.g. model=model.state_dict().")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"save_checkpoint needs a file name, but {path} is a folder: use e.g. {path / 'checkpoint.pt'}.")
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by `save_checkpoint`, safely (`weights_only=True`). Returns the dict.

    Tensors land on `map_location` (the CPU by default; `load_state_dict` then copies them to the model's
    device). A missing file raises `FileNotFoundError`, an unreadable one `CheckpointError`; both say what to do.
    Introduced in the `gpu_loop` notebook.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No checkpoint at {path}. Train once with checkpoint_path={str(path)!r} to create it, "
            "or start from scratch (resume=False)."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} holds objects that a safe load (weights_only=True) refuses: {e}. Only load files you trust; "
            "save checkpoints with helpers.checkpoint.save_checkpoint, which stores plain tensors and numbers."
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt: {type(e).__name__}: {e}). "
            "Delete it and train from scratch (resume=False), or load an older copy if you kept one."
        ) from e
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} holds a {type(state).__name__}, not the dict save_checkpoint writes. Was it saved by another tool?"
        )
    return state


def get_rng_state(generator: torch.Generator | None = None) -> dict:
    """Capture every random-number generator a training run draws from, as weights_only-safe values.

    Python's `random` (as a list of ints), NumPy's global generator (its key as a tensor), PyTorch's CPU
    generator, every CUDA device's generator (when CUDA is in use), and `generator` (for example the one that
    shuffles the data) if given. Restore with `set_rng_state`. Introduced in the `gpu_loop` notebook.
    """
    version, internal, gauss = random.getstate()
    npstate = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "bit_generator": npstate["bit_generator"],
            "key": torch.from_numpy(npstate["state"]["key"].astype(np.int64)),
            "pos": int(npstate["state"]["pos"]),
            "has_gauss": int(npstate["has_gauss"]),
            "gauss": float(npstate["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    """Restore the generators captured by `get_rng_state` (and `generator`, if the state holds one).

    Introduced in the `gpu_loop` notebook.
    """
    missing = {"python", "numpy", "torch"} - set(state)
    if missing:
        raise KeyError(f"set_rng_state needs the dict get_rng_state returns; this one lacks {sorted(missing)}.")
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state({
        "bit_generator": npst["bit_generator"],
        "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
        "has_gauss": npst["has_gauss"],
        "gauss": npst["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if state.get("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                "This checkpoint was saved on a GPU and holds CUDA random states, but no GPU is available here. "
                "Resume on a GPU machine, or start a fresh run to train on this one."
            )
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            torch.cuda.set_rng_state(state["cuda"][0])
    if generator is not None:
        if "generator" not in state:
            raise KeyError("set_rng_state got a generator to restore, but the state was captured without one.")
        generator.set_state(state["generator"])
