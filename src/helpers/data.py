"""The course's data the careful way: find the files, download them if needed, verify, parse, cache.

Layer 2 of the helpers package (imports nothing from higher layers).
Introduced in the `start` notebook (the data check); the `tensors` notebook looks at the raw tensors it returns.

Two data sets, one mechanism. `DATASETS` describes each: its files with their SHA-256 sums, the public
addresses it is downloaded from, and the environment variable naming a read-only copy:

- `mnist`: the four original MNIST files (LeCun, Cortes and Burges; CC BY-SA 3.0), read by `load_mnist`;
- `names`: `names.txt`, 32,033 first names from karpathy/makemore (MIT licence), read by `load_names`.

Where a file is looked for, in order:

1. the folder named by the data set's environment variable (`MNIST_DIR`, `NAMES_DIR`): read only, never written to;
2. the data set's folder under the data root: `data/mnist/`, `data/names/` in the repository (outside a checkout
   the root is `~/.cache/pixels-to-gpus`; the environment variable `HELPERS_DATA_DIR` names another root);
3. the public addresses, tried in turn; a download goes to a temporary file in that folder and is renamed only
   once its SHA-256 matches, so an interrupted download never leaves a bad file behind.

Every file is checked against its SHA-256 before it is used; a corrupt copy in the data root is named and moved
aside (`*.corrupt`) and the next source is tried. MNIST's parsed tensors are cached beside its files (`*.pt`)
and in memory, so the second load takes a fraction of a second.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import numbers
import os
import urllib.error
import urllib.request
import warnings
import zlib
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write
from .validate import positive_int

__all__ = [
    "DataSet",
    "DATASETS",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "NAMES_FILES",
    "NAMES_MIRRORS",
    "DataNotFoundError",
    "IDXFormatError",
    "ChecksumError",
    "ThreeSeven",
    "MNISTSplits",
    "data_root",
    "default_data_dir",
    "find_data_file",
    "find_mnist_file",
    "parse_idx",
    "load_mnist",
    "clear_memory_cache",
    "mnist_split_indices",
    "mnist_splits",
    "three_vs_seven",
    "load_names",
]

# The four files of the original distribution and their SHA-256 sums (see ../shared/data/README.md).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Public copies of the original files, tried in this order. The environment variable MNIST_MIRRORS
# (comma-separated base URLs) replaces this list, for a local mirror or a test server.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# makemore's names.txt (228,145 bytes; see ../shared/data/names/README.md). NAMES_MIRRORS replaces the address.
NAMES_FILES = {"names.txt": "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"}
NAMES_MIRRORS = ("https://raw.githubusercontent.com/karpathy/makemore/master/",)


@dataclass(frozen=True)
class DataSet:
    """One data set the course downloads: what its files are and where they may come from.

    `folder` is its subfolder under the data root; `files` maps each file name to its SHA-256; `mirrors` are
    base addresses tried in turn (a file's address is base + name); `dir_env` names the environment variable of a
    read-only folder holding verified copies; `mirrors_env` the one that replaces `mirrors` (comma-separated,
    for a local mirror or a test server); `source` and `licence` are what the README cites.
    """

    folder: str
    title: str
    files: dict
    mirrors: tuple
    dir_env: str
    mirrors_env: str
    source: str
    licence: str

    def mirror_urls(self) -> list[str]:
        """The base addresses to try: the environment variable `mirrors_env` when set (even empty), else `mirrors`."""
        env = os.environ.get(self.mirrors_env)
        bases = [m.strip() for m in env.split(",") if m.strip()] if env is not None else list(self.mirrors)
        return [b if b.endswith("/") else b + "/" for b in bases]


DATASETS = {
    "mnist": DataSet("mnist", "MNIST", MNIST_FILES, MNIST_MIRRORS, "MNIST_DIR", "MNIST_MIRRORS",
                     source="http://yann.lecun.com/exdb/mnist/ (Y. LeCun, C. Cortes, C. J. C. Burges)",
                     licence="CC BY-SA 3.0"),
    "names": DataSet("names", "names", NAMES_FILES, NAMES_MIRRORS, "NAMES_DIR", "NAMES_MIRRORS",
                     source="https://github.com/karpathy/makemore (names.txt)", licence="MIT"),
}
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
_CACHE_VERSION = 1
N_MNIST_TRAIN = 60_000


class DataNotFoundError(FileNotFoundError):
    """No verified copy of a data file could be found or downloaded (the message says where it looked)."""


class ChecksumError(ValueError):
    """A file's SHA-256 does not match the published sum: it is corrupt or truncated."""


class IDXFormatError(ValueError):
    """A file is not in the IDX format MNIST uses (wrong magic number or size)."""


ThreeSeven = namedtuple("ThreeSeven", ["train_x", "train_y", "valid_x", "valid_y"])
ThreeSeven.__doc__ = (
    "The 3-vs-7 task: x is float32 [N, 784] in [0, 1]; y is float32 [N], 1.0 for a three, 0.0 for a seven."
)
MNISTSplits = namedtuple("MNISTSplits", ["train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y"])
MNISTSplits.__doc__ = (
    "All ten digits in three sets: images uint8 [N, 28, 28] as load_mnist gives them, labels int64 [N]. "
    "Train and valid are disjoint parts of MNIST's 60,000 training images; test is its 10,000 test images."
)


def data_root() -> Path:
    """The folder the data sets live in, one subfolder each: `data/` in the repository checkout,
    `~/.cache/pixels-to-gpus` when the package is installed elsewhere.

    The environment variable `HELPERS_DATA_DIR` names another root (tests and benchmarks use it).
    """
    if os.environ.get("HELPERS_DATA_DIR"):
        return Path(os.environ["HELPERS_DATA_DIR"]).expanduser()
    here = Path(__file__).resolve()
    repo = here.parents[2]  # src/helpers/data.py -> repo root
    if (repo / "pyproject.toml").is_file() and (repo / "notebooks").is_dir():
        return repo / "data"
    return Path.home() / ".cache" / "pixels-to-gpus"


def _dataset(name: str) -> DataSet:
    if name not in DATASETS:
        raise ValueError(f"{name!r} is not one of the course's data sets: {', '.join(map(repr, DATASETS))}.")
    return DATASETS[name]


def default_data_dir(dataset: str = "mnist") -> Path:
    """The folder a data set's downloaded files (and caches) go to: its subfolder of `data_root()`, e.g. `data/mnist/`."""
    return data_root() / _dataset(dataset).folder


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path, expected_sha: str, timeout: float) -> None:
    """Download `url` into `dest` atomically: a temporary `.part` file, verified, then renamed. Raises on any failure."""

    def fetch_and_verify(out) -> None:
        h = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": "pixels-to-gpus/0.1 (course data loader)"})
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != expected_sha:
            raise ChecksumError(
                f"checksum mismatch for {dest.name} from {url}: got sha256 {h.hexdigest()[:12]}…, "
                f"expected {expected_sha[:12]}… (truncated or corrupted download)"
            )

    atomic_write(dest, fetch_and_verify, suffix=".part")


def find_data_file(dataset: str, name: str, data_dir: str | Path | None = None, download: bool = True,
                   timeout: float = 30.0) -> Path:
    """Return the path of a verified copy of one file of `dataset` ("mnist" or "names"), downloading it if needed.

    Looks in the folder named by the data set's environment variable (`MNIST_DIR`, `NAMES_DIR`), then in
    `data_dir` (default: `default_data_dir(dataset)`), then at each address in turn. A corrupt file in `data_dir`
    is moved aside (renamed to `*.corrupt`) and the next source is tried; a corrupt file in the environment
    variable's folder is left alone (that folder is never written to) and reported. Raises `DataNotFoundError`
    saying where it looked, what went wrong and the two ways to fix it.
    """
    ds = _dataset(dataset)
    if name not in ds.files:
        raise ValueError(f"{name!r} is not one of the {ds.title} files: {', '.join(ds.files)}.")
    expected = ds.files[name]
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir(dataset)
    looked, problems = [], []

    env_dir = os.environ.get(ds.dir_env)
    if env_dir:
        candidate = Path(env_dir).expanduser() / name
        looked.append(f"{ds.dir_env}: {candidate}")
        if candidate.is_file():
            if _sha256(candidate) == expected:
                return candidate
            problems.append(f"{candidate} failed its SHA-256 check (corrupt or truncated); it was left in place")

    candidate = data_dir / name
    looked.append(f"data folder: {candidate}")
    if candidate.is_file():
        if _sha256(candidate) == expected:
            return candidate
        aside = candidate.with_name(candidate.name + ".corrupt")
        os.replace(candidate, aside)
        problems.append(f"{candidate} failed its SHA-256 check (corrupt or truncated); moved aside to {aside.name}")
        warnings.warn(f"{problems[-1]}; trying the next source.", stacklevel=2)

    failures = []
    if download:
        for base in ds.mirror_urls():
            url = base + name
            try:
                _download(url, candidate, expected, timeout)
                return candidate
            except ChecksumError as e:
                failures.append(f"{url}: {e}")
            except urllib.error.HTTPError as e:
                failures.append(f"{url}: HTTP {e.code} {e.reason}")
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                reason = getattr(e, "reason", None) or e
                failures.append(f"{url}: {type(e).__name__}: {reason}")
    raise DataNotFoundError(_not_found_message(ds, name, looked, problems, failures, download, data_dir))


def find_mnist_file(name: str, data_dir: str | Path | None = None, download: bool = True,
                    timeout: float = 30.0) -> Path:
    """`find_data_file("mnist", name, ...)`: a verified copy of one of the four MNIST files."""
    return find_data_file("mnist", name, data_dir, download, timeout)


def _not_found_message(ds: DataSet, name, looked, problems, failures, download, data_dir) -> str:
    lines = [f"Could not find a verified copy of the {ds.title} file {name}.", "Looked in:"]
    lines += [f"  - {p}" for p in looked]
    if not os.environ.get(ds.dir_env):
        lines.append(f"  - {ds.dir_env}: not set")
    if problems:
        lines.append("Problems with local copies:")
        lines += [f"  - {p}" for p in problems]
    if download:
        lines.append("Download attempts (each address in turn):")
        lines += [f"  - {f}" for f in failures] or [f"  - no addresses configured ({ds.mirrors_env} is empty)"]
    else:
        lines.append("Downloading was switched off (download=False).")
    several = len(ds.files) > 1
    what = f"the original {ds.title} files ({', '.join(ds.files)})" if several else name
    lines += [
        "How to fix it, either way works:",
        f"  1. Put {what} in a folder and point the environment variable {ds.dir_env} at it "
        f"(e.g. `export {ds.dir_env}=/path/to/{ds.folder}`, then restart the kernel).",
        f"  2. Connect to the internet and run again: {'the files are' if several else 'the file is'} downloaded "
        f"once into {data_dir}, or copy {'them' if several else 'it'} there yourself.",
    ]
    return "\n".join(lines)


def parse_idx(path: str | Path) -> np.ndarray:
    """Parse one (gzipped) IDX file into a NumPy array: images `[N, rows, cols]` or labels `[N]` (uint8).

    The header is big-endian: a magic number (2051 for images, 2049 for labels), the count, and for
    images the number of rows and columns. Anything else is an `IDXFormatError` that names the file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise IDXFormatError(
            f"{path.name} could not be decompressed ({type(e).__name__}: {e}). It is truncated or not a gzip file: "
            "delete it and load again to download a fresh copy, or point MNIST_DIR at a folder with good files."
        ) from e
    if len(raw) < 8:
        raise IDXFormatError(f"{path.name} is too short ({len(raw)} bytes) to be an IDX file.")
    magic, n = int.from_bytes(raw[0:4], "big"), int.from_bytes(raw[4:8], "big")
    if magic == IDX_IMAGES_MAGIC:
        rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
        offset, shape = 16, (n, rows, cols)
    elif magic == IDX_LABELS_MAGIC:
        offset, shape = 8, (n,)
    else:
        raise IDXFormatError(
            f"{path.name} starts with the magic number {magic} (0x{magic:08x}), but MNIST IDX files start with "
            f"{IDX_IMAGES_MAGIC} (images) or {IDX_LABELS_MAGIC} (labels). Is it the right file, and still gzipped?"
        )
    expected = int(np.prod(shape))
    if len(raw) - offset != expected:
        raise IDXFormatError(
            f"{path.name} says it holds {shape} values ({expected} bytes) but has {len(raw) - offset} bytes of data."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


_memory_cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def clear_memory_cache() -> None:
    """Forget the MNIST splits loaded in this process, as a fresh kernel would (the `.pt` files on disk stay)."""
    _memory_cache.clear()


def load_mnist(split: str = "train", data_dir: str | Path | None = None, download: bool = True):
    """Load one MNIST split as tensors: images `uint8 [N, 28, 28]` and labels `int64 [N]`.

    `split` is "train" (60,000 images) or "test" (10,000). `data_dir` is the folder for MNIST's downloaded files
    and parsed caches (default: `default_data_dir("mnist")`, i.e. `data/mnist/`). Returns fresh tensors each call,
    so changing them in place never changes what the next call returns. For a validation set carved from the
    training images, see `mnist_splits`. Introduced in the `start` notebook.
    """
    if split not in SPLIT_FILES:
        raise ValueError(
            f"split must be 'train' (60,000 images) or 'test' (10,000 images), got {split!r}. "
            "(For a validation set carved from the training images, use mnist_splits(); the 3-vs-7 validation "
            "set comes from the 'test' split: see three_vs_seven().)"
        )
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir("mnist")
    key = (str(data_dir), split)
    if key not in _memory_cache:
        _memory_cache[key] = _load_split(split, data_dir, download)
    images, labels = _memory_cache[key]
    return images.clone(), labels.clone()


def _load_split(split: str, data_dir: Path, download: bool):
    img_name, lbl_name = SPLIT_FILES[split]
    # The parsed cache is named after the sums of its sources: a cache of other files is never read.
    cache = data_dir / f"mnist-{split}-{MNIST_FILES[img_name][:8]}-{MNIST_FILES[lbl_name][:8]}-v{_CACHE_VERSION}.pt"
    if cache.is_file():
        try:
            saved = torch.load(cache, weights_only=True)
            images, labels = saved["images"], saved["labels"]
            if images.dtype == torch.uint8 and labels.dtype == torch.int64 and len(images) == len(labels):
                return images, labels
        except Exception:
            pass  # an unreadable cache is rebuilt from the verified files below
    img_path = find_mnist_file(img_name, data_dir, download)
    lbl_path = find_mnist_file(lbl_name, data_dir, download)
    images = torch.from_numpy(parse_idx(img_path).copy())
    labels = torch.from_numpy(parse_idx(lbl_path).astype(np.int64))
    if images.ndim != 3 or len(images) != len(labels):
        raise IDXFormatError(
            f"{img_path.name} holds {tuple(images.shape)} images but {lbl_path.name} holds {len(labels)} labels."
        )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, lambda f: torch.save({"images": images, "labels": labels}, f))
    except OSError:
        pass  # a read-only place just means no on-disk cache; the in-memory one still helps
    return images, labels


def mnist_split_indices(n_valid: int = 10_000, seed: int = 42, n: int = N_MNIST_TRAIN):
    """Which of MNIST's `n` training images go to training and which to validation: `(train_idx, valid_idx)`.

    A permutation of `range(n)` drawn from a generator seeded with `seed` (so the same seed always gives the same
    split, whatever else the program has drawn); its first `n_valid` positions are the validation images. Both
    index tensors (int64) are sorted, so each set keeps MNIST's original order. Used by `mnist_splits`.
    """
    n = positive_int(n, "n")
    n_valid = positive_int(n_valid, "n_valid", example="10_000 (the default) or 5_000")
    if n_valid >= n:
        raise ValueError(
            f"n_valid must be smaller than the {n:,} training images it is carved from (some must be left to train "
            f"on), got {n_valid!r}. Typical values: 10_000 (the default) or 5_000."
        )
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise ValueError(f"seed must be a whole number (e.g. 42), got {seed!r}.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return order[n_valid:].sort().values, order[:n_valid].sort().values


def mnist_splits(n_valid: int = 10_000, seed: int = 42, data_dir: str | Path | None = None,
                 download: bool = True) -> MNISTSplits:
    """All of MNIST in three sets: `train_x, train_y, valid_x, valid_y, test_x, test_y`.

    The validation set is `n_valid` of MNIST's 60,000 training images, chosen by a fixed permutation drawn from
    `seed` (`mnist_split_indices`); the training set is the other 60,000 − `n_valid`; the test set is MNIST's
    10,000 test images, untouched. Images are `uint8 [N, 28, 28]` as `load_mnist` gives them, labels `int64 [N]`.
    Choices (epochs, learning rate, which model) are made on the validation set; the test set is scored once,
    at the end.
    """
    train_idx, valid_idx = mnist_split_indices(n_valid, seed)
    images, labels = load_mnist("train", data_dir, download)
    test_x, test_y = load_mnist("test", data_dir, download)
    return MNISTSplits(images[train_idx], labels[train_idx], images[valid_idx], labels[valid_idx], test_x, test_y)


def three_vs_seven(data_dir: str | Path | None = None, download: bool = True) -> ThreeSeven:
    """The 3-vs-7 task of the `pixels`, `gradients` and `three_vs_seven` notebooks, with fastai's MNIST_SAMPLE split.

    Train: MNIST's training threes then sevens (6131 + 6265 = 12396). Valid: its test threes then sevens
    (1010 + 1028 = 2038). `x` is float32 `[N, 784]` scaled to [0, 1]; `y` is float32 `[N]`, 1.0 for a three.
    Introduced in the `pixels` notebook, where the same tensors are built by hand first.
    """
    out = []
    for split in ("train", "test"):
        images, labels = load_mnist(split, data_dir, download)
        threes, sevens = images[labels == 3], images[labels == 7]
        x = torch.cat([threes, sevens]).reshape(-1, 28 * 28).float() / 255
        y = torch.cat([torch.ones(len(threes)), torch.zeros(len(sevens))])
        out += [x, y]
    return ThreeSeven(*out)


def load_names(data_dir: str | Path | None = None, download: bool = True) -> list[str]:
    """The 32,033 first names of makemore's `names.txt` (lowercase a–z, one per line), as a list of strings.

    The file is found like MNIST's (`find_data_file("names", "names.txt")`): the folder named by `NAMES_DIR`,
    then `data_dir` (default: `default_data_dir("names")`, i.e. `data/names/`), then its canonical address;
    SHA-256 checked each time. Returns a fresh list each call. Introduced in the `language_model` notebook.
    """
    path = find_data_file("names", "names.txt", data_dir, download)
    return path.read_text(encoding="utf-8").splitlines()
