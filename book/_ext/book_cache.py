"""When may the book reuse its executed pages?

Jupyter Book's ``execute_notebooks: cache`` (jupyter-cache) reuses a page's outputs while the
notebook's code cells are unchanged. The outputs also depend on what the code does not show:
salrank's sources and embedded sample, the benchmark records the Table IV page reads
(``benchmarks/*.json``), the versions of the installed packages that compute the results (torch,
torchvision, numpy, scipy and salrank's other declared dependencies) and the resolved settings
(profile, data, weights, device). :func:`fingerprint` hashes those; the book's extension stores it in Sphinx's
configuration (a change re-reads every page) and points myst-nb at one jupyter-cache per
fingerprint (:func:`cache_folder`), so re-read pages execute again unless they were executed
under the same code and settings before.

Run as a script, it prints the fingerprint and what went into it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

STAMP = "salrank-fingerprint.txt"
"""File inside the jupyter-cache folder holding the fingerprint the cache was filled under."""

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
"""The source checkout's benchmark records folder (the Table IV page reads its ``*.json``)."""

RESULT_PACKAGES = ("torch", "torchvision", "numpy", "scipy")
"""Packages whose version is always in the fingerprint; :func:`result_packages` adds salrank's
declared dependencies."""

_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def package_files(root: Path) -> list[Path]:
    """The files under ``root`` that can change a page's outputs: every file (sources, embedded
    sample data) except bytecode and checkpoints, sorted."""
    root = Path(root)
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix not in _SKIP_SUFFIXES and not _SKIP_DIRS & set(p.relative_to(root).parts))


def _folder_listing(folder: Path | None, limit: int = 20000) -> list:
    """Cheap identity of an external folder (data, weights): names, sizes and mtimes of its files
    (at most ``limit``), not their contents."""
    if folder is None:
        return []
    folder = Path(folder)
    if not folder.exists():
        return [str(folder), "missing"]
    listing = []
    for i, p in enumerate(sorted(folder.rglob("*"))):
        if i >= limit:
            listing.append("...")
            break
        if p.is_file():
            st = p.stat()
            listing.append([str(p.relative_to(folder)), st.st_size, int(st.st_mtime)])
    return [str(folder), listing]


def settings_record(env: Mapping[str, str] | None = None) -> dict:
    """The resolved settings (``salrank.config.get_settings``, its ``SALRANK_*`` variables taken
    from ``env``, default ``os.environ``) that a page's outputs depend on, with the identity of the
    data and weights folders. The cache folder is left out: it holds derived files only."""
    import os

    from salrank.config import get_settings

    env = os.environ if env is None else env
    settings = get_settings(profile=env.get("SALRANK_PROFILE") or "sample", data_root=env.get("SALRANK_DATA"),
                            weights_dir=env.get("SALRANK_WEIGHTS"), device=env.get("SALRANK_DEVICE") or "auto")
    if env is not os.environ:  # overrides cannot unset a variable set in os.environ
        settings = replace(settings, data_root=_resolved(env.get("SALRANK_DATA")),
                           weights_dir=_resolved(env.get("SALRANK_WEIGHTS")))
    return {
        "profile": settings.profile,
        "data_root": _folder_listing(settings.data_root),
        "weights_dir": _folder_listing(settings.weights_dir),
        "device": settings.device,
    }


def benchmark_files(folder: Path | None = None) -> list[Path]:
    """The benchmark records (``*.json``) in ``folder`` (default :data:`BENCHMARKS`), sorted; none
    when the folder is missing."""
    folder = BENCHMARKS if folder is None else Path(folder)
    return sorted(p for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else []


def result_packages() -> list[str]:
    """:data:`RESULT_PACKAGES` and the dependencies salrank declares (``importlib.metadata``: its
    ``pyproject.toml`` dependencies and its ``extras`` extra, not the ``test``/``dev`` tools), sorted."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    try:
        declared = requires("salrank") or []
    except PackageNotFoundError:  # salrank imported from a checkout that is not installed
        declared = []
    names = set(RESULT_PACKAGES)
    for spec in declared:
        requirement = Requirement(spec)
        if requirement.marker is None or requirement.marker.evaluate({"extra": "extras"}):
            names.add(requirement.name.lower())
    return sorted(names)


def versions_record(packages=None) -> dict:
    """Installed version of each of ``packages`` (default :func:`result_packages`; ``None`` when
    missing), by :func:`salrank.provenance.package_versions`."""
    from salrank.provenance import package_versions

    return package_versions(result_packages() if packages is None else packages)


def _resolved(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def fingerprint(package_root: Path | None = None, env: Mapping[str, str] | None = None,
                benchmarks: Path | None = None) -> str:
    """SHA-256 (hex) of the contents and relative paths of :func:`package_files` of
    ``package_root`` (default: the installed ``salrank`` package) and of :func:`benchmark_files` of
    ``benchmarks`` (default :data:`BENCHMARKS`), of :func:`versions_record` and of
    :func:`settings_record` under ``env``."""
    if package_root is None:
        import salrank

        package_root = Path(salrank.__file__).parent
    package_root = Path(package_root)
    digest = hashlib.sha256()
    for path in package_files(package_root):
        digest.update(str(path.relative_to(package_root).as_posix()).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    benchmarks = BENCHMARKS if benchmarks is None else Path(benchmarks)
    for path in benchmark_files(benchmarks):
        digest.update(b"benchmarks/" + path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    record = {"settings": settings_record(env), "versions": versions_record()}
    digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def cache_folder(base: Path | str, current: str, keep: int = 3) -> Path:
    """The jupyter-cache folder for the fingerprint ``current``: ``base/<first 16 hex digits>``,
    created when missing and marked as the most recently used. Switching settings back (e.g.
    ``SALRANK_PROFILE``) finds its executed pages again; the ``keep`` most recently used folders
    are kept, older ones (and anything else in ``base``, such as a cache without fingerprint)
    are deleted."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    base = Path(base)
    folder = base / current[:16]
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / STAMP
    stamp.write_text(current + "\n")  # also refreshes the folder's time of last use
    folders = [p for p in base.iterdir() if p.is_dir() and (p / STAMP).is_file()]
    folders.sort(key=lambda p: (p / STAMP).stat().st_mtime_ns, reverse=True)
    stale = [p for p in base.iterdir() if p != folder and (p not in folders[:keep] or not p.is_dir())]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return folder


if __name__ == "__main__":
    print(json.dumps({"settings": settings_record(), "versions": versions_record(),
                      "benchmarks": [str(p) for p in benchmark_files()]}, indent=1, default=str))
    print(fingerprint())
