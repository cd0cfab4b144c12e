"""Sphinx configuration of the course's website. `make site` (tools/website.py) stages the sources into
build/site-src/ and builds them with this file into build/site/; nothing in a notebook is executed."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python -m tools.website` has it already; a bare sphinx-build does not
    sys.path.insert(0, str(ROOT))
from tools import course  # noqa: E402  (the repository address: its one source is pyproject.toml)

REPO = course.repository(ROOT)

project = "Pixels to GPUs"
author = "the Pixels to GPUs authors"
copyright = "the Pixels to GPUs authors; code Apache-2.0, MNIST CC BY-SA 3.0, names.txt MIT"
html_title = "Pixels to GPUs"

extensions = ["myst_nb"]
exclude_patterns = ["_ipynb/**", "**/.ipynb_checkpoints"]

# myst-nb: show the outputs committed with each notebook, never run one (the notebooks' own tests run them).
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_copy_source = False  # the staged copies differ from the notebooks; the page links to the real .ipynb
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "repository_branch": "main",
    "use_repository_button": True,
    "use_download_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
