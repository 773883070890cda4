"""Reading the project's cache entries: a damaged entry is discarded (with a warning) and rebuilt.

Every cache the project keeps (parsed fixations, features, experiment results, GT tables, the
generated sample data) reads its entries through :func:`read_cache_entry`, so a file cut short,
overwritten or left by another version never breaks later runs: it is deleted and the caller
builds it again. Caches hold data only (NumPy ``.npz``/``.npy`` without pickles, JSON): reading
one never runs code.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["CacheEntryWarning", "read_cache_entry", "discard_cache_entry"]

T = TypeVar("T")


class CacheEntryWarning(UserWarning):
    """A cache entry could not be read and was discarded; it is rebuilt."""


def discard_cache_entry(path: str | os.PathLike) -> None:
    """Delete a cache entry (a file, or a folder with everything in it); missing is fine."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def read_cache_entry(path: str | os.PathLike, read: Callable[[Path], T], *, what: str = "cache entry") -> T | None:
    """``read(path)``, or ``None`` when ``path`` does not exist or ``read`` fails.

    A failure (any exception of ``read``: a truncated archive, invalid JSON, a missing field,
    ...) means the entry is damaged or foreign: it is deleted (:func:`discard_cache_entry`), a
    :class:`CacheEntryWarning` names it, and ``None`` tells the caller to rebuild it. ``read``
    may itself return ``None`` for an entry that is intact but stale (it is then kept).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return read(path)
    except Exception as exc:  # noqa: BLE001 - whatever the reader raises, the entry is unusable
        detail = (str(exc).strip().splitlines() or [""])[0]
        warnings.warn(f"discarding the damaged {what} {path} ({type(exc).__name__}: {detail}); rebuilding it",
                      CacheEntryWarning, stacklevel=2)
        discard_cache_entry(path)
        return None
