# Pixels to GPUs — the two commands: `make lab` (open the notebooks) and `make test` (run every test).
# Both create the environment first. Nothing is registered outside this folder.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888

.PHONY: lab test test-portable test-fast lint constraints site clean-notebooks run-notebooks benchmarks sync venv clean

# `make .venv`: a plain venv with the project installed editable; `-c constraints.txt` pins every package (torch to
# 2.13.0: where pip finds its CPU build, 2.13.0+cpu, it takes that one).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

.venv venv: $(STAMP)

# The `docs` extra (Sphinx, myst-nb, sphinx-book-theme) on top of the course's environment, for `make site` only.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,docs]"
	touch $(DOCS_STAMP)

# As root (containers, CI machines) JupyterLab refuses to start unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(ROOT_FLAG)

# Unit tests, then every notebook under nbval (see [tool.pytest.ini_options] in pyproject.toml).
test: $(STAMP)
	rm -f build/results.jsonl
	HELPERS_RESULTS=$(CURDIR)/build/results.jsonl $(BIN)/python -m pytest

# Every notebook under nbval again, as another machine would run it (tools/personality.py: one instruction-set
# level down, one thread, bf16 off): a checked output that holds a trained figure fails here. CI runs it after `test`.
test-portable: $(STAMP)
	$(BIN)/python tools/personality.py --describe
	env $$($(BIN)/python tools/personality.py) NOTEBOOK_TIMES=$(CURDIR)/build/notebook_times_portable.json \
		$(BIN)/python -m pytest notebooks

# The edit-test loop (under a minute): tests/ only, without the tests marked slow or browser; no notebooks.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "not slow and not browser"

# The course as a static website, from the committed notebooks and their outputs (nothing is executed):
# build/site/index.html. Publish by copying build/site/ to any static host.
site: $(DOCS_STAMP)
	$(BIN)/python -m tools.website

# The linter (ruff, configured in pyproject.toml: pyflakes, pycodestyle, import order) over src/, tests/, tools/,
# benchmarks/ and docs/; CI runs it before the tests. `ruff check --fix .` repairs what it can by itself.
lint: $(STAMP)
	$(BIN)/ruff check .

# Regenerate constraints.txt, the exact versions of every package, from pyproject.toml (all extras) with uv's
# resolver, for every Python the README promises (3.10 and later) and every platform at once: where they need
# different versions, a line carries a marker such as `; python_full_version < '3.11'`. torch stays at
# TORCH_VERSION; every other package keeps the version constraints.txt already has, unless it no longer fits
# (`make constraints UPGRADE=--upgrade` moves every package to its newest version). Never edit the file by hand.
TORCH_VERSION := 2.13.0
UPGRADE ?=
constraints: $(STAMP)
	mkdir -p build
	echo "torch==$(TORCH_VERSION)" > build/torch-pin.txt
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.10 $(UPGRADE) \
		--constraint build/torch-pin.txt --custom-compile-command "make constraints" --quiet -o constraints.txt

# Execute notebooks in place, then clean them: `make run-notebooks NB=notebooks/02_*.ipynb`.
NB ?= notebooks/*.ipynb
run-notebooks: $(STAMP)
	$(BIN)/python tools/nbtool.py run $(NB)

# Strip per-machine metadata from committed notebooks (a test fails when one is not clean).
clean-notebooks: $(STAMP)
	$(BIN)/python tools/nbtool.py clean notebooks/*.ipynb

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf build .pytest_cache

# Regenerate every generated part of the repository from its one source (tools/course.py lists them: the setup
# cells, the README's links and reference table, CONTRIBUTING's budget table and layer list).
sync: $(STAMP)
	$(BIN)/python tools/course.py sync
