"""Settings in one place: profile, data root, weights and cache directories, device.

Every notebook and the command line read their defaults from here. Each setting comes from
an environment variable and can be overridden per call with :func:`get_settings`.

======================  ===================  ==========================================
variable                default              meaning
======================  ===================  ==========================================
``SALRANK_PROFILE``     ``sample``           ``sample`` (embedded data, small models) or
                                             ``full`` (SALICON and pretrained weights)
``SALRANK_DATA``        unset                root of the full SALICON data
``SALRANK_WEIGHTS``     unset                directory holding pretrained weight files
``SALRANK_CACHE``       ``~/.cache/salrank`` parsed data, generated sample, features
``SALRANK_DEVICE``      ``auto``             ``auto`` (CUDA if available), ``cpu``, ``cuda:0``
``SALRANK_LIMIT``       unset                full profile: first N images per split that
                                             experiments use (``salrank reproduce --limit``)
``SALRANK_EPOCHS``      unset                full profile: cap on training epochs
                                             (``salrank reproduce --epochs``)
======================  ===================  ==========================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

PROFILES = ("sample", "full")


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Paths are absolute; ``data_root``/``weights_dir`` may be ``None``."""

    profile: str
    data_root: Path | None
    weights_dir: Path | None
    cache_dir: Path
    device: str
    limit: int | None = None
    epochs: int | None = None

    @property
    def proposals_dir(self) -> Path | None:
        """``<data_root>/proposals``, where ``salrank proposals`` writes the detectors' proposal files
        (``<detector>_<train|val>.json``); ``None`` without a data root."""
        return None if self.data_root is None else self.data_root / "proposals"

    def torch_device(self):
        """The :class:`torch.device` that ``device`` names (``auto``: CUDA when available)."""
        return resolve_device(self.device)


def _path_or_none(value: str | os.PathLike | None) -> Path | None:
    if value is None or str(value) == "":
        return None
    return Path(value).expanduser().resolve()


def _int_or_none(value: str | None, name: str) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return n


def get_settings(**overrides) -> Settings:
    """Settings from the environment, with keyword overrides (``None`` means "use the default").

    >>> get_settings(profile="sample").profile
    'sample'
    """
    env = os.environ
    settings = Settings(
        profile=env.get("SALRANK_PROFILE", "sample") or "sample",
        data_root=_path_or_none(env.get("SALRANK_DATA")),
        weights_dir=_path_or_none(env.get("SALRANK_WEIGHTS")),
        cache_dir=_path_or_none(env.get("SALRANK_CACHE")) or Path("~/.cache/salrank").expanduser(),
        device=env.get("SALRANK_DEVICE", "auto") or "auto",
        limit=_int_or_none(env.get("SALRANK_LIMIT"), "SALRANK_LIMIT"),
        epochs=_int_or_none(env.get("SALRANK_EPOCHS"), "SALRANK_EPOCHS"),
    )
    given = {k: v for k, v in overrides.items() if v is not None and v != ""}
    for key in ("data_root", "weights_dir", "cache_dir"):
        if key in given:
            given[key] = _path_or_none(given[key])
    settings = replace(settings, **given)
    if settings.profile not in PROFILES:
        raise ValueError(f"unknown profile {settings.profile!r}; expected one of {PROFILES}")
    return settings


def resolve_device(device: str = "auto"):
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else is passed to torch."""
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cache_dir(*parts: str, settings: Settings | None = None) -> Path:
    """A sub-directory of the cache directory, created if missing."""
    root = (settings or get_settings()).cache_dir
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
