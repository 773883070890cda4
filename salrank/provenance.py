"""What a result was computed with: library versions, hardware, data and weight checksums.

Used by the reproducibility page of the book and by ``salrank info``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from salrank import __version__
from salrank.config import Settings, get_settings
from salrank.weights import sha256sum

PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "effdet",
    "numpy",
    "scipy",
    "pandas",
    "pycocotools",
    "matplotlib",
    "seaborn",
    "papermill",
    "jupyter-book",
)


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (``None`` when missing)."""
    out: dict[str, str | None] = {"salrank": __version__}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def hardware() -> dict[str, object]:
    """CPU, memory and accelerator of this machine (as far as the standard library and torch tell)."""
    info: dict[str, object] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        info["memory_gib"] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["cuda"] = False
    return info


def tree_checksums(root: str | os.PathLike, patterns: Iterable[str] = ("*",)) -> pd.DataFrame:
    """SHA-256 and size of every file under ``root`` matching ``patterns`` (sorted by path)."""
    root = Path(root)
    files = sorted({p for pat in patterns for p in root.rglob(pat) if p.is_file()})
    return pd.DataFrame(
        [{"file": str(p.relative_to(root)), "bytes": p.stat().st_size, "sha256": sha256sum(p)} for p in files]
    )


def sample_data_checksums() -> pd.DataFrame:
    """Checksums of the embedded SALICON examples (images, fixations, boxes)."""
    from salrank.data.sample import salicon_examples_dir

    return tree_checksums(salicon_examples_dir(), ("*.jpg", "*.json"))


def weights_table(settings: Settings | None = None, *, checksums: bool = False) -> pd.DataFrame:
    """Every registered pretrained file: where it is expected, whether it is there (and its hash)."""
    from salrank import weights

    settings = settings or get_settings()
    rows = []
    for spec in weights.list_weights():
        found = next((p for p in weights.candidate_paths(spec) if p.is_file()), None)
        row = {
            "name": spec.name,
            "file": spec.filename,
            "found at": str(found) if found else "missing",
            "expected sha256": spec.sha256 or "unknown",
        }
        if checksums:
            row["sha256"] = sha256sum(found) if found else ""
        rows.append(row)
    return pd.DataFrame(rows)
