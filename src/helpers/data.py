"""MNIST the careful way: find the files, download them if needed, verify, parse, cache.

Layer 2 of the helpers package (imports nothing from higher layers).
Introduced in notebook 00 (the data check); notebook 01 looks at the raw tensors it returns.

Where `load_mnist` looks, in order:

1. the folder named by the environment variable `MNIST_DIR` (read only: never written to);
2. `data/mnist/` in the repository (or, outside a checkout, `~/.cache/pixels-to-gpus/mnist`);
3. the public mirrors, tried in turn; a download goes to a temporary file in that folder and is renamed
   only once its SHA-256 matches, so an interrupted download never leaves a bad file behind.

Every file is checked against its SHA-256 before it is parsed. Parsed tensors are cached next to the
downloaded files (`*.pt`) and in memory, so the second load takes a fraction of a second.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import urllib.error
import urllib.request
import zlib
from collections import namedtuple
from pathlib import Path

import numpy as np
import torch

from .checkpoint import atomic_write

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNISTNotFoundError",
    "IDXFormatError",
    "ChecksumError",
    "ThreeSeven",
    "default_data_dir",
    "find_mnist_file",
    "parse_idx",
    "load_mnist",
    "three_vs_seven",
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
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
_CACHE_VERSION = 1


class MNISTNotFoundError(FileNotFoundError):
    """No verified copy of an MNIST file could be found or downloaded."""


class ChecksumError(ValueError):
    """A file's SHA-256 does not match the published sum: it is corrupt or truncated."""


class IDXFormatError(ValueError):
    """A file is not in the IDX format MNIST uses (wrong magic number or size)."""


ThreeSeven = namedtuple("ThreeSeven", ["train_x", "train_y", "valid_x", "valid_y"])
ThreeSeven.__doc__ = (
    "The 3-vs-7 task: x is float32 [N, 784] in [0, 1]; y is float32 [N], 1.0 for a three, 0.0 for a seven."
)


def default_data_dir() -> Path:
    """`data/mnist/` in the repository checkout; `~/.cache/pixels-to-gpus/mnist` when installed elsewhere.

    The environment variable `HELPERS_DATA_DIR` overrides both (tests use it).
    """
    if os.environ.get("HELPERS_DATA_DIR"):
        return Path(os.environ["HELPERS_DATA_DIR"]).expanduser()
    here = Path(__file__).resolve()
    repo = here.parents[2]  # src/helpers/data.py -> repo root
    if (repo / "pyproject.toml").is_file() and (repo / "notebooks").is_dir():
        return repo / "data" / "mnist"
    return Path.home() / ".cache" / "pixels-to-gpus" / "mnist"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mirrors() -> list[str]:
    env = os.environ.get("MNIST_MIRRORS")
    bases = [m.strip() for m in env.split(",") if m.strip()] if env is not None else list(MNIST_MIRRORS)
    return [b if b.endswith("/") else b + "/" for b in bases]


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


def find_mnist_file(name: str, data_dir: Path | None = None, download: bool = True, timeout: float = 30.0) -> Path:
    """Return the path of a verified copy of one MNIST file, downloading it when no local copy exists.

    Looks in `MNIST_DIR`, then `data_dir` (default: `default_data_dir()`), then each mirror in turn.
    A corrupt file in `data_dir` is moved aside (renamed to `*.corrupt`) and the next source is tried;
    a corrupt file in `MNIST_DIR` is left alone (that folder is never written to) and reported.
    """
    if name not in MNIST_FILES:
        raise ValueError(f"{name!r} is not one of the MNIST files: {', '.join(MNIST_FILES)}.")
    expected = MNIST_FILES[name]
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    looked, problems = [], []

    env_dir = os.environ.get("MNIST_DIR")
    if env_dir:
        candidate = Path(env_dir).expanduser() / name
        looked.append(f"MNIST_DIR: {candidate}")
        if candidate.is_file():
            if _sha256(candidate) == expected:
                return candidate
            problems.append(f"{candidate} failed its SHA-256 check (corrupt or truncated); it was left in place")

    candidate = data_dir / name
    looked.append(f"cache folder: {candidate}")
    if candidate.is_file():
        if _sha256(candidate) == expected:
            return candidate
        aside = candidate.with_name(candidate.name + ".corrupt")
        os.replace(candidate, aside)
        problems.append(f"{candidate} failed its SHA-256 check (corrupt or truncated); moved aside to {aside.name}")

    failures = []
    if download:
        for base in _mirrors():
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
    raise MNISTNotFoundError(_not_found_message(name, looked, problems, failures, download, data_dir))


def _not_found_message(name, looked, problems, failures, download, data_dir) -> str:
    lines = [f"Could not find a verified copy of the MNIST file {name}.", "Looked in:"]
    lines += [f"  - {p}" for p in looked]
    if not os.environ.get("MNIST_DIR"):
        lines.append("  - MNIST_DIR: not set")
    if problems:
        lines.append("Problems with local copies:")
        lines += [f"  - {p}" for p in problems]
    if download:
        lines.append("Download attempts (each mirror in turn):")
        lines += [f"  - {f}" for f in failures] or ["  - no mirrors configured (MNIST_MIRRORS is empty)"]
    else:
        lines.append("Downloading was switched off (download=False).")
    lines += [
        "How to fix it, either way works:",
        f"  1. Put the four original MNIST files ({', '.join(MNIST_FILES)}) in a folder and point the "
        "environment variable MNIST_DIR at it (e.g. `export MNIST_DIR=/path/to/mnist`, then restart the kernel).",
        f"  2. Connect to the internet and run again: the files are downloaded once into {data_dir}, "
        "or copy them there yourself.",
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


def load_mnist(split: str = "train", data_dir: str | Path | None = None, download: bool = True):
    """Load one MNIST split as tensors: images `uint8 [N, 28, 28]` and labels `int64 [N]`.

    `split` is "train" (60,000 images) or "test" (10,000). Returns fresh tensors each call, so changing
    them in place never changes what the next call returns. Introduced in notebook 00.
    """
    if split not in SPLIT_FILES:
        raise ValueError(
            f"split must be 'train' (60,000 images) or 'test' (10,000 images), got {split!r}. "
            "(The 3-vs-7 validation set comes from the 'test' split: see three_vs_seven().)"
        )
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
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


def three_vs_seven(data_dir: str | Path | None = None, download: bool = True) -> ThreeSeven:
    """The 3-vs-7 task of notebooks 02-04, with fastai's MNIST_SAMPLE split.

    Train: MNIST's training threes then sevens (6131 + 6265 = 12396). Valid: its test threes then sevens
    (1010 + 1028 = 2038). `x` is float32 `[N, 784]` scaled to [0, 1]; `y` is float32 `[N]`, 1.0 for a three.
    Introduced in notebook 02, where the same tensors are built by hand first.
    """
    out = []
    for split in ("train", "test"):
        images, labels = load_mnist(split, data_dir, download)
        threes, sevens = images[labels == 3], images[labels == 7]
        x = torch.cat([threes, sevens]).reshape(-1, 28 * 28).float() / 255
        y = torch.cat([torch.ones(len(threes)), torch.zeros(len(sevens))])
        out += [x, y]
    return ThreeSeven(*out)
