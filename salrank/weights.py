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
``resnet101.tv_in1k``, ``tf_efficientdet_d0.coco`` (EfficientDet D0-D7) or
``fasterrcnn_resnet50_fpn.tv_coco`` (torchvision's detectors); see :func:`list_weights` and
``salrank weights list``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from salrank.config import get_settings
from salrank.errors import UserFacingError
from salrank.io import atomic_output

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
    "load_into",
    "WeightsFormatError",
    "trust_from_env",
    "weights_status",
    "weights_label",
    "REHEARSAL_MANIFEST",
    "TRUST_ENV",
    "sha256sum",
    "verify",
    "host_reachable",
    "copy_into_weights_dir",
]

CONNECT_TIMEOUT_S = 3.0


class WeightsNotFoundError(FileNotFoundError, UserFacingError):
    """A pretrained file is neither on disk nor downloadable (offline). The message says where
    to put it."""


class ChecksumError(ValueError, UserFacingError):
    """A weight file's SHA-256 differs from the registered one."""


class WeightsFormatError(ValueError, RuntimeError):
    """A weight file cannot be read (truncated, not a torch file) or does not fit its model (a
    missing, unexpected or mis-shaped key). The message names the file and the first bad key."""


#: environment variable that accepts weight files whose checksum differs from the published one
TRUST_ENV = "SALRANK_TRUST_WEIGHTS"
#: file a rehearsal weights folder holds (:mod:`salrank.data.rehearsal`): ``{filename: sha256}``
REHEARSAL_MANIFEST = "REHEARSAL.json"


def trust_from_env() -> bool:
    """Whether ``$SALRANK_TRUST_WEIGHTS`` says to accept files failing their checksum (1/true/yes)."""
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes", "on")


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
    """``torch.hub.get_dir()/checkpoints``, computed by torch's own rule without importing torch
    (``salrank weights list`` must answer at once) unless torch is already loaded."""
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        try:
            return Path(hub.get_dir()) / "checkpoints"
        except Exception:  # misconfigured torch: fall back to the rule below
            pass
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.path.expanduser(os.environ.get("TORCH_HOME", os.path.join(cache, "torch")))
    return Path(home) / "hub" / "checkpoints"


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


def host_reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether the host of ``url`` accepts a TCP connection within ``timeout`` seconds (never hangs)."""
    return _reachable(url, timeout)


def _download(spec: WeightSpec, dest: Path, progress: bool = True) -> Path:
    """Download atomically, hashing on the fly: a file failing its checksum never lands at ``dest``."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    with atomic_output(dest, "wb") as out, urllib.request.urlopen(spec.url, timeout=30) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename, disable=not progress) as bar:
            while block := resp.read(1 << 20):
                out.write(block)
                digest.update(block)
                bar.update(len(block))
        if spec.sha256 and not digest.hexdigest().startswith(spec.sha256.lower()):
            raise ChecksumError(f"download of {spec.name} from {spec.url} failed its SHA-256 check")
    return dest


def resolve(
    name: str | WeightSpec,
    path: str | os.PathLike | None = None,
    *,
    download: bool = True,
    check: bool | None = None,
    progress: bool = True,
) -> Path:
    """Local path of the weight file ``name`` (see the module docstring for the order).

    ``check``: compare a local file with the published SHA-256 (``None``: yes, unless
    ``$SALRANK_TRUST_WEIGHTS=1``). A file accepted without the check is labelled by
    :func:`weights_status` (``"rehearsal"``/``"unverified"``), never ``"pretrained"``.
    Raises :class:`WeightsNotFoundError` (within seconds when offline) or :class:`ChecksumError`.
    """
    if check is None:
        check = not trust_from_env()
    spec = name if isinstance(name, WeightSpec) else get_spec(name)
    candidates = candidate_paths(spec, path)
    if path is not None and not candidates[0].is_file():
        raise WeightsNotFoundError(f"{spec.name}: no weight file at {candidates[0]}")
    for cand in candidates:
        if cand.is_file():
            if check and verify(spec, cand) is False:
                raise ChecksumError(
                    f"{cand} does not match the SHA-256 registered for {spec.name} ({spec.sha256}); "
                    f"delete it, or accept it knowingly with verify=False / {TRUST_ENV}=1 / --trust "
                    "(results are then labelled 'rehearsal weights' or 'unverified', never 'pretrained')"
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


def _read_state(file: Path) -> dict:
    """``torch.load`` a state dict on the CPU (``weights_only``); unreadable -> WeightsFormatError."""
    import torch

    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, pickle error ...
        raise WeightsFormatError(f"{file}: not a readable torch weight file (truncated?): {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise WeightsFormatError(f"{file}: holds a {type(state).__name__}, not a state dict")
    return state


def load_state_dict(
    name: str | WeightSpec,
    path: str | os.PathLike | None = None,
    *,
    verify: bool | None = None,
    **kwargs,
) -> dict:
    """Resolve and ``torch.load`` a state dict on the CPU (``weights_only=True``).

    ``verify``: check the published SHA-256 (``None``: yes unless ``$SALRANK_TRUST_WEIGHTS=1``;
    ``False`` accepts a mismatching file, e.g. rehearsal weights). ``kwargs`` go to :func:`resolve`
    (``check`` is a synonym of ``verify``). A file that cannot be read raises
    :class:`WeightsFormatError` naming it.
    """
    if verify is not None:
        kwargs["check"] = verify
    file = resolve(name, path, **kwargs)
    return _read_state(file)


def load_into(
    model,
    name: str | WeightSpec,
    path: str | os.PathLike | None = None,
    *,
    state: dict | None = None,
    verify: bool | None = None,
    **kwargs,
) -> Path | None:
    """Load the weight file ``name`` into ``model`` strictly, all or nothing.

    Keys and shapes are compared with ``model.state_dict()`` before anything is copied, so a
    wrong-keyed or mis-shaped file raises :class:`WeightsFormatError` naming the file and the
    first bad key (missing, unexpected or shape) and leaves ``model`` untouched. ``state``: an
    already loaded state dict (then ``path`` only names the file in messages). Returns the file.
    """
    file = None
    if state is None:
        if verify is not None:
            kwargs["check"] = verify
        file = resolve(name, path, **kwargs)
        state = _read_state(file)
    where = file or path
    if where is None:
        try:
            where = resolve(name, download=False, check=False, progress=False)
        except (WeightsNotFoundError, KeyError):
            where = name if isinstance(name, str) else name.name
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing:
        raise WeightsFormatError(
            f"{where}: missing key {missing[0]!r} ({len(missing)} missing, {len(unexpected)} unexpected); "
            "the file does not fit the model"
        )
    if unexpected:
        raise WeightsFormatError(f"{where}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected)")
    for key, value in own.items():
        got = state[key]
        if not hasattr(got, "shape") or tuple(got.shape) != tuple(value.shape):
            raise WeightsFormatError(
                f"{where}: key {key!r} has shape {tuple(getattr(got, 'shape', ()))}, "
                f"the model expects {tuple(value.shape)}"
            )
    model.load_state_dict(state, strict=True)
    return file


def _rehearsal_manifest(folder: Path) -> dict:
    import json

    try:
        return json.loads((folder / REHEARSAL_MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def weights_status(name: str | WeightSpec, path: str | os.PathLike) -> str:
    """What the file ``path`` for weights ``name`` is: ``"rehearsal"`` (listed, with its digest, in
    the ``REHEARSAL.json`` of its folder, see :mod:`salrank.data.rehearsal`), ``"pretrained"`` (it
    matches the published SHA-256), ``"mismatch"`` (it does not) or ``"unverified"`` (no published
    checksum to compare with)."""
    spec = name if isinstance(name, WeightSpec) else get_spec(name)
    path = Path(path)
    listed = _rehearsal_manifest(path.parent).get("files", {}).get(path.name)
    if listed is not None and listed.get("sha256") == sha256sum(path):
        return "rehearsal"
    ok = verify(spec, path)
    return "unverified" if ok is None else ("pretrained" if ok else "mismatch")


def weights_label(weights_dir: str | os.PathLike | None) -> str | None:
    """``"rehearsal weights"`` when ``weights_dir`` is a rehearsal folder (it holds
    ``REHEARSAL.json``), else ``None`` (then the files are checked one by one)."""
    if weights_dir is None:
        return None
    return "rehearsal weights" if (Path(weights_dir) / REHEARSAL_MANIFEST).is_file() else None


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

# EfficientDet D0-D7 (Tan et al., CVPR 2020), the TensorFlow-trained COCO weights ported by effdet
# (github.com/rwightman/efficientdet-pytorch); the URLs are those in effdet/config/model_config.py
# and the file names carry the SHA-256 prefix (torch.hub's convention).
_EFFDET_FILES = {
    0: "tf_efficientdet_d0_34-f153e0cf.pth",
    1: "tf_efficientdet_d1_40-a30f94af.pth",
    2: "tf_efficientdet_d2_43-8107aa99.pth",
    3: "tf_efficientdet_d3_47-0b525f35.pth",
    4: "tf_efficientdet_d4_49-f56376d9.pth",
    5: "tf_efficientdet_d5_51-c79f9be6.pth",
    6: "tf_efficientdet_d6_52-4eda3773.pth",
    7: "tf_efficientdet_d7_53-6d1d7a95.pth",
}
for _d, _file in _EFFDET_FILES.items():
    register(
        WeightSpec(
            name=f"tf_efficientdet_d{_d}.coco",
            filename=_file,
            url=f"https://github.com/rwightman/efficientdet-pytorch/releases/download/v0.1/{_file}",
            sha256=_file.rsplit("-", 1)[1].split(".")[0],
            source=f"effdet model_config tf_efficientdet_d{_d}",
            description=f"EfficientDet-D{_d}, COCO 2017 (the paper's proposal detector family)",
            licence="Apache-2.0",
        )
    )

# torchvision's COCO detectors (the weight enums' COCO_V1 files; hash prefix in the file name).
_TORCHVISION_DETECTORS = {
    "fasterrcnn_resnet50_fpn": ("fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", "FasterRCNN_ResNet50_FPN_Weights"),
    "fasterrcnn_resnet50_fpn_v2": ("fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
                                   "FasterRCNN_ResNet50_FPN_V2_Weights"),
    "fasterrcnn_mobilenet_v3_large_fpn": ("fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
                                          "FasterRCNN_MobileNet_V3_Large_FPN_Weights"),
    "retinanet_resnet50_fpn": ("retinanet_resnet50_fpn_coco-eeacb38b.pth", "RetinaNet_ResNet50_FPN_Weights"),
    "retinanet_resnet50_fpn_v2": ("retinanet_resnet50_fpn_v2_coco-5905b1c5.pth",
                                  "RetinaNet_ResNet50_FPN_V2_Weights"),
    "fcos_resnet50_fpn": ("fcos_resnet50_fpn_coco-99b0c9b7.pth", "FCOS_ResNet50_FPN_Weights"),
    "ssd300_vgg16": ("ssd300_vgg16_coco-b556d3b4.pth", "SSD300_VGG16_Weights"),
    "ssdlite320_mobilenet_v3_large": ("ssdlite320_mobilenet_v3_large_coco-a79551df.pth",
                                      "SSDLite320_MobileNet_V3_Large_Weights"),
}
for _model, (_file, _enum) in _TORCHVISION_DETECTORS.items():
    register(
        WeightSpec(
            name=f"{_model}.tv_coco",
            filename=_file,
            url=f"https://download.pytorch.org/models/{_file}",
            sha256=_file.rsplit("-", 1)[1].split(".")[0],
            source=f"torchvision {_enum}.COCO_V1",
            description=f"torchvision {_model}, COCO 2017 (a detector for Table VI / Fig. 12)",
            licence="BSD-3-Clause",
        )
    )

# YOLOv5s, ultralytics' anchor-free re-training ("u"); optional (needs the ultralytics extra).
register(
    WeightSpec(
        name="yolov5su.ultralytics",
        filename="yolov5su.pt",
        url="https://github.com/ultralytics/assets/releases/download/v8.2.0/yolov5su.pt",
        sha256=None,
        source="github.com/ultralytics/assets release v8.2.0",
        description="YOLOv5s-u, COCO 2017 (a detector for Table VI / Fig. 12; needs salrank[extras])",
        licence="AGPL-3.0",
    )
)
