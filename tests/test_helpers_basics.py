"""The small helpers every notebook leans on: env, plots, results, exercises and the training basics.

Plots are drawn with matplotlib's Agg backend (no window); torch is the oracle wherever a value is computed.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import random
import subprocess
import sys
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import helpers  # noqa: E402
from helpers import env, results  # noqa: E402
from helpers.exercises import check, explain_mismatch  # noqa: E402
from helpers.plots import plot_function, show_image, show_images  # noqa: E402
from helpers.results import ResultMismatch, check_result  # noqa: E402
from helpers.train import accuracy, batches, binary_accuracy  # noqa: E402
from helpers.validate import positive_int  # noqa: E402

# ---------------------------------------------------------------------------------------------- env


def _draws():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist(), torch.randint(0, 100, (4,)).tolist()


def test_set_seed_makes_python_numpy_and_torch_repeatable():
    assert env.set_seed(123) == 123
    first = _draws()
    env.set_seed(123)
    assert _draws() == first
    env.set_seed(124)
    assert _draws() != first


def test_set_seed_accepts_numpy_integers():
    assert env.set_seed(np.int64(7)) == 7
    first = _draws()
    env.set_seed(7)
    assert _draws() == first


@pytest.mark.parametrize("seed", [-1, 1.5, "42", None, True, 2**64])
def test_set_seed_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match=r"set_seed\(42\)"):
        env.set_seed(seed)


@pytest.fixture
def no_device_env(monkeypatch):
    monkeypatch.delenv("HELPERS_DEVICE", raising=False)


def test_get_device_picks_the_cpu_here(no_device_env):
    if torch.cuda.is_available() or env._mps_available():
        pytest.skip("this machine has a GPU; the CPU-only behaviour is tested on CPU machines")
    assert env.get_device() == torch.device("cpu")


def test_get_device_honours_prefer_and_the_environment(no_device_env, monkeypatch):
    assert env.get_device(prefer="cpu") == torch.device("cpu")
    monkeypatch.setenv("HELPERS_DEVICE", "cpu")
    assert env.get_device() == torch.device("cpu")
    assert isinstance(env.get_device(), torch.device)


def test_asking_for_cuda_without_a_gpu_is_a_helpful_error(no_device_env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError) as info:
        env.get_device(prefer="cuda")
    msg = str(info.value)
    assert "'cuda'" in msg and "no CUDA GPU" in msg and "HELPERS_DEVICE" in msg
    monkeypatch.setenv("HELPERS_DEVICE", "cuda:0")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        env.get_device()


def test_asking_for_mps_where_there_is_none_is_a_helpful_error(no_device_env, monkeypatch):
    monkeypatch.setattr(env, "_mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS backend is not available"):
        env.get_device(prefer="mps")


def test_an_unknown_device_name_is_a_helpful_error(no_device_env):
    with pytest.raises(ValueError, match="'cpu', 'cuda'"):
        env.get_device(prefer="gpu")


PLATFORM_VARS = ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "COLAB_RELEASE_TAG", "COLAB_GPU")


@pytest.fixture
def plain_platform(monkeypatch):
    """A process that looks like a plain script: no Colab/Kaggle variables or modules, no ipykernel."""
    for var in PLATFORM_VARS:
        monkeypatch.delenv(var, raising=False)
    for mod in ("google.colab", "ipykernel"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    monkeypatch.delenv("HELPERS_DEVICE", raising=False)
    return monkeypatch


def test_detect_platform(plain_platform):
    mp = plain_platform
    assert env.detect_platform() == "script"
    mp.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert env.detect_platform() == "jupyterlab"
    mp.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert env.detect_platform() == "kaggle"
    mp.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert env.detect_platform() == "colab"


def _cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(env, "_mps_available", lambda: False)


def test_environment_report_fields(plain_platform):
    _cpu_only(plain_platform)
    report = env.environment_report()
    assert report.platform == "script"
    assert report.python == ".".join(map(str, sys.version_info[:3]))
    assert report.torch == torch.__version__
    assert report.device == "cpu" and report.device_name
    assert report.cpu_count >= 1
    text = str(report)
    for label in ("platform", "python", "torch", "fastai", "device", "cpu cores", "advice"):
        assert label in text
    assert torch.__version__ in text
    assert report.advice == ["No GPU found: every notebook still runs on the CPU; the `gpu_loop` notebook trains "
                             "fewer epochs."]


def test_environment_report_reads_fastai_version_without_importing_fastai():
    # in a fresh interpreter: this test process may have imported fastai already
    code = ("import sys, helpers.env as env; r = env.environment_report(); "
            "print(r.fastai); print(sorted(m for m in sys.modules if m.split('.')[0] == 'fastai'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "HELPERS_DEVICE": "cpu"}).stdout.splitlines()
    assert out == [importlib.metadata.version("fastai"), "[]"]


def test_environment_report_without_fastai(plain_platform):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    _cpu_only(plain_platform)
    plain_platform.setattr(env.importlib.metadata, "version", not_installed)
    report = env.environment_report()
    assert report.fastai is None
    assert "fastai   : not installed (only the `modules` notebook and the benchmarks need it)" in str(report)


@pytest.mark.parametrize("where, setup, hint", [
    ("kaggle", lambda mp: mp.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive"), "Accelerator"),
    ("colab", lambda mp: mp.setitem(sys.modules, "google.colab", types.ModuleType("google.colab")), "Runtime"),
])
def test_environment_report_gives_gpu_advice_on_hosted_platforms(plain_platform, where, setup, hint):
    _cpu_only(plain_platform)
    setup(plain_platform)
    report = env.environment_report()
    assert report.platform == where
    assert len(report.advice) == 1
    assert report.advice[0].startswith("No GPU in this session. To get one:")
    assert hint in report.advice[0] and "GPU" in report.advice[0]
    assert f"advice   : {report.advice[0]}" in str(report)


def test_package_exports():
    for name in helpers.__all__:
        value = getattr(helpers, name)
        assert name.isupper() or callable(value), name  # functions and classes, plus constants such as LAYERS


# -------------------------------------------------------------------------------------------- plots


@pytest.mark.parametrize("shape", [(784,), (28, 28), (1, 28, 28)])
def test_show_image_accepts_the_usual_shapes_and_draws_into_a_given_ax(shape):
    img = torch.arange(784, dtype=torch.float32).reshape(shape) / 783
    _, ax = plt.subplots()
    out = show_image(img, ax=ax, title="a digit")
    assert out is ax
    [picture] = ax.get_images()
    np.testing.assert_allclose(picture.get_array(), (torch.arange(784.0) / 783).reshape(28, 28).numpy())
    assert ax.get_title() == "a digit" and list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []


def test_show_image_takes_uint8_numpy_and_makes_its_own_axes():
    ax = show_image(np.full((28, 28), 255, dtype=np.uint8))
    assert ax.get_images()[0].get_array().shape == (28, 28)


@pytest.mark.parametrize("shape, words", [
    ((783,), "not a square image"),
    ((3, 28, 28), "show_images"),
    ((2, 2, 2, 2), "(H, W)"),
])
def test_show_image_rejects_bad_shapes_helpfully(shape, words):
    with pytest.raises(ValueError) as info:
        show_image(torch.zeros(shape))
    assert words in str(info.value)


def test_show_images_grid():
    imgs = torch.rand(5, 28, 28)
    axs = show_images(imgs, nrows=2, titles=list("abcde"), suptitle="five digits")
    assert axs.shape == (2, 3)
    flat = axs.reshape(-1)
    assert [ax.get_title() for ax in flat[:5]] == list("abcde")
    for i in range(5):
        np.testing.assert_allclose(flat[i].get_images()[0].get_array(), imgs[i].numpy())
    assert not flat[5].axison and not flat[5].get_images()  # the spare cell stays empty
    assert flat[0].figure._suptitle.get_text() == "five digits"


def test_show_images_into_given_axes_and_bad_input():
    _, axs = plt.subplots(1, 2)
    assert show_images([torch.rand(784), torch.rand(28, 28)], axs=axs) is axs
    with pytest.raises(ValueError, match="no images"):
        show_images([])
    with pytest.raises(ValueError, match="one title per image"):
        show_images(torch.rand(3, 28, 28), titles=["a"])
    with pytest.raises(ValueError, match="raise nrows or ncols"):
        show_images(torch.rand(3, 28, 28), axs=axs)


def test_plot_function_draws_f_and_labels_the_axes():
    def square(x):
        return x**2

    ax = plot_function(square, -3, 3, title="a parabola", n=61)
    [line] = ax.get_lines()
    x = torch.linspace(-3, 3, 61)
    np.testing.assert_allclose(line.get_xdata(), x.numpy())
    np.testing.assert_allclose(line.get_ydata(), (x**2).numpy())
    assert ax.get_title() == "a parabola" and ax.get_xlabel() == "x" and ax.get_ylabel() == "square(x)"

    _, ax2 = plt.subplots()
    assert plot_function(torch.sigmoid, ax=ax2, xlabel="z", ylabel="probability") is ax2
    assert ax2.get_xlabel() == "z" and ax2.get_ylabel() == "probability"
    assert plot_function(lambda x: 2 * x).get_ylabel() == "f(x)"


def test_plot_function_rejects_bad_input():
    with pytest.raises(ValueError, match="min < max"):
        plot_function(torch.sin, 1, 1)
    with pytest.raises(ValueError, match="same shape"):
        plot_function(lambda x: x.sum())
    with pytest.raises(ValueError, match="same shape"):
        plot_function(lambda x: [1, 2])


# ------------------------------------------------------------------------------------------ results

TEST_REFERENCES = """
["98/band_metric"]
value = 0.9
tolerance = 0.01
anchor = "fastbook ch. 4"
anchor_value = 0.91
notebook = "98"
description = "a band result"

["98/at_least_speedup"]
value = 5.0
tolerance = 1.0
kind = "at_least"
notebook = "98"
description = "an at-least result without an anchor"

["98/at_most_loss"]
value = 2.0
tolerance = 0.1
kind = "at_most"
notebook = "98"
description = "an at-most result: a loss"

["97/other"]
value = 1.0
tolerance = 0.1
notebook = "97"
"""


@pytest.fixture
def refs(tmp_path, monkeypatch):
    """A private reference file, so these tests do not depend on the course's own numbers."""
    path = tmp_path / "reference_numbers.toml"
    path.write_text(TEST_REFERENCES, encoding="utf-8")
    monkeypatch.setattr(results, "REFERENCE_FILE", path)
    monkeypatch.delenv("HELPERS_RESULTS", raising=False)
    return path


def test_check_result_prints_the_friendly_line(refs, capsys):
    assert check_result("98/band_metric", torch.tensor(0.905)) is True
    assert capsys.readouterr().out == (
        "98/band_metric = 0.9050 — matches the reference 0.9 ± 0.01; fastbook ch. 4: 0.91\n"
    )


def test_check_result_raises_outside_the_tolerance(refs, capsys):
    with pytest.raises(ResultMismatch, match="too low for the reference 0.9 ± 0.01"):
        check_result("98/band_metric", 0.88)
    assert "does NOT match" in capsys.readouterr().out
    with pytest.raises(ResultMismatch, match="too high"):
        check_result("98/band_metric", 0.92)
    with pytest.raises(ResultMismatch):
        check_result("98/band_metric", float("nan"))
    assert check_result("98/band_metric", 0.5, raise_on_mismatch=False) is False


def test_check_result_at_least(refs, capsys):
    assert check_result("98/at_least_speedup", 40.0) is True
    assert check_result("98/at_least_speedup", 4.0) is True  # value - tolerance is the floor
    assert "at least 4; no outside anchor" in capsys.readouterr().out
    with pytest.raises(ResultMismatch, match="too low for at least 4"):
        check_result("98/at_least_speedup", 3.9)


def test_check_result_at_most(refs, capsys):
    assert check_result("98/at_most_loss", 0.5) is True
    assert check_result("98/at_most_loss", 2.1) is True  # value + tolerance is the ceiling
    assert "at most 2.1; no outside anchor" in capsys.readouterr().out
    with pytest.raises(ResultMismatch, match="too high for at most 2.1"):
        check_result("98/at_most_loss", 2.11)
    with pytest.raises(ResultMismatch):
        check_result("98/at_most_loss", float("nan"))
    assert check_result("98/at_most_loss", float("inf"), raise_on_mismatch=False) is False
    ref = results.references(refs)["98/at_most_loss"]
    assert ref.low == -math.inf and ref.high == pytest.approx(2.1)


def test_reference_table_shows_each_kind(refs):
    table = results.reference_table()
    assert "| `98/at_most_loss` | 98 | — | 2 | ≤ 2.1 |" in table
    assert "| `98/at_least_speedup` | 98 | — | 5 | ≥ 4 |" in table
    assert "| `98/band_metric` | 98 | — | 0.9 | ± 0.01 |" in table


def test_an_unknown_kind_is_refused(tmp_path):
    path = tmp_path / "refs.toml"
    path.write_text('["98/x"]\nvalue = 1.0\ntolerance = 0.1\nkind = "at_mots"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="'band', 'at_least', 'at_most'"):
        results.references(path)


def test_check_result_unknown_name_lists_the_same_notebooks_names(refs):
    with pytest.raises(KeyError) as info:
        check_result("98/band_metrc", 0.9)
    msg = str(info.value)
    assert "98/band_metric" in msg and "98/at_least_speedup" in msg and "97/other" not in msg
    assert "reference_numbers.toml" in msg


def test_check_result_records_one_json_line_per_call(refs, tmp_path, monkeypatch):
    log = tmp_path / "build" / "results.jsonl"
    monkeypatch.setenv("HELPERS_RESULTS", str(log))
    check_result("98/band_metric", 0.9, device="cpu")
    check_result("98/band_metric", 0.5, device=torch.device("cpu"), raise_on_mismatch=False)
    check_result("97/other", 1.0)  # device left out: get_device() fills it in
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert records[:2] == [
        {"name": "98/band_metric", "value": 0.9, "device": "cpu", "ok": True},
        {"name": "98/band_metric", "value": 0.5, "device": "cpu", "ok": False},
    ]
    assert records[2]["name"] == "97/other" and records[2]["device"] == str(env.get_device())
    assert len(records) == 3


def test_the_course_reference_file_is_consistent():
    raw = results.tomllib.loads(results.REFERENCE_FILE.read_text(encoding="utf-8"))
    refs = results.references(results.REFERENCE_FILE)  # also validates keys and kinds
    assert refs and set(refs) == set(raw)
    road = Path(__file__).resolve().parents[1] / "tools" / "course.toml"
    slugs = {e["slug"] for e in results.tomllib.loads(road.read_text(encoding="utf-8"))["notebook"]}
    for name, ref in refs.items():
        nb, _, what = name.partition("/")
        assert nb in slugs and what, f"{name}: names are 'slug/what', with a slug of tools/course.toml"
        assert ref.notebook == nb, f"{name}: notebook = {ref.notebook!r}, but the name says {nb!r}"
        assert "anchor" in raw[name], f"{name}: give an anchor (the outside figure), e.g. 'fastbook ch. 4'"
        assert (ref.anchor_value is None) or ref.anchor, f"{name}: anchor_value without an anchor"
        assert ref.tolerance >= 0 and ref.description, f"{name}: needs a tolerance >= 0 and a description"
        assert ref.accepts(ref.value), f"{name}: the reference value fails its own check"
        assert ref.kind in results.KINDS
        assert getattr(ref, "device", None) in (None, "cpu", "cuda"), f"{name}: device must be 'cpu' or 'cuda'"


# ---------------------------------------------------------------------------------------- exercises


@pytest.mark.parametrize("answer, expected, mark, words", [
    (torch.ones(3), torch.ones(3), "✅", "correct"),
    (..., torch.ones(3), "⏳", "not answered yet"),
    (None, 1.0, "⏳", "not answered yet"),
    (torch.ones(2, 3), torch.ones(3, 2), "❌", "the shape is (2, 3), but it should be (3, 2)"),
    (torch.ones(3, dtype=torch.long), torch.ones(3), "❌", "the dtype is torch.int64, but it should be torch.float32"),
    (torch.ones(3, dtype=torch.bool), torch.ones(3, dtype=torch.long), "❌", "dtype"),
    (torch.tensor([1.0, 2.0, 3.5]), torch.tensor([1.0, 2.0, 3.0]), "❌", "1 of 3 values are off (largest difference 0.5)"),
    (torch.tensor([1, 2, 4]), torch.tensor([1, 2, 3]), "❌", "1 of 3 values differ"),
    (torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0]), "❌", "NaN"),
    (torch.tensor(0.5), 0.5, "❌", "expected a number, got a tensor of shape () and dtype torch.float32 (use .item()"),
    (torch.arange(4) > 1, 2, "❌", "that is 4 values, not one (reduce them first, with .sum() or .mean(), then .item())"),
    ([1.0, 2.0], torch.tensor([1.0, 2.0]), "❌", "expected a tensor, got a list"),
    (0.5, 0.5000001, "✅", "correct"),
    (0.6, 0.5, "❌", "got 0.6, but the expected value is 0.5"),
    ("0.5", 0.5, "❌", "expected a number, got str '0.5'"),
    ((28, 28), (28, 28), "✅", "correct"),
    (torch.Size([28, 28]), (28, 28), "✅", "correct"),
    ((28, 27), (28, 28), "❌", "item 1: got 27"),
    ((28,), (28, 28), "❌", "expected 2 items, got 1"),
    (True, False, "❌", "expected False, got True"),
    ("threes", "threes", "✅", "correct"),
])
def test_check_prints_the_verdict_and_the_reason(capsys, answer, expected, mark, words):
    ok = check("1.1", answer, expected)
    out = capsys.readouterr().out
    assert ok is (mark == "✅")
    assert out.startswith(f"{mark} Exercise 1.1:"), out
    assert words in out, out


def test_check_with_a_hint_a_test_function_and_a_failing_test():
    assert check("t", 4, test=lambda a: None if a % 2 == 0 else "it should be even") is True
    assert check("t", 3, test=lambda a: None if a % 2 == 0 else "it should be even", hint="try 4") is False
    assert check("t", "x", test=lambda a: a + 1) is False  # a raising test gives feedback, not a traceback


def test_check_hint_and_raising_test_messages(capsys):
    check("2.3", 3, test=lambda a: None if a % 2 == 0 else "it should be even", hint="try 4")
    assert capsys.readouterr().out == "❌ Exercise 2.3: not yet — it should be even\n   Hint: try 4\n"
    check("2.4", "x", test=lambda a: a + 1)
    assert "checking the answer raised TypeError" in capsys.readouterr().out


_SUM = "that is the sum: divide by the number of items"


@pytest.mark.parametrize("answer, expected, mistakes, mark, words", [
    # numbers: a known mistake, matched within the same tolerance as the right answer
    (6.0, 2.0, [(6.0, _SUM)], "❌", _SUM),
    (6.00000001, 2.0, [(6.0, _SUM)], "❌", _SUM),
    (7.0, 2.0, [(6.0, _SUM)], "❌", "got 7, but the expected value is 2"),  # no match: the structural message
    (6.0, 2.0, [(5.0, "five"), (6.0, _SUM)], "❌", _SUM),  # the matching pair, wherever it stands
    # tensors: same shape/dtype rules as explain_mismatch
    (torch.tensor([3.0, 6.0]), torch.tensor([1.5, 3.0]), [(torch.tensor([3.0, 6.0]), _SUM)], "❌", _SUM),
    (torch.tensor([3.0, 6.0], dtype=torch.float64), torch.tensor([1.5, 3.0]), [(torch.tensor([3.0, 6.0]), _SUM)],
     "❌", _SUM),
    (torch.tensor([3.0, 6.5]), torch.tensor([1.5, 3.0]), [(torch.tensor([3.0, 6.0]), _SUM)], "❌", "2 of 2 values are off"),
    (torch.ones(2, 3), torch.ones(3, 2), [(torch.ones(3), "a row, not the grid")], "❌", "the shape is (2, 3)"),
    (torch.ones(3), torch.ones(3, 2), [(torch.ones(3), "you averaged over the wrong dimension: use dim=0")],
     "❌", "you averaged over the wrong dimension"),
    (torch.tensor(6.0), 2.0, [(6.0, _SUM)], "❌", "(use .item()"),  # a tensor is not the number 6.0: rules are the same
    # lists
    ([28, 28], (28, 28), [([28, 27], "unused")], "✅", "correct"),
    ([784], (28, 28), [([784], "that is the flattened size: keep the two dimensions")], "❌", "flattened size"),
    ([784, 1], (28, 28), [([784], "that is the flattened size")], "❌", "item 0: got 784"),
    # the right answer is right, whatever mistakes are listed
    (2.0, 2.0, [(6.0, "never shown")], "✅", "correct"),
    (torch.ones(3), torch.ones(3), [(torch.zeros(3), "never shown")], "✅", "correct"),
    # an answer that is not there yet is not a mistake
    (..., 2.0, [(6.0, _SUM)], "⏳", "not answered yet"),
    # a surprising answer type is no match, and no traceback
    ("six", 2.0, [(torch.tensor([6.0]), _SUM), (6.0, _SUM)], "❌", "expected a number, got str 'six'"),
])
def test_check_names_a_known_mistake(capsys, answer, expected, mistakes, mark, words):
    ok = check("1.2", answer, expected, mistakes=mistakes, hint="look at the formula")
    out = capsys.readouterr().out
    assert ok is (mark == "✅")
    assert out.startswith(f"{mark} Exercise 1.2:"), out
    assert words in out, out
    if mark == "❌":
        assert out.endswith("   Hint: look at the formula\n"), out
    if mark == "✅":
        assert "never shown" not in out


def test_check_mistakes_use_the_given_tolerance(capsys):
    assert check("t", 6.1, 2.0, mistakes=[(6.0, _SUM)]) is False
    assert _SUM not in capsys.readouterr().out
    assert check("t", 6.1, 2.0, mistakes=[(6.0, _SUM)], rtol=0.05) is False
    assert _SUM in capsys.readouterr().out


def test_check_mistakes_with_a_test_function(capsys):
    even = lambda a: None if a % 2 == 0 else "it should be even"  # noqa: E731
    assert check("t", 3, test=even, mistakes=[(3, "3 is odd: add one")]) is False
    assert "3 is odd: add one" in capsys.readouterr().out
    assert check("t", 4, test=even, mistakes=[(3, "never shown")]) is True
    assert "never shown" not in capsys.readouterr().out


# A check validates its own mistakes on every call, even before an answer: an exercise cell that runs (nbval runs
# every one) tests each listed mistake against the check it belongs to.
@pytest.mark.parametrize("expected, mistakes, words", [
    (2.0, [(2.0, "never shown")], "mistakes[0] is accepted as the right answer (it matches expected)"),
    (2.0, [(6.0, _SUM), (2.0000001, "within the tolerance")], "mistakes[1] is accepted as the right answer"),
    (torch.ones(3), [(torch.ones(3, dtype=torch.float64), "float widths may differ")], "accepted as the right answer"),
    ((28, 28), [([28, 28], "a list equals the tuple")], "accepted as the right answer"),
    (2.0, [(6.0, _SUM), (6.00000001, "never reached")], "mistakes[1] would get the explanation of mistakes[0] (they "
                                                         "are equal within rtol/atol)"),
    (torch.ones(2), [(torch.zeros(2), "a"), (torch.tensor([1.0, 0.0]), "b"), (torch.zeros(2), "c")],
     "mistakes[2] would get the explanation of mistakes[0]"),
    (2.0, [(float("nan"), "never matched")], "mistakes[0] (float nan) does not match itself"),
])
def test_check_refuses_mistakes_it_cannot_tell(expected, mistakes, words):
    for answer in (..., 6.0, expected):  # before an answer, on a wrong one, on the right one
        with pytest.raises(ValueError) as info:
            check("t", answer, expected, mistakes=mistakes)
        assert str(info.value).startswith("check('t'): "), info.value
        assert words in str(info.value), info.value


def test_check_tells_wrong_functions_by_the_sentence_of_the_test(capsys):
    def doubles(f):
        return None if [f(1), f(2)] == [2, 4] else f"f(1), f(2) gave {[f(1), f(2)]}, expected [2, 4]"

    mistakes = [(lambda x: x + 1, "you added one: multiply by 2"), (lambda x: x * x, "you squared: multiply by 2")]
    assert check("t", ..., test=doubles, mistakes=mistakes) is False

    def learners_plus_one(x):  # another function, the same mistake
        return 1 + x

    assert check("t", learners_plus_one, test=doubles, mistakes=mistakes) is False
    assert "you added one: multiply by 2" in capsys.readouterr().out
    assert check("t", lambda x: x ** 2, test=doubles, mistakes=mistakes) is False
    assert "you squared" in capsys.readouterr().out
    assert check("t", lambda x: 3 * x, test=doubles, mistakes=mistakes) is False  # no listed mistake: the test's
    assert "f(1), f(2) gave [3, 6], expected [2, 4]" in capsys.readouterr().out   # own sentence
    assert check("t", lambda x: x + x, test=doubles, mistakes=mistakes) is True
    # wrong values that are not functions are still compared by value
    assert check("t", 3, test=lambda a: None if a == 4 else "not 4", mistakes=[(3, "off by one")]) is False
    assert "off by one" in capsys.readouterr().out

    with pytest.raises(ValueError, match=r"mistakes\[0\] is accepted as the right answer \(its test accepts it\)"):
        check("t", ..., test=doubles, mistakes=[(lambda x: 2 * x, "never shown")])
    with pytest.raises(ValueError, match=r"mistakes\[1\] would get the explanation of mistakes\[0\] \(its test "
                                         r"rejects both with the same sentence"):
        check("t", ..., test=doubles, mistakes=[(lambda x: x + 1, "a"), (lambda x: 1 + x, "b")])


@pytest.mark.parametrize("mistakes, words", [
    ((6.0, _SUM), "looks like one pair on its own: wrap it in a list"),
    ({6.0: _SUM}, "not a dict"),
    (6.0, "got float 6.0"),
    ([6.0], "mistakes[0] must be a (wrong value, explanation) pair, got float 6.0"),
    ([(6.0, _SUM, "extra")], "mistakes[0] must be a (wrong value, explanation) pair"),
    ([(6.0, _SUM), (5.0, 5)], "mistakes[1] must end with a sentence explaining the mistake"),
    ([(6.0, "  ")], "mistakes[0] must end with a sentence"),
])
def test_check_refuses_badly_written_mistakes(mistakes, words):
    for answer in (6.0, ...):  # the author sees the error even before a learner answers
        with pytest.raises(TypeError, match="mistakes") as info:
            check("t", answer, 2.0, mistakes=mistakes)
        assert words in str(info.value)
        assert 'mistakes=[(wrong_value, "what that mistake means and how to fix it")]' in str(info.value)


def test_check_accepts_a_tuple_of_pairs_and_no_mistakes(capsys):
    assert check("t", 6.0, 2.0, mistakes=((6.0, _SUM),)) is False
    assert _SUM in capsys.readouterr().out
    assert check("t", 6.0, 2.0, mistakes=[]) is False
    assert "got 6, but the expected value is 2" in capsys.readouterr().out


def test_explain_mismatch_tolerances():
    assert explain_mismatch(torch.tensor([1.0]), torch.tensor([1.00001])) is None
    assert explain_mismatch(torch.tensor([1.0]), torch.tensor([1.01])) is not None
    assert explain_mismatch(torch.tensor([1.0]), torch.tensor([1.01]), rtol=0.1) is None
    assert explain_mismatch(torch.ones(2, dtype=torch.float64), torch.ones(2)) is None  # float widths may differ


# -------------------------------------------------------------------------------------- train basics


@pytest.mark.parametrize("n, bs", [(10, 3), (10, 5), (1, 4), (257, 64)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_cover_every_index_exactly_once(n, bs, shuffle):
    parts = list(batches(n, bs, shuffle=shuffle))
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(n))
    assert [len(p) for p in parts] == [min(bs, n - i) for i in range(0, n, bs)]
    assert all(p.dtype == torch.int64 for p in parts)
    if not shuffle:
        assert torch.equal(torch.cat(parts), torch.arange(n))


def test_batches_drop_last():
    parts = list(batches(10, 3, drop_last=True))
    assert [len(p) for p in parts] == [3, 3, 3]
    assert len(torch.cat(parts).unique()) == 9
    assert [len(p) for p in batches(9, 3, drop_last=True)] == [3, 3, 3]
    # fewer examples than one batch: the one short batch is kept rather than an empty epoch
    assert [len(p) for p in batches(2, 3, drop_last=True)] == [2]


def test_batches_are_repeatable_with_a_seeded_generator_and_differ_across_seeds():
    def order(seed):
        return torch.cat(list(batches(100, 16, generator=torch.Generator().manual_seed(seed))))

    assert torch.equal(order(0), order(0))
    assert not torch.equal(order(0), order(1))
    assert torch.equal(order(0), torch.randperm(100, generator=torch.Generator().manual_seed(0)))
    torch.manual_seed(5)
    a = torch.cat(list(batches(100, 16)))
    torch.manual_seed(5)
    assert torch.equal(a, torch.cat(list(batches(100, 16))))  # set_seed covers the default generator too


def test_batches_device_argument():
    assert all(p.device == torch.device("cpu") for p in batches(10, 4, device="cpu"))


@pytest.mark.parametrize("n, bs", [(10, 0), (10, -2), (10, 2.5), (10, True), (0, 4), (-1, 4), (10.0, 4)])
def test_batches_rejects_bad_sizes(n, bs):
    with pytest.raises(ValueError, match="batch size|number of examples"):
        list(batches(n, bs))


def test_binary_accuracy_against_hand_computed_values():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 0.0])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])
    # predictions (logit > 0): 1, 0, 1, 0, 0 -> right, right, wrong, wrong, right
    assert binary_accuracy(logits, y) == pytest.approx(3 / 5)
    assert binary_accuracy(logits[:, None], y) == pytest.approx(3 / 5)  # [N, 1] model output
    assert binary_accuracy(logits, y.long()) == pytest.approx(3 / 5)
    assert binary_accuracy(torch.tensor([5.0, -5.0]), torch.tensor([1.0, 0.0])) == 1.0
    oracle = ((torch.sigmoid(logits) > 0.5).float() == y).float().mean().item()
    assert binary_accuracy(logits, y) == pytest.approx(oracle)


def test_accuracy_against_hand_computed_values():
    logits = torch.tensor([[0.1, 0.9, 0.0], [2.0, 1.0, 0.5], [0.0, 0.0, 3.0], [1.0, 0.2, 0.1]])
    y = torch.tensor([1, 0, 1, 2])
    # argmax: 1, 0, 2, 0 -> right, right, wrong, wrong
    assert accuracy(logits, y) == pytest.approx(0.5)
    assert accuracy(logits, logits.argmax(dim=1)) == 1.0


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="3 predictions for 4 targets"):
        binary_accuracy(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"logits \[N, classes\]"):
        accuracy(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(5,\)"):
        accuracy(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError):
        accuracy(torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.long))


def test_the_table_does_not_show_an_unmeasured_goal_as_our_figure(refs):
    path = refs
    path.write_text(TEST_REFERENCES + '\n["96/gpu_goal"]\nvalue = 0.99\ntolerance = 0.0\nkind = "at_least"\n'
                    'notebook = "96"\ndevice = "cuda"\nmeasured = false\n', encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in results.reference_table().splitlines()[2:]}
    assert "not measured yet (no cuda run)" in rows["`96/gpu_goal`"] and "≥ 0.99" in rows["`96/gpu_goal`"]
    assert "| 0.9 |" in rows["`98/band_metric`"]


# ------------------------------------------------------------------------------------------- validate


@pytest.mark.parametrize("value", [1, 3, 10**20, np.int64(7), np.uint8(2), torch.tensor(5).item()])
def test_positive_int_accepts_whole_numbers(value):
    out = positive_int(value, "bs")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [True, False, 0, -3, 3.0, 2.5, "3", None, np.float64(3.0), np.bool_(True),
                                   torch.tensor(3)])
def test_positive_int_refuses_everything_else(value):
    with pytest.raises(ValueError) as info:
        positive_int(value, "n_epochs", example="3 or 10")
    assert str(info.value) == f"n_epochs must be a positive whole number, got {value!r}. Typical values: 3 or 10."


def test_positive_int_minimum_and_no_example():
    assert positive_int(0, "seed", minimum=0) == 0
    assert positive_int(2, "n_steps", minimum=2) == 2
    with pytest.raises(ValueError, match=r"^n_steps must be a whole number ≥ 2, got 1\.$"):
        positive_int(1, "n_steps", minimum=2)
    with pytest.raises(ValueError, match=r"^seed must be a whole number ≥ 0, got True\."):
        positive_int(True, "seed", minimum=0)


@pytest.mark.parametrize("call, name", [
    (lambda v: env.set_seed(v), "seed"),
    (lambda v: show_images([torch.zeros(28, 28)] * 2, nrows=v), "nrows"),
    (lambda v: show_images([torch.zeros(28, 28)] * 2, ncols=v), "ncols"),
    (lambda v: plot_function(torch.sin, n=v), "n (the number of points)"),
])
def test_layer1_helpers_refuse_true_and_floats(call, name):
    for bad in (True, 2.0):
        with pytest.raises(ValueError, match=name.replace("(", r"\(").replace(")", r"\)") + " must be"):
            call(bad)


def test_check_shows_the_code_hint_only_from_the_second_wrong_answer(capsys):
    from helpers.exercises import _wrong_tries

    name = "test two-step hint"
    _wrong_tries.pop(name, None)
    for _ in range(2):
        check(name, 3, 4, hint="add one", code_hint="answer = 3 + 1")
    first, second = capsys.readouterr().out.strip().split("❌")[1:]
    assert "Hint: add one" in first and "answer = 3 + 1" not in first and "second wrong answer" in first
    assert "Hint: add one" in second and "Second hint (code): answer = 3 + 1" in second
    assert check(name, 4, 4, hint="add one", code_hint="answer = 3 + 1")
    _wrong_tries.pop(name, None)


def test_check_refuses_a_code_hint_without_the_idea():
    with pytest.raises(ValueError, match="code_hint is the second step"):
        check("test code hint alone", ..., 4, code_hint="answer = 4")


# ------------------------------------------------------------------- timing and threads (convolutions, bug_zoo)


def test_seconds_per_call_times_the_fastest_run_after_the_warm_up():
    calls = []
    seconds = env.seconds_per_call(lambda: calls.append(1), repeat=3, number=4, warmup=2)
    assert len(calls) == 2 + 3 * 4 and 0 <= seconds < 0.01
    slow = env.seconds_per_call(lambda: sum(range(20_000)), repeat=2)
    assert slow > env.seconds_per_call(lambda: None, repeat=2)
    with pytest.raises(TypeError, match="function to call"):
        env.seconds_per_call(3)
    with pytest.raises(ValueError):
        env.seconds_per_call(lambda: None, warmup=-1)


def test_use_one_thread_sets_one_cpu_thread_and_leaves_a_gpu_run_alone():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert env.use_one_thread("cuda") == 2 and torch.get_num_threads() == 2
        assert env.use_one_thread(torch.device("cpu")) == 2 and torch.get_num_threads() == 1
        torch.set_num_threads(2)
        assert env.use_one_thread() == 2 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
