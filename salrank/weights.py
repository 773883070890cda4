"""Pretrained weight files: one registry, one resolution order, one clear offline error.

Resolution order for :func:`resolve` (the first hit wins):

1. an explicit ``path`` argument (a file; or a directory holding the spec's ``filename``);
2. ``$SALRANK_WEIGHTS/<filename>`` (see :mod:`salrank.config`);
3. the framework's own cache (``torch.hub.get_dir()/checkpoints/<filename>``, where torchvision,
   timm and effdet keep what they download);
4. a download from the spec's URL into that cache, when ``download`` is true and the host is
   reachable (checked with a short timeout, so an offline machine never hangs);

otherwise :class:`WeightsNotFoundError`, whose message names the URL and the exact path to put
the file at. Downloaded and local files are checked against the spec's SHA-256 when one is known.

Names follow timm's style: ``<model>.<tag>``, for example ``unisal.salicon``,
``resnet101.tv_in1k`` or ``efficientdet_d0.rw_in1k``; see :func:`list_weights`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from salrank.config import get_settings

__all__ = [
    "WeightSpec",
    "WeightsNotFoundError",
    "ChecksumError",
    "register",
    "get_spec",
    "list_weights",
    "candidate_paths",
    "resolve",
    "load_state_dict",
    "sha256sum",
    "verify",
]

CONNECT_TIMEOUT_S = 3.0


class WeightsNotFoundError(FileNotFoundError):
    """A pretrained file is neither on disk nor downloadable (offline). The message says where
    to put it."""


class ChecksumError(ValueError):
    """A weight file's SHA-256 differs from the registered one."""


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained file.

    ``sha256`` may be ``None`` (unknown) or a prefix of the full digest (torchvision and timm
    publish 8-10 hex digits in the file name).
    """

    name: str
    filename: str
    url: str
    sha256: str | None = None
    source: str = ""  # where the URL comes from (repository, paper)
    description: str = ""
    licence: str = ""


_REGISTRY: dict[str, WeightSpec] = {}


def register(spec: WeightSpec, *, overwrite: bool = False) -> WeightSpec:
    """Add a spec to the registry (``overwrite`` to replace an existing name)."""
    if spec.name in _REGISTRY and not overwrite and _REGISTRY[spec.name] != spec:
        raise ValueError(f"weights {spec.name!r} are already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> WeightSpec:
    """The registered spec called ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise KeyError(f"unknown weights {name!r}; known: {known}") from None


def list_weights() -> list[WeightSpec]:
    """All registered specs, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _hub_checkpoint_dir() -> Path:
    try:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # torch missing or misconfigured: fall back to torch's default location
        return Path(os.environ.get("TORCH_HOME", "~/.cache/torch")).expanduser() / "hub" / "checkpoints"


def candidate_paths(spec: WeightSpec, path: str | os.PathLike | None = None) -> list[Path]:
    """The places :func:`resolve` looks, in order (downloads go to the last one)."""
    out: list[Path] = []
    if path is not None:
        p = Path(path).expanduser()
        out.append(p / spec.filename if p.is_dir() else p)
    weights_dir = get_settings().weights_dir
    if weights_dir is not None:
        out.append(weights_dir / spec.filename)
    out.append(_hub_checkpoint_dir() / spec.filename)
    return out


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify(spec: WeightSpec, path: str | os.PathLike) -> bool | None:
    """``True``/``False`` whether ``path`` matches the spec's checksum; ``None`` if none is known."""
    if not spec.sha256:
        return None
    return sha256sum(path).startswith(spec.sha256.lower())


def _reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the URL's host can be opened within ``timeout`` seconds."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return True
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _download(spec: WeightSpec, dest: Path, progress: bool = True) -> Path:
    """Download atomically (temporary file, checksum, rename): nothing half-written remains."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{spec.filename}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm.auto import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename, disable=not progress) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
        if verify(spec, tmp) is False:
            raise ChecksumError(f"download of {spec.name} from {spec.url} failed its SHA-256 check")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def resolve(
    name: str | WeightSpec,
    path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    check: bool = True,
    progress: bool = True,
) -> Path:
    """Local path of the weight file ``name`` (see the module docstring for the order).

    Raises :class:`WeightsNotFoundError` (within seconds when offline) or :class:`ChecksumError`.
    """
    spec = name if isinstance(name, WeightSpec) else get_spec(name)
    candidates = candidate_paths(spec, path)
    if path is not None and not candidates[0].is_file():
        raise WeightsNotFoundError(f"{spec.name}: no weight file at {candidates[0]}")
    for cand in candidates:
        if cand.is_file():
            if check and verify(spec, cand) is False:
                raise ChecksumError(
                    f"{cand} does not match the SHA-256 registered for {spec.name} ({spec.sha256}); "
                    "delete it or pass check=False"
                )
            return cand
    dest = candidates[-1]
    if not download:
        reason = "downloads are off"
    elif not (spec.url and _reachable(spec.url)):
        reason = "the download host is not reachable (offline?)"
    else:
        try:
            return _download(spec, dest, progress=progress)
        except (urllib.error.URLError, OSError) as exc:
            reason = f"the download failed ({exc})"
    put = get_settings().weights_dir
    where = f"{put / spec.filename}" if put else f"{dest} (or set SALRANK_WEIGHTS to a folder holding it)"
    raise WeightsNotFoundError(
        f"pretrained weights {spec.name!r} not found and {reason}.\n"
        f"  download: {spec.url}\n"
        f"  put it at: {where}\n"
        f"  looked in: {', '.join(str(c) for c in candidates)}\n"
        "  or build the model with pretrained=False."
    )


def load_state_dict(name: str | WeightSpec, path: str | os.PathLike | None = None, **kwargs) -> dict:
    """Resolve and ``torch.load`` a state dict on the CPU (``weights_only=True``)."""
    import torch

    file = resolve(name, path, **kwargs)
    state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def copy_into_weights_dir(src: str | os.PathLike, name: str) -> Path:
    """Copy a file the user obtained elsewhere to ``$SALRANK_WEIGHTS/<filename>`` after checking it."""
    spec = get_spec(name)
    weights_dir = get_settings().weights_dir
    if weights_dir is None:
        raise WeightsNotFoundError("set SALRANK_WEIGHTS to the folder that should hold the weights")
    if verify(spec, src) is False:
        raise ChecksumError(f"{src} does not match the SHA-256 registered for {name}")
    weights_dir.mkdir(parents=True, exist_ok=True)
    dest = weights_dir / spec.filename
    shutil.copyfile(src, dest)
    return dest


# --- the project's pretrained files ------------------------------------------------------------
# UNISAL (Droste et al., ECCV 2020): the official checkpoint of the public repository.
register(
    WeightSpec(
        name="unisal.salicon",
        filename="unisal_weights_best.pth",
        url="https://github.com/rdroste/unisal/raw/master/training_runs/pretrained_unisal/weights_best.pth",
        sha256=None,
        source="github.com/rdroste/unisal, training_runs/pretrained_unisal/weights_best.pth",
        description="UNISAL trained on DHF1K, Hollywood-2, UCF Sports and SALICON (the PSM of FOSRNet). "
        "Rename weights_best.pth to unisal_weights_best.pth.",
        licence="Apache-2.0 (code repository)",
    )
)
# ResNet101, ImageNet (torchvision's published files; the hash prefix is in the file name).
register(
    WeightSpec(
        name="resnet101.tv_in1k",
        filename="resnet101-63fe2227.pth",
        url="https://download.pytorch.org/models/resnet101-63fe2227.pth",
        sha256="63fe2227",
        source="torchvision ResNet101_Weights.IMAGENET1K_V1",
        description="ResNet101 ImageNet-1k (the PSE of FOSRNet)",
        licence="BSD-3-Clause",
    )
)
register(
    WeightSpec(
        name="resnet101.tv2_in1k",
        filename="resnet101-cd907fc2.pth",
        url="https://download.pytorch.org/models/resnet101-cd907fc2.pth",
        sha256="cd907fc2",
        source="torchvision ResNet101_Weights.IMAGENET1K_V2",
        description="ResNet101 ImageNet-1k, torchvision's improved recipe",
        licence="BSD-3-Clause",
    )
)
register(
    WeightSpec(
        name="resnet18.tv_in1k",
        filename="resnet18-f37072fd.pth",
        url="https://download.pytorch.org/models/resnet18-f37072fd.pth",
        sha256="f37072fd",
        source="torchvision ResNet18_Weights.IMAGENET1K_V1",
        description="ResNet18 ImageNet-1k (a lighter PSE for the sample profile)",
        licence="BSD-3-Clause",
    )
)
