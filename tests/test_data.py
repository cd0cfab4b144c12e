"""helpers.data: the real files parse to the published counts, and the download path is careful, for both data sets.

Three parts:

- Real data (needs the four MNIST files and names.txt; CI sets MNIST_DIR and NAMES_DIR): parsing agrees with a
  plain NumPy reader, the published per-digit counts, the 3-vs-7 task, the train/valid/test split, fresh copies,
  the on-disk `.pt` cache; the names file's published counts.
- The download path, against a small HTTP server on 127.0.0.1 that these tests start themselves: mirrors that
  answer 404, serve a truncated or a corrupted file, or cut the connection, then a good one; the same cases
  for MNIST and for names.txt. Nothing here touches the internet or the repository's data folder
  (HELPERS_DATA_DIR points at a temporary data root).
- Bad input: unknown splits, files and data sets, bad `n_valid`, malformed IDX files.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import helpers.data as data
from helpers.data import (
    DATASETS,
    MNIST_FILES,
    NAMES_FILES,
    DataNotFoundError,
    IDXFormatError,
    find_data_file,
    find_mnist_file,
    load_mnist,
    load_names,
    mnist_split_indices,
    mnist_splits,
    parse_idx,
    three_vs_seven,
)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
NAMES = "names.txt"


# --------------------------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=8)
def plain_idx_reader(path: Path) -> np.ndarray:
    """An independent reader (the one in shared/data/README.md), used as the oracle for parse_idx."""
    raw = gzip.open(path, "rb").read()
    magic, n = int.from_bytes(raw[0:4], "big"), int.from_bytes(raw[4:8], "big")
    if magic == 2051:
        rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)
    assert magic == 2049
    return np.frombuffer(raw, np.uint8, offset=8)


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """Gzipped IDX bytes of a uint8 array: images [N, rows, cols] or labels [N]."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if magic is None:
        magic = 2051 if arr.ndim == 3 else 2049
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return gzip.compress(header + arr.tobytes(), mtime=0)


def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def corrupted(blob: bytes) -> bytes:
    """Same length, a few bytes in the middle flipped."""
    b = bytearray(blob)
    mid = len(b) // 2
    for i in range(mid, mid + 8):
        b[i] ^= 0xFF
    return bytes(b)


def real_mnist_dir() -> Path:
    """The folder with the four original files: MNIST_DIR (CI sets it), else the default data folder."""
    env = os.environ.get("MNIST_DIR")
    folder = Path(env).expanduser() if env else data.default_data_dir()
    missing = [name for name in MNIST_FILES if not (folder / name).is_file()]
    if missing:
        where = f"MNIST_DIR={env}" if env else f"MNIST_DIR is not set and the default folder {folder}"
        pytest.skip(
            f"real MNIST files not available ({where} lacks {', '.join(missing)}); "
            "export MNIST_DIR=/path/to/mnist (CI sets it) to run the real-data tests"
        )
    return folder


# ------------------------------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    return real_mnist_dir()


@pytest.fixture(scope="module")
def real_cache(mnist_dir, tmp_path_factory):
    """A private cache folder for the real-data tests; its in-memory entries are dropped afterwards."""
    folder = tmp_path_factory.mktemp("mnist-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNIST_DIR", str(mnist_dir))
        yield folder
    for key in [k for k in data._memory_cache if k[0] == str(folder)]:
        del data._memory_cache[key]
    plain_idx_reader.cache_clear()


@pytest.fixture
def fresh_memory(monkeypatch):
    """An empty in-memory cache for this test only (the module-level one is restored afterwards)."""
    monkeypatch.setattr(data, "_memory_cache", {})


@pytest.mark.parametrize("name", list(MNIST_FILES))
def test_real_files_match_their_sums_and_parse_like_a_plain_reader(mnist_dir, name):
    path = mnist_dir / name
    assert sha(path.read_bytes()) == MNIST_FILES[name]
    ours, plain = parse_idx(path), plain_idx_reader(path)
    assert ours.dtype == np.uint8
    assert ours.shape == plain.shape
    assert ours.shape[0] in (60000, 10000)
    if "images" in name:
        assert ours.shape[1:] == (28, 28)
    np.testing.assert_array_equal(ours, plain)


@pytest.mark.parametrize("split, counts", [("train", TRAIN_COUNTS), ("test", TEST_COUNTS)])
def test_load_mnist_shapes_dtypes_counts_and_pixels(real_cache, mnist_dir, split, counts):
    images, labels = load_mnist(split, real_cache)
    n = sum(counts)
    assert images.shape == (n, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=10).tolist() == counts
    assert int(images.min()) == 0 and int(images.max()) == 255
    img_name, lbl_name = data.SPLIT_FILES[split]
    assert torch.equal(images, torch.from_numpy(plain_idx_reader(mnist_dir / img_name).copy()))
    assert torch.equal(labels, torch.from_numpy(plain_idx_reader(mnist_dir / lbl_name).astype(np.int64)))


def test_train_and_test_split_sizes(real_cache):
    assert len(load_mnist("train", real_cache)[0]) == 60000
    assert len(load_mnist("test", real_cache)[0]) == 10000


def test_load_mnist_returns_fresh_copies(real_cache):
    images, labels = load_mnist("test", real_cache)
    first_image, first_label = images[0].clone(), labels[0].item()
    images.zero_()
    labels.fill_(99)
    again_images, again_labels = load_mnist("test", real_cache)
    assert torch.equal(again_images[0], first_image) and again_images[0].sum() > 0
    assert again_labels[0].item() == first_label
    assert again_images.data_ptr() != images.data_ptr()


def test_a_second_load_in_the_same_process_comes_from_memory(real_cache, monkeypatch):
    images, labels = load_mnist("test", real_cache)

    def no_disk(*args, **kwargs):
        raise AssertionError("load_mnist went to disk although the split is cached in memory")

    monkeypatch.setattr(data, "_load_split", no_disk)
    again_images, again_labels = load_mnist("test", real_cache)
    assert torch.equal(again_images, images) and torch.equal(again_labels, labels)


def test_three_vs_seven(real_cache):
    t = three_vs_seven(real_cache)
    assert t.train_x.shape == (6131 + 6265, 784) == (12396, 784)
    assert t.train_y.shape == (12396,)
    assert t.valid_x.shape == (1010 + 1028, 784) == (2038, 784)
    assert t.valid_y.shape == (2038,)
    for x, y in [(t.train_x, t.train_y), (t.valid_x, t.valid_y)]:
        assert x.dtype == torch.float32 and y.dtype == torch.float32
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        assert set(y.unique().tolist()) == {0.0, 1.0}
    assert t.train_y.sum().item() == 6131 and t.valid_y.sum().item() == 1010
    # threes first (y = 1.0), then sevens; the pixels are the uint8 images divided by 255
    images, labels = load_mnist("train", real_cache)
    threes = images[labels == 3].reshape(-1, 784).float() / 255
    sevens = images[labels == 7].reshape(-1, 784).float() / 255
    assert torch.equal(t.train_y[:6131], torch.ones(6131)) and torch.equal(t.train_y[6131:], torch.zeros(6265))
    assert torch.equal(t.train_x[:6131], threes) and torch.equal(t.train_x[6131:], sevens)
    images, labels = load_mnist("test", real_cache)
    assert torch.equal(t.valid_x[:1010], images[labels == 3].reshape(-1, 784).float() / 255)


def test_mnist_splits_sizes_dtypes_and_an_untouched_test_set(real_cache):
    s = mnist_splits(data_dir=real_cache)
    assert s._fields == ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")
    assert [len(t) for t in s] == [50000, 50000, 10000, 10000, 10000, 10000]
    for x, y in [(s.train_x, s.train_y), (s.valid_x, s.valid_y), (s.test_x, s.test_y)]:
        assert x.dtype == torch.uint8 and x.shape[1:] == (28, 28) and y.dtype == torch.int64
    test_x, test_y = load_mnist("test", real_cache)
    assert torch.equal(s.test_x, test_x) and torch.equal(s.test_y, test_y)


def test_train_and_valid_are_mnists_training_set_cut_in_two(real_cache):
    s = mnist_splits(data_dir=real_cache)
    images, labels = load_mnist("train", real_cache)
    train_idx, valid_idx = mnist_split_indices()
    # by index: together exactly range(60000), no image in both
    assert len(set(train_idx.tolist()) & set(valid_idx.tolist())) == 0
    assert torch.equal(torch.cat([train_idx, valid_idx]).sort().values, torch.arange(60000))
    assert torch.equal(s.train_x, images[train_idx]) and torch.equal(s.train_y, labels[train_idx])
    assert torch.equal(s.valid_x, images[valid_idx]) and torch.equal(s.valid_y, labels[valid_idx])
    # as multisets: the labels of train + valid are MNIST's training labels, per digit
    both = torch.bincount(s.train_y, minlength=10) + torch.bincount(s.valid_y, minlength=10)
    assert both.tolist() == TRAIN_COUNTS
    # every digit is in the validation set in about its share (a random 1/6 of each class)
    assert torch.allclose(torch.bincount(s.valid_y).float() / torch.tensor(TRAIN_COUNTS).float(),
                          torch.full((10,), 1 / 6), atol=0.02)


def test_the_same_seed_gives_the_same_split_and_another_seed_another(real_cache):
    a, b = mnist_splits(data_dir=real_cache), mnist_splits(n_valid=10_000, seed=42, data_dir=real_cache)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    torch.manual_seed(0)  # the split does not depend on the global generator
    assert torch.equal(mnist_split_indices(seed=42)[1], mnist_split_indices(seed=42)[1])
    c = mnist_splits(seed=7, data_dir=real_cache)
    assert not torch.equal(c.valid_y, a.valid_y)
    small = mnist_splits(n_valid=5000, data_dir=real_cache)
    assert (len(small.train_x), len(small.valid_x)) == (55000, 5000)


def test_split_indices_are_sorted_disjoint_and_complete():
    train_idx, valid_idx = mnist_split_indices(n_valid=30, seed=1, n=100)
    assert train_idx.dtype == valid_idx.dtype == torch.int64
    assert len(train_idx) == 70 and len(valid_idx) == 30
    assert torch.equal(train_idx, train_idx.sort().values) and torch.equal(valid_idx, valid_idx.sort().values)
    assert torch.equal(torch.cat([train_idx, valid_idx]).sort().values, torch.arange(100))


@pytest.mark.parametrize("n_valid", [0, -5, 2.5, True, "10k", None, 60000, 70000])
def test_mnist_splits_rejects_a_bad_n_valid(n_valid):
    with pytest.raises(ValueError, match="n_valid") as info:
        mnist_splits(n_valid=n_valid)  # checked before any file is read
    assert repr(n_valid) in str(info.value) and "10_000" in str(info.value)


@pytest.mark.parametrize("seed", [1.5, "42", None, False])
def test_mnist_splits_rejects_a_bad_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        mnist_splits(seed=seed)


def _cache_file(folder: Path, split: str) -> Path:
    found = sorted(folder.glob(f"mnist-{split}-*.pt"))
    assert len(found) == 1, f"expected one {split} cache file in {folder}, found {found}"
    return found[0]


def test_second_load_reads_the_pt_cache(mnist_dir, tmp_path, monkeypatch, fresh_memory):
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    images, labels = load_mnist("test", tmp_path)
    cache = _cache_file(tmp_path, "test")
    assert not list(tmp_path.glob("*.tmp")), "the atomic save left its temporary file behind"

    # A new in-memory state, and the raw files made unreachable: only the .pt cache can answer.
    monkeypatch.setattr(data, "_memory_cache", {})

    def no_raw_files(*args, **kwargs):
        raise AssertionError("the raw IDX files were read although a .pt cache exists")

    monkeypatch.setattr(data, "find_mnist_file", no_raw_files)
    monkeypatch.setattr(data, "parse_idx", no_raw_files)
    again_images, again_labels = load_mnist("test", tmp_path)
    assert torch.equal(again_images, images) and torch.equal(again_labels, labels)
    assert cache.is_file()


@pytest.mark.parametrize("bad_cache", ["garbage bytes", "wrong dtypes"])
def test_a_bad_pt_cache_is_rebuilt(mnist_dir, tmp_path, monkeypatch, fresh_memory, bad_cache):
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    images, labels = load_mnist("test", tmp_path)
    cache = _cache_file(tmp_path, "test")
    if bad_cache == "garbage bytes":
        cache.write_bytes(b"this is not a torch file")
    else:
        torch.save({"images": images.float(), "labels": labels.int()}, cache)
    monkeypatch.setattr(data, "_memory_cache", {})
    again_images, again_labels = load_mnist("test", tmp_path)
    assert torch.equal(again_images, images) and torch.equal(again_labels, labels)
    saved = torch.load(cache, weights_only=True)  # rewritten with the good tensors
    assert torch.equal(saved["images"], images) and torch.equal(saved["labels"], labels)


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("split", ["valid", "training", "", None])
def test_load_mnist_rejects_a_bad_split(split):
    with pytest.raises(ValueError) as info:
        load_mnist(split)
    msg = str(info.value)
    assert "'train'" in msg and "'test'" in msg and repr(split) in msg


def test_find_mnist_file_rejects_an_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        find_mnist_file("mnist.npz", tmp_path, download=False)


def test_wrong_magic_raises_idx_format_error_naming_the_file(tmp_path):
    path = tmp_path / "odd-images.gz"
    path.write_bytes(idx_bytes(np.zeros((2, 28, 28), np.uint8), magic=1234))
    with pytest.raises(IDXFormatError) as info:
        parse_idx(path)
    msg = str(info.value)
    assert "odd-images.gz" in msg and "1234" in msg and "2051" in msg and "2049" in msg


def test_size_mismatch_and_short_files_raise_idx_format_error(tmp_path):
    path = tmp_path / "short-images.gz"
    good = gzip.decompress(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    path.write_bytes(gzip.compress(good[:-10]))
    with pytest.raises(IDXFormatError, match="short-images.gz"):
        parse_idx(path)
    tiny = tmp_path / "tiny.gz"
    tiny.write_bytes(gzip.compress(b"\x00\x00"))
    with pytest.raises(IDXFormatError, match="tiny.gz"):
        parse_idx(tiny)


def test_a_file_that_is_not_gzip_raises_idx_format_error(tmp_path):
    path = tmp_path / "plain-labels.gz"
    path.write_bytes(b"<html>Not Found</html>" * 10)
    with pytest.raises(IDXFormatError, match="plain-labels.gz"):
        parse_idx(path)


def test_uncompressed_idx_files_parse_too(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(gzip.decompress(idx_bytes(labels)))
    np.testing.assert_array_equal(parse_idx(path), labels)


# ------------------------------------------------------------------------------- the download path


class MirrorServer:
    """One HTTP server on 127.0.0.1 holding several mirrors, each a folder name mapped to its files.

    A mirror's mode says how it answers: "good" (the bytes as given), "missing" (404 for everything),
    or "cut" (announces the full length, sends half, closes the connection). Every request is logged.
    """

    def __init__(self):
        self.mirrors: dict[str, tuple[str, dict[str, bytes]]] = {}
        self.log: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.log.append(self.path)
                mirror, _, name = self.path.lstrip("/").partition("/")
                mode, files = server.mirrors.get(mirror, ("missing", {}))
                if mode == "missing" or name not in files:
                    self.send_error(404, "Not Found")
                    return
                blob = files[name]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob[: len(blob) // 2] if mode == "cut" else blob)
                self.close_connection = True

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, mirror: str, files: dict[str, bytes], mode: str = "good") -> str:
        self.mirrors[mirror] = (mode, dict(files))
        return f"{self.base}/{mirror}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = MirrorServer()
    yield srv
    srv.close()


@pytest.fixture
def offline_root(tmp_path, monkeypatch, fresh_memory):
    """No MNIST_DIR or NAMES_DIR, a temporary data root (HELPERS_DATA_DIR), no proxies; returns the root."""
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.delenv("NAMES_DIR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "data-root"
    monkeypatch.setenv("HELPERS_DATA_DIR", str(root))
    assert data.data_root() == root
    return root


@pytest.fixture
def offline_env(offline_root):
    """`offline_root`'s MNIST folder (`<root>/mnist`), where downloads and caches of MNIST go."""
    assert data.default_data_dir() == data.default_data_dir("mnist") == offline_root / "mnist"
    return offline_root / "mnist"


@pytest.fixture
def synthetic(monkeypatch):
    """Small synthetic test-split files (30 digits) whose sums replace the real ones in MNIST_FILES."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    labels = (np.arange(30) % 10).astype(np.uint8)
    files = {TEST_IMAGES: idx_bytes(images), TEST_LABELS: idx_bytes(labels)}
    for name, blob in files.items():
        monkeypatch.setitem(MNIST_FILES, name, sha(blob))
    return files, images, labels


def _bad_mirrors(server: MirrorServer, files: dict[str, bytes]) -> list[str]:
    """Mirrors that each fail in their own way, in this order: 404, truncated, cut off, corrupted."""
    return [
        server.add("missing", {}, mode="missing"),
        server.add("short", {n: b[: len(b) // 3] for n, b in files.items()}),
        server.add("cut", files, mode="cut"),
        server.add("corrupt", {n: corrupted(b) for n, b in files.items()}),
    ]


def test_download_falls_through_bad_mirrors_to_a_verified_file(offline_env, server, synthetic, monkeypatch):
    files, images, labels = synthetic
    mirrors = _bad_mirrors(server, files) + [server.add("good", files)]
    monkeypatch.setenv("MNIST_MIRRORS", ",".join(mirrors))

    path = find_mnist_file(TEST_IMAGES)
    assert path == offline_env / TEST_IMAGES
    assert sha(path.read_bytes()) == MNIST_FILES[TEST_IMAGES]
    assert server.log == [f"/{m}/{TEST_IMAGES}" for m in ("missing", "short", "cut", "corrupt", "good")]
    assert sorted(p.name for p in offline_env.iterdir()) == [TEST_IMAGES], "a .part file was left behind"

    got_images, got_labels = load_mnist("test")
    assert torch.equal(got_images, torch.from_numpy(images))
    assert torch.equal(got_labels, torch.from_numpy(labels.astype(np.int64)))
    assert not list(offline_env.glob("*.part")) and not list(offline_env.glob("*.corrupt"))


def test_verified_files_in_the_cache_are_not_downloaded_again(offline_env, server, synthetic, monkeypatch):
    files, _, _ = synthetic
    monkeypatch.setenv("MNIST_MIRRORS", server.add("good", files))
    find_mnist_file(TEST_LABELS)
    find_mnist_file(TEST_LABELS)
    assert server.log == [f"/good/{TEST_LABELS}"]


def test_real_test_split_downloads_end_to_end(mnist_dir, offline_env, server, monkeypatch):
    files = {name: (mnist_dir / name).read_bytes() for name in (TEST_IMAGES, TEST_LABELS)}
    mirrors = _bad_mirrors(server, files) + [server.add("good", files)]
    monkeypatch.setenv("MNIST_MIRRORS", ",".join(mirrors))
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and torch.bincount(labels).tolist() == TEST_COUNTS
    assert torch.equal(images, torch.from_numpy(plain_idx_reader(mnist_dir / TEST_IMAGES).copy()))
    names = {p.name for p in offline_env.iterdir()}
    assert names == {TEST_IMAGES, TEST_LABELS, _cache_file(offline_env, "test").name}, names
    for name in files:
        assert sha((offline_env / name).read_bytes()) == MNIST_FILES[name]


def test_failed_downloads_leave_no_part_file(offline_env, server, synthetic, monkeypatch):
    files, _, _ = synthetic
    monkeypatch.setenv("MNIST_MIRRORS", ",".join(_bad_mirrors(server, files)))
    with pytest.raises(DataNotFoundError):
        find_mnist_file(TEST_IMAGES)
    assert len(server.log) == 4
    assert not offline_env.exists() or list(offline_env.iterdir()) == [], list(offline_env.iterdir())


def test_a_corrupt_file_in_the_cache_is_moved_aside_and_replaced(offline_env, server, synthetic, monkeypatch):
    files, _, _ = synthetic
    monkeypatch.setenv("MNIST_MIRRORS", server.add("good", files))
    offline_env.mkdir(parents=True)
    bad = corrupted(files[TEST_IMAGES])
    (offline_env / TEST_IMAGES).write_bytes(bad)

    with pytest.warns(UserWarning, match=f"{TEST_IMAGES}.*moved aside to {TEST_IMAGES}.corrupt"):
        path = find_mnist_file(TEST_IMAGES)
    assert path == offline_env / TEST_IMAGES
    assert path.read_bytes() == files[TEST_IMAGES]
    assert (offline_env / (TEST_IMAGES + ".corrupt")).read_bytes() == bad
    assert server.log == [f"/good/{TEST_IMAGES}"]


def test_a_corrupt_file_in_mnist_dir_is_left_alone(offline_env, server, synthetic, tmp_path, monkeypatch):
    files, _, _ = synthetic
    readonly = tmp_path / "shared-mnist"
    readonly.mkdir()
    bad = corrupted(files[TEST_LABELS])
    (readonly / TEST_LABELS).write_bytes(bad)
    monkeypatch.setenv("MNIST_DIR", str(readonly))
    monkeypatch.setenv("MNIST_MIRRORS", server.add("good", files))

    path = find_mnist_file(TEST_LABELS)
    assert path == offline_env / TEST_LABELS and path.read_bytes() == files[TEST_LABELS]
    assert [p.name for p in readonly.iterdir()] == [TEST_LABELS], "MNIST_DIR must never be written to"
    assert (readonly / TEST_LABELS).read_bytes() == bad


def test_a_good_file_in_mnist_dir_is_used_without_downloading(offline_env, server, synthetic, tmp_path, monkeypatch):
    files, _, _ = synthetic
    readonly = tmp_path / "shared-mnist"
    readonly.mkdir()
    (readonly / TEST_LABELS).write_bytes(files[TEST_LABELS])
    monkeypatch.setenv("MNIST_DIR", str(readonly))
    monkeypatch.setenv("MNIST_MIRRORS", server.add("good", files))
    assert find_mnist_file(TEST_LABELS) == readonly / TEST_LABELS
    assert server.log == []


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


def _assert_offline_advice(msg: str, data_dir: Path):
    assert f"MNIST file {TEST_IMAGES}" in msg
    assert "Looked in:" in msg and str(data_dir / TEST_IMAGES) in msg
    assert "MNIST_DIR" in msg and "export MNIST_DIR=" in msg  # fix 1: point MNIST_DIR at the files
    assert "Connect to the internet" in msg and str(data_dir) in msg and "copy them there" in msg  # fix 2


def test_offline_message_names_places_mirrors_and_both_fixes(offline_env, server, monkeypatch):
    closed = f"http://127.0.0.1:{_closed_port()}/mnist/"
    missing = server.add("missing", {}, mode="missing")
    monkeypatch.setenv("MNIST_MIRRORS", f"{closed},{missing}")
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("test")
    msg = str(info.value)
    _assert_offline_advice(msg, offline_env)
    assert "MNIST_DIR: not set" in msg
    assert closed + TEST_IMAGES in msg and missing + TEST_IMAGES in msg
    assert "HTTP 404" in msg and "Connection refused" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_offline_message_with_no_mirrors_and_a_corrupt_mnist_dir(offline_env, tmp_path, monkeypatch):
    readonly = tmp_path / "shared-mnist"
    readonly.mkdir()
    (readonly / TEST_IMAGES).write_bytes(b"truncated")
    monkeypatch.setenv("MNIST_DIR", str(readonly))
    monkeypatch.setenv("MNIST_MIRRORS", "")
    with pytest.raises(DataNotFoundError) as info:
        find_mnist_file(TEST_IMAGES)
    msg = str(info.value)
    _assert_offline_advice(msg, offline_env)
    assert str(readonly / TEST_IMAGES) in msg and "left in place" in msg
    assert "no addresses configured" in msg and "MNIST_MIRRORS is empty" in msg


def test_download_false_says_so(offline_env, monkeypatch):
    monkeypatch.setenv("MNIST_MIRRORS", f"http://127.0.0.1:{_closed_port()}/")
    with pytest.raises(DataNotFoundError, match="download=False") as info:
        find_mnist_file(TEST_IMAGES, download=False)
    _assert_offline_advice(str(info.value), offline_env)


def test_a_verified_file_with_a_wrong_magic_fails_loudly_in_load_mnist(offline_env, server, monkeypatch):
    files = {
        TEST_IMAGES: idx_bytes(np.zeros((4, 28, 28), np.uint8), magic=2049 + 7),
        TEST_LABELS: idx_bytes(np.zeros(4, np.uint8)),
    }
    for name, blob in files.items():
        monkeypatch.setitem(MNIST_FILES, name, sha(blob))
    monkeypatch.setenv("MNIST_MIRRORS", server.add("good", files))
    with pytest.raises(IDXFormatError, match=TEST_IMAGES.replace(".", r"\.")):
        load_mnist("test")


@pytest.mark.parametrize("dataset, env", [("mnist", "MNIST_MIRRORS"), ("names", "NAMES_MIRRORS")])
def test_the_mirrors_env_replaces_the_list(monkeypatch, dataset, env):
    ds = DATASETS[dataset]
    assert ds.mirrors_env == env
    monkeypatch.setenv(env, " http://a.example/x , http://b.example/y/ ,")
    assert ds.mirror_urls() == ["http://a.example/x/", "http://b.example/y/"]
    monkeypatch.delenv(env)
    assert ds.mirror_urls() == list(ds.mirrors)


def test_one_table_describes_both_data_sets(offline_root):
    assert set(DATASETS) == {"mnist", "names"}
    assert DATASETS["mnist"].files is MNIST_FILES and DATASETS["names"].files is NAMES_FILES
    assert NAMES_FILES == {NAMES: "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"}
    assert DATASETS["names"].mirrors == ("https://raw.githubusercontent.com/karpathy/makemore/master/",)
    assert (DATASETS["mnist"].dir_env, DATASETS["names"].dir_env) == ("MNIST_DIR", "NAMES_DIR")
    for key, ds in DATASETS.items():
        assert data.default_data_dir(key) == offline_root / key  # one subfolder of the data root per data set
        assert ds.licence and ds.source
    assert issubclass(DataNotFoundError, FileNotFoundError)


def test_the_default_root_is_the_repository_data_folder(monkeypatch):
    monkeypatch.delenv("HELPERS_DATA_DIR", raising=False)
    root = Path(data.__file__).resolve().parents[2] / "data"
    assert data.data_root() == root
    assert data.default_data_dir("names") == root / "names" and data.default_data_dir() == root / "mnist"


def test_an_unknown_data_set_or_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'mnist', 'names'"):
        find_data_file("cifar", "x.bin", tmp_path, download=False)
    with pytest.raises(ValueError, match="'mnist', 'names'"):
        data.default_data_dir("fashion")
    with pytest.raises(ValueError, match="names.txt"):
        find_data_file("names", "names.csv", tmp_path, download=False)



# ---------------------------------------------------------------------------------------------- names.txt


@pytest.fixture(scope="module")
def names_dir() -> Path:
    """The folder with the verified names.txt: NAMES_DIR (CI sets it), else the default data folder."""
    env = os.environ.get("NAMES_DIR")
    folder = Path(env).expanduser() if env else data.default_data_dir("names")
    if not (folder / NAMES).is_file():
        pytest.skip(f"names.txt not available ({'NAMES_DIR=' + env if env else folder}); "
                    "export NAMES_DIR=/path/to/names (CI sets it) to run the real-data tests")
    return folder


def test_the_real_names_file_has_the_published_counts(names_dir, monkeypatch):
    monkeypatch.setenv("NAMES_DIR", str(names_dir))
    assert sha((names_dir / NAMES).read_bytes()) == NAMES_FILES[NAMES]
    names = load_names()
    assert len(names) == 32033 and len(set(names)) == 29494
    assert names[:3] == ["emma", "olivia", "ava"]
    assert set("".join(names)) == set("abcdefghijklmnopqrstuvwxyz") and max(map(len, names)) == 15
    names.clear()
    assert len(load_names()) == 32033  # a fresh list each call


@pytest.fixture
def synthetic_names(monkeypatch):
    """A small names.txt whose sum replaces the real one in NAMES_FILES."""
    blob = b"\n".join([b"emma", b"olivia", b"ava", b"isabella", b"sophia"])
    monkeypatch.setitem(NAMES_FILES, NAMES, sha(blob))
    return blob


def test_names_download_falls_through_bad_mirrors_to_a_verified_file(offline_root, server, synthetic_names,
                                                                     monkeypatch):
    files = {NAMES: synthetic_names}
    mirrors = _bad_mirrors(server, files) + [server.add("good", files)]
    monkeypatch.setenv("NAMES_MIRRORS", ",".join(mirrors))
    assert load_names() == ["emma", "olivia", "ava", "isabella", "sophia"]
    assert server.log == [f"/{m}/{NAMES}" for m in ("missing", "short", "cut", "corrupt", "good")]
    folder = offline_root / "names"
    assert [p.name for p in folder.iterdir()] == [NAMES], "a .part file was left behind"
    assert (folder / NAMES).read_bytes() == synthetic_names
    assert load_names() == ["emma", "olivia", "ava", "isabella", "sophia"]
    assert len(server.log) == 5, "a verified copy in the data root is not downloaded again"


def test_the_real_names_file_downloads_end_to_end(names_dir, offline_root, server, monkeypatch):
    files = {NAMES: (names_dir / NAMES).read_bytes()}
    monkeypatch.setenv("NAMES_MIRRORS", ",".join(_bad_mirrors(server, files) + [server.add("good", files)]))
    names = load_names()
    assert len(names) == 32033
    assert sha((offline_root / "names" / NAMES).read_bytes()) == NAMES_FILES[NAMES]


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_bad_names_file_in_the_data_root_is_named_moved_aside_and_replaced(offline_root, server, synthetic_names,
                                                                             monkeypatch, damage):
    folder = offline_root / "names"
    folder.mkdir(parents=True)
    bad = corrupted(synthetic_names) if damage == "corrupt" else synthetic_names[:7]
    (folder / NAMES).write_bytes(bad)
    monkeypatch.setenv("NAMES_MIRRORS", server.add("good", {NAMES: synthetic_names}))
    with pytest.warns(UserWarning, match=r"names\.txt failed its SHA-256 check.*moved aside to names\.txt\.corrupt"):
        names = load_names()
    assert names == synthetic_names.decode().split("\n")
    assert (folder / (NAMES + ".corrupt")).read_bytes() == bad
    assert server.log == [f"/good/{NAMES}"]


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_bad_names_file_in_names_dir_is_named_and_left_alone(offline_root, server, synthetic_names, tmp_path,
                                                                monkeypatch, damage):
    readonly = tmp_path / "shared-names"
    readonly.mkdir()
    bad = corrupted(synthetic_names) if damage == "corrupt" else synthetic_names[:7]
    (readonly / NAMES).write_bytes(bad)
    monkeypatch.setenv("NAMES_DIR", str(readonly))
    monkeypatch.setenv("NAMES_MIRRORS", server.add("good", {NAMES: synthetic_names}))
    assert load_names() == synthetic_names.decode().split("\n")  # the next source
    assert [p.name for p in readonly.iterdir()] == [NAMES], "NAMES_DIR must never be written to"
    assert (readonly / NAMES).read_bytes() == bad
    # with nowhere else to go, the message names the bad copy
    monkeypatch.setenv("NAMES_MIRRORS", "")
    (offline_root / "names" / NAMES).unlink()
    with pytest.raises(DataNotFoundError) as info:
        load_names()
    assert f"{readonly / NAMES} failed its SHA-256 check" in str(info.value) and "left in place" in str(info.value)


def test_a_good_names_file_in_names_dir_is_used_without_downloading(offline_root, server, synthetic_names, tmp_path,
                                                                    monkeypatch):
    readonly = tmp_path / "shared-names"
    readonly.mkdir()
    (readonly / NAMES).write_bytes(synthetic_names)
    monkeypatch.setenv("NAMES_DIR", str(readonly))
    monkeypatch.setenv("NAMES_MIRRORS", server.add("good", {NAMES: synthetic_names}))
    assert find_data_file("names", NAMES) == readonly / NAMES
    assert len(load_names()) == 5 and server.log == []
    assert not offline_root.exists(), "nothing is written to the data root when NAMES_DIR has a good copy"


def test_offline_names_message_says_where_it_looked_and_the_two_fixes(offline_root, server, monkeypatch):
    closed = f"http://127.0.0.1:{_closed_port()}/makemore/"
    missing = server.add("missing", {}, mode="missing")
    monkeypatch.setenv("NAMES_MIRRORS", f"{closed},{missing}")
    with pytest.raises(DataNotFoundError) as info:
        load_names()
    msg = str(info.value)
    folder = offline_root / "names"
    assert f"names file {NAMES}" in msg
    assert "Looked in:" in msg and str(folder / NAMES) in msg and "NAMES_DIR: not set" in msg
    assert closed + NAMES in msg and missing + NAMES in msg and "HTTP 404" in msg and "Connection refused" in msg
    assert "export NAMES_DIR=" in msg  # fix 1: point NAMES_DIR at a folder holding names.txt
    assert "Connect to the internet" in msg and str(folder) in msg and "copy it there" in msg  # fix 2
    assert "MNIST" not in msg
    assert isinstance(info.value, FileNotFoundError)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_load_names_with_download_false_says_so(offline_root):
    with pytest.raises(DataNotFoundError, match="download=False"):
        load_names(download=False)
