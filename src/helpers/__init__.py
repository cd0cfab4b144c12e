"""The helpers the Pixels to GPUs notebooks share.

Each function is first built by hand in a notebook, then imported from here by the later ones; its
docstring names the notebook that introduced it. The package has layers, listed once in `LAYERS` below
(CONTRIBUTING.md shows the same list, and a test keeps the two in step); a module imports only from its own
layer or lower ones.

Only the two lowest layers are imported here, so `import helpers` stays quick; import the others by name
(`from helpers.optim import SGD`).
"""

from .data import load_mnist, load_names, mnist_splits, three_vs_seven
from .env import environment_report, get_device, set_seed
from .plots import plot_function, show_image, show_images
from .results import check_result

__version__ = "0.1.0"

# The one source for the package's layers (tests/test_layers.py enforces them, CONTRIBUTING.md shows them).
LAYERS: dict[int, tuple[str, ...]] = {
    1: ("env", "plots", "files", "checkpoint", "exercises", "validate"),
    2: ("data", "results"),
    3: ("train", "models", "precision", "optim", "autograd", "convolution", "experiments", "diagnose", "metrics",
        "language", "attention", "timing"),
    4: ("explorer_plots", "distributed"),
    5: ("widgets",),
}


def layers_markdown() -> str:
    """`LAYERS` as the numbered Markdown list that CONTRIBUTING.md carries."""
    return "\n".join(f"{n}. " + " · ".join(f"`{m}`" for m in mods) for n, mods in LAYERS.items())


__all__ = [
    "environment_report",
    "get_device",
    "set_seed",
    "plot_function",
    "show_image",
    "show_images",
    "load_mnist",
    "three_vs_seven",
    "mnist_splits",
    "load_names",
    "check_result",
    "LAYERS",
]
