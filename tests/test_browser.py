"""A real browser moves the learning-rate slider in a real JupyterLab, and the model retrains; and it moves
a slider of the live graph and presses its step button, and the graph is redrawn and the loss falls.

Starts the venv's JupyterLab on 127.0.0.1 (random free port, a token, its own config/runtime/data/settings
folders in a temporary directory, autosave off) on a COPY of the notebook, drives Debian's Chromium with
Playwright: open the notebook, Run All Cells, wait for the explorer's result line and plot, press keys on the
lr slider, and check that the text and the picture both change. A screenshot goes to artifacts/browser/.

Needs /usr/bin/chromium (`apt-get install chromium`); skipped, saying so, without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest
from playwright import sync_api  # the dev extra: `make .venv` installs it

from tools.course import setup_source  # the setup cell's one source

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts" / "browser"
# The notebooks driven as they are: the `three_vs_seven` notebook (the learning-rate explorer) and the `backprop`
# notebook (the live graph), found by their stems. The attention explorer gets a small notebook built here.
NOTEBOOK_04 = next(iter(sorted((ROOT / "notebooks").glob("*_mnist_3_vs_7_from_scratch.ipynb"))))
NOTEBOOK_BACKPROP = next(iter(sorted((ROOT / "notebooks").glob("*_backprop_by_hand.ipynb"))))

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

SETUP = setup_source()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's Chromium at /usr/bin/chromium: `apt-get install -y chromium` "
                              "(.ci/run installs it) to run the browser test"),
]


def _small_notebook(title: str, code: str) -> nbformat.NotebookNode:
    """A notebook of four cells: `title`, the setup cell, imports/seed/device, and `code`."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Browser test · {title}"),
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell("from helpers import set_seed, get_device\nset_seed(42)\ndevice = get_device()\n"
                                  "device"),
        nbformat.v4.new_code_cell(code),
    ]
    return nb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@contextlib.contextmanager
def _jupyterlab(tmp_path, notebook: Path | None, small: nbformat.NotebookNode | None, small_name: str):
    """A private JupyterLab serving a copy of `notebook` (or the `small` one when `notebook` is None); yields
    (url, server log path); killed afterwards."""
    work = tmp_path / "work"
    work.mkdir()
    if notebook is not None:
        name = notebook.name
        shutil.copy(notebook, work / name)
    else:
        name = small_name
        nbformat.write(small, work / name)
    settings = tmp_path / "settings"
    _write_json(settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings", {"autosave": False})
    # Render every cell (no windowing): a long notebook's off-screen widgets otherwise read as empty text.
    _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})
    _write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                {"checkForUpdates": False, "fetchNews": "false"})
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),  # the venv's share/jupyter is still found via sys.prefix
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
    })
    if "MNIST_DIR" not in env and (ROOT.parent / "shared" / "data" / "mnist").is_dir():
        env["MNIST_DIR"] = str(ROOT.parent / "shared" / "data" / "mnist")
    port, token = _free_port(), uuid.uuid4().hex
    jupyter = Path(sys.executable).with_name("jupyter")
    log = tmp_path / "jupyterlab.log"
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 45
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within 45 s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield f"{base}/lab/tree/{name}?token={token}", log
    finally:
        proc.terminate()  # SIGTERM to the server we started: it shuts its kernels down, then exits
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session we started: the server and its kernel
            proc.wait(timeout=5)


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a copy of the `three_vs_seven` notebook (the learning-rate explorer)."""
    with _jupyterlab(tmp_path, NOTEBOOK_04, None, "") as served:
        yield served


@pytest.fixture
def graph_lab(tmp_path):
    """JupyterLab on a copy of the `backprop` notebook (the live graph)."""
    with _jupyterlab(tmp_path, NOTEBOOK_BACKPROP, None, "") as served:
        yield served


def _run_all_cells(page, tries: int = 4) -> None:
    """Menu Run → Run All Cells, as a learner would; retried when a click lands before the page is ready."""
    started = page.locator(".jp-Notebook .jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]")).first
    for attempt in range(tries):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
        item = page.locator(".lm-Menu-item:not(.lm-mod-disabled)",
                            has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))).first
        item.wait_for(timeout=5_000)
        item.click()
        try:
            started.wait_for(timeout=10_000)
            return
        except Exception:
            page.keyboard.press("Escape")
            if attempt == tries - 1:
                raise


@contextlib.contextmanager
def _browser_page(log: Path, failure_png: str):
    """A headless Chromium page (1400 x 1000); on a failure, a screenshot and the server log's tail."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            yield page
        except Exception:
            page.screenshot(path=str(ARTIFACTS / failure_png))
            print(f"server log ({log}):\n{log.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            browser.close()


def _open_and_run_all(page, url: str, code: str):
    """Open the notebook, wait for the real cells (an editor showing `code`, not the placeholder of a cold
    server) and an idle kernel, then Run All Cells. Returns the locator of the idle indicator."""
    page.goto(url)
    page.locator(".jp-Notebook .jp-Cell .cm-content", has_text=code).first.wait_for()
    idle = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
    idle.first.wait_for(timeout=45_000)
    _run_all_cells(page)
    return idle


def test_lr_slider_retrains_in_a_real_browser(lab):
    url, log = lab
    run_timeout = 150_000
    with _browser_page(log, "failure.png") as page:
        idle = _open_and_run_all(page, url, "lr_explorer(")
        result = page.locator(".p2g-lr_explorer .p2g-result").first
        plot = page.locator(".p2g-lr_explorer img.p2g-plot, .p2g-lr_explorer .p2g-plot img").first
        page.locator(".p2g-lr_explorer .p2g-result", has_text="valid accuracy").first.wait_for(timeout=run_timeout)
        idle.first.wait_for(timeout=run_timeout)
        plot.wait_for()
        result.scroll_into_view_if_needed()
        text0, src0 = result.inner_text(), plot.get_attribute("src")
        assert "valid accuracy" in text0 and src0

        handle = page.locator(".p2g-lr_explorer .p2g-lr .noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        page.keyboard.press("ArrowRight")  # one step up the log scale: 1.0 → 1.26
        page.wait_for_function(
            "([t, s]) => { const r = document.querySelector('.p2g-lr_explorer .p2g-result');"
            " const i = document.querySelector('.p2g-lr_explorer img.p2g-plot, .p2g-lr_explorer .p2g-plot img');"
            " return r && i && r.innerText !== t && i.getAttribute('src') !== s; }",
            arg=[text0, src0], timeout=30_000)
        text1, src1 = result.inner_text(), plot.get_attribute("src")
        assert text1 != text0 and src1 != src0
        assert "lr 1.26" in text1, text1

        handle.focus()
        page.keyboard.press("End")  # the top of the slider: lr 10
        page.wait_for_function(
            "t => { const r = document.querySelector('.p2g-lr_explorer .p2g-result');"
            " return r && r.innerText !== t; }",
            arg=text1, timeout=30_000)
        text2, src2 = result.inner_text(), plot.get_attribute("src")
        assert "lr 10" in text2, text2
        assert src2 not in (src0, src1)
        size = page.evaluate(
            "async s => (await (await fetch(s)).arrayBuffer()).byteLength", src2)
        assert size > 5_000, "the plot should be a real picture"

        page.locator(".p2g-lr_explorer").first.scroll_into_view_if_needed()
        shot = ARTIFACTS / "lr_explorer.png"
        page.screenshot(path=str(shot))
        print(f"\nscreenshot: {shot}\nbefore: {text0!r}\nafter ArrowRight: {text1!r}\nafter End: {text2!r}")


def test_graph_explorer_moves_in_a_real_browser(graph_lab):
    url, log = graph_lab
    scope = ".p2g-graph_explorer"
    with _browser_page(log, "graph_failure.png") as page:
        idle = _open_and_run_all(page, url, "graph_explorer(")
        result = page.locator(f"{scope} .p2g-result").first
        plot = page.locator(f"{scope} img.p2g-plot, {scope} .p2g-plot img").first
        page.locator(f"{scope} .p2g-result", has_text="press step").first.wait_for(timeout=120_000)
        idle.first.wait_for(timeout=120_000)
        plot.wait_for()
        result.scroll_into_view_if_needed()
        text0, src0 = result.inner_text(), plot.get_attribute("src")
        assert "loss 2.0074" in text0 and src0, text0

        handle = page.locator(f"{scope} .p2g-x1 .noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        page.keyboard.press("ArrowLeft")  # x1: 1.00 → 0.99, every node recomputed
        changed = (f"([t, s]) => {{ const r = document.querySelector('{scope} .p2g-result');"
                   f" const i = document.querySelector('{scope} img.p2g-plot, {scope} .p2g-plot img');"
                   " return r && i && r.innerText !== t && i.getAttribute('src') !== s; }")
        page.wait_for_function(changed, arg=[text0, src0], timeout=30_000)
        text1, src1 = result.inner_text(), plot.get_attribute("src")
        assert "press step" in text1 and "step 1" not in text1, text1

        page.locator(f"{scope} .p2g-step").first.click()
        page.wait_for_function(changed, arg=[text1, src1], timeout=30_000)
        text2 = result.inner_text()
        assert "step 1: the loss fell" in text2, text2
        page.locator(f"{scope} .p2g-step").first.click()
        page.locator(f"{scope} .p2g-result", has_text="step 2: the loss fell").first.wait_for(timeout=30_000)

        page.locator(scope).first.scroll_into_view_if_needed()
        shot = ARTIFACTS / "graph_explorer.png"
        page.screenshot(path=str(shot))
        print(f"\nscreenshot: {shot}\nbefore: {text0!r}\nafter ArrowLeft: {text1!r}\nafter step: {text2!r}")


@pytest.fixture
def attention_lab(tmp_path):
    """JupyterLab on a small notebook with the `attention` notebook's explorer over an untrained tiny GPT (the
    notebook itself trains for minutes first; what the explorer draws does not depend on the training)."""
    small = _small_notebook("the attention explorer",
                            "from helpers.attention import TinyGPT\nfrom helpers.widgets import attention_explorer\n"
                            "set_seed(42)\nattention_explorer(TinyGPT(16, 96, 4, 3), name='christopher')")
    with _jupyterlab(tmp_path, None, small, "browser_attention_explorer.ipynb") as served:
        yield served


def test_attention_explorer_reacts_in_a_real_browser(attention_lab):
    url, log = attention_lab
    scope = ".p2g-attention_explorer"
    with _browser_page(log, "attention_failure.png") as page:
        idle = _open_and_run_all(page, url, "attention_explorer(")
        result = page.locator(f"{scope} .p2g-result").first
        plot = page.locator(f"{scope} img.p2g-plot, {scope} .p2g-plot img").first
        page.locator(f"{scope} .p2g-result", has_text="nats per character").first.wait_for(timeout=120_000)
        idle.first.wait_for(timeout=120_000)
        plot.wait_for()
        result.scroll_into_view_if_needed()
        text0, src0 = result.inner_text(), plot.get_attribute("src")
        assert ".christopher" in text0 and "T = 1.00" in text0 and src0, text0

        handle = page.locator(f"{scope} .p2g-temperature .noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        page.keyboard.press("ArrowRight")  # one step up the log scale: T 1.00 → 1.05
        changed = (f"([t, s]) => {{ const r = document.querySelector('{scope} .p2g-result');"
                   f" const i = document.querySelector('{scope} img.p2g-plot, {scope} .p2g-plot img');"
                   " return r && i && r.innerText !== t && i.getAttribute('src') !== s; }")
        page.wait_for_function(changed, arg=[text0, src0], timeout=30_000)
        text1, src1 = result.inner_text(), plot.get_attribute("src")
        assert "T = 1.05" in text1, text1

        box = page.locator(f"{scope} .p2g-name input").first
        box.fill("ava")
        box.press("Enter")  # the text box sends its value on Enter
        page.wait_for_function(changed, arg=[text1, src1], timeout=30_000)
        text2 = result.inner_text()
        assert ".ava" in text2, text2

        page.locator(scope).first.scroll_into_view_if_needed()
        shot = ARTIFACTS / "attention_explorer.png"
        page.screenshot(path=str(shot))
        print(f"\nscreenshot: {shot}\nbefore: {text0!r}\nafter ArrowRight: {text1!r}\nafter typing: {text2!r}")
