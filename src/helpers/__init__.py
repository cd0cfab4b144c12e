"""The helpers the Pixels to GPUs notebooks share.

Each function is first built by hand in a notebook, then imported from here by the later ones; its
docstring names the notebook that introduced it. The package has layers, and a lower layer never imports
a higher one:

1. `env` (device, seed, environment report) · `plots` · `checkpoint`
2. `data` (MNIST: find, download, verify, parse, cache) · `results` (reference numbers, `check_result`)
3. `train` (the finished training loop) · `optim` (hand-made optimizers) · `diagnose` (bug detectors)
4. `widgets` (sliders over pure experiment functions) · `distributed`

Only the two lowest layers are imported here, so `import helpers` stays quick; import the others by name
(`from helpers.optim import SGD`).
"""

from .env import environment_report, get_device, set_seed
from .plots import plot_function, show_image, show_images
from .data import load_mnist, three_vs_seven
from .results import check_result

__version__ = "0.1.0"
__all__ = [
    "environment_report",
    "get_device",
    "set_seed",
    "plot_function",
    "show_image",
    "show_images",
    "load_mnist",
    "three_vs_seven",
    "check_result",
]
