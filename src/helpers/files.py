"""Writing a file so that it is never seen half-written: `atomic_write`.

Layer 1 of the helpers package: imports nothing from the rest of `helpers`. Used by `checkpoint` (checkpoints),
`data` (downloads and the decoded cache) and `distributed` (the rank-0 log).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path, write, suffix: str = ".tmp") -> Path:
    """Call `write(f)` on a temporary binary file beside `path`, flush it to disk, rename it over `path`.

    The temporary file (named `<name>.<random><suffix>`) sits in the same folder, so `os.replace` is a rename on
    one file system: atomic. If `write` raises (or a KeyboardInterrupt comes) the temporary file is removed and
    `path` keeps its old content, so a check inside `write` (a checksum, say) decides whether `path` is replaced.
    Returns `path`. Used for checkpoints, `helpers.distributed`'s log, and `helpers.data`'s downloads and cache.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
