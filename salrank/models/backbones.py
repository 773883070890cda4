"""The frozen feature networks of FOSRNet and the one place that decides their weights.

FOSRNet's Part 2 reads two pretrained networks (paper Sec. III-C2): UNISAL, the PSM
(:mod:`salrank.models.unisal`), and an ImageNet CNN for the appearance feature (PSE):
``resnet101`` (2048-d, the paper's) or ``resnet18`` (512-d, the sample profile's lighter choice),
torchvision models with weight files from :mod:`salrank.weights`.

:func:`feature_extractors` is the single pretrained-or-random decision: it returns both networks
and a :class:`WeightsIdentity` saying, per network, which file was loaded (its name and the first
12 hex digits of its SHA-256) or ``"random, seed N"``. Feature caches and checkpoints store the
identity (:meth:`WeightsIdentity.to_dict`), pages print its :attr:`~WeightsIdentity.label`, and
:meth:`WeightsIdentity.rebuild_options` gives the arguments that rebuild the same networks.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "BACKBONES",
    "AppearanceBackbone",
    "NetworkWeights",
    "WeightsIdentity",
    "feature_extractors",
    "load_backbone",
    "load_psm",
    "weights_identity",
]

#: backbone name -> (torchvision constructor, feature width, salrank.weights name)
BACKBONES: dict[str, tuple[str, int, str]] = {
    "resnet101": ("resnet101", 2048, "resnet101.tv_in1k"),
    "resnet18": ("resnet18", 512, "resnet18.tv_in1k"),
}
#: how many hex digits of a file's SHA-256 an identity keeps
SHA_PREFIX = 12
#: the ``pretrained`` choices of :func:`feature_extractors`
PRETRAINED = (True, False, "auto")


# --- identity ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkWeights:
    """The weights of one network: a file (``file`` name and ``sha256`` prefix) or random (``seed``)."""

    network: str
    file: str | None = None
    sha256: str | None = None
    seed: int | None = None
    rehearsal: bool = False  # a file of a rehearsal folder (:mod:`salrank.data.rehearsal`), not pretrained

    def __post_init__(self):
        if (self.file is None) == (self.seed is None):
            raise ValueError(f"NetworkWeights({self.network}): exactly one of file and seed must be given")

    @property
    def random(self) -> bool:
        return self.file is None

    @property
    def label(self) -> str:
        """``"resnet18: random, seed 0"`` or ``"UNISAL: unisal_weights_best.pth (sha256 0123456789ab)"``."""
        what = f"random, seed {self.seed}" if self.random else f"{self.file} (sha256 {self.sha256 or 'unknown'})"
        if self.rehearsal:
            what += ", rehearsal weights"
        return f"{self.network}: {what}"

    @classmethod
    def of_file(cls, network: str, path: str | os.PathLike) -> NetworkWeights:
        from salrank.weights import weights_label

        return cls(network, file=Path(path).name, sha256=_sha_prefix(Path(path)),
                   rehearsal=weights_label(Path(path).parent) is not None)


@dataclass(frozen=True)
class WeightsIdentity:
    """Which weights the feature networks carry: :class:`NetworkWeights` of UNISAL and of the appearance CNN."""

    unisal: NetworkWeights
    appearance: NetworkWeights

    @property
    def random(self) -> bool:
        """Whether any of the two networks has random weights."""
        return self.unisal.random or self.appearance.random

    @property
    def label(self) -> str:
        """One line for banners and logs, e.g. ``"UNISAL: random, seed 0; resnet18: random, seed 0"``."""
        return f"{self.unisal.label}; {self.appearance.label}"

    def to_dict(self) -> dict:
        """JSON-able form (stored in feature caches and checkpoints)."""
        return {"unisal": asdict(self.unisal), "appearance": asdict(self.appearance)}

    @classmethod
    def from_dict(cls, d: dict) -> WeightsIdentity:
        try:
            return cls(NetworkWeights(**d["unisal"]), NetworkWeights(**d["appearance"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a weights identity: {d!r}") from exc

    def rebuild_options(self) -> dict:
        """``pretrained`` and ``seed`` for :func:`feature_extractors` that rebuild these networks:
        both random -> ``False``, both from files -> ``True``, else ``"auto"``; the random seed."""
        nets = (self.unisal, self.appearance)
        seeds = {n.seed for n in nets if n.random}
        if len(seeds) > 1:
            raise ValueError(f"{self.label}: the two networks have different random seeds")
        pretrained = False if all(n.random for n in nets) else True if not self.random else "auto"
        return {"pretrained": pretrained, "seed": seeds.pop() if seeds else 0}


_SHA_CACHE: dict[tuple, str] = {}


def _sha_prefix(path: Path) -> str:
    from salrank.weights import sha256sum

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256sum(path)[:SHA_PREFIX]
    return _SHA_CACHE[key]


def _check_choice(pretrained, backbone: str) -> None:
    if not any(pretrained is p or (isinstance(p, str) and pretrained == p) for p in PRETRAINED):
        raise ValueError(f"pretrained: expected True, False or 'auto', got {pretrained!r}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {sorted(BACKBONES)}")


def _find_file(name: str, weights_dir: str | os.PathLike | None, download: bool) -> Path | None:
    """The local file of the weights ``name`` (``weights_dir`` first, then :func:`salrank.weights.resolve`),
    or ``None`` when absent."""
    from salrank.weights import WeightsNotFoundError, get_spec, resolve

    if weights_dir is not None:
        candidate = Path(weights_dir) / get_spec(name).filename
        if candidate.is_file():
            return candidate
    try:
        return resolve(name, download=download, check=False, progress=False)
    except WeightsNotFoundError:
        return None


def _plan(pretrained, seed: int, backbone: str, weights_dir, download: bool) -> dict[str, tuple[str, Path | None]]:
    """Per network (``unisal``, ``appearance``): (display name, the file to load or ``None`` = random).
    ``pretrained=True`` and a missing file raise :class:`salrank.weights.WeightsNotFoundError`."""
    from salrank.models.unisal import WEIGHTS_NAME

    _check_choice(pretrained, backbone)
    names = {"unisal": ("UNISAL", WEIGHTS_NAME), "appearance": (backbone, BACKBONES[backbone][2])}
    out = {}
    for key, (network, weights_name) in names.items():
        path = None
        if pretrained is not False:
            path = _find_file(weights_name, weights_dir, download=download and pretrained is True)
            if path is None and pretrained is True:
                from salrank.weights import resolve

                resolve(weights_name, download=False)  # raises the error saying where to put the file
        out[key] = (network, path)
    return out


def weights_identity(pretrained: bool | str = "auto", seed: int = 0, backbone: str = "resnet101",
                     weights_dir: str | os.PathLike | None = None) -> WeightsIdentity:
    """The :class:`WeightsIdentity` that :func:`feature_extractors` would return, without building the
    networks (for cache keys and banners). Never downloads; ``pretrained=True`` with a missing file
    raises :class:`salrank.weights.WeightsNotFoundError`."""
    return _identity(_plan(pretrained, seed, backbone, weights_dir, download=False), seed)


def _identity(plan: dict[str, tuple[str, Path | None]], seed: int) -> WeightsIdentity:
    nets = {key: NetworkWeights(network, seed=int(seed)) if path is None else NetworkWeights.of_file(network, path)
            for key, (network, path) in plan.items()}
    return WeightsIdentity(nets["unisal"], nets["appearance"])


def feature_extractors(pretrained: bool | str = "auto", seed: int = 0, backbone: str = "resnet101", device=None,
                       *, weights_dir: str | os.PathLike | None = None, log=None):
    """``(unisal, appearance, identity)``: the frozen UNISAL and appearance CNN and their :class:`WeightsIdentity`.

    ``pretrained``: ``True`` loads the pretrained files (``weights_dir`` first, then the places of
    :mod:`salrank.weights`; a missing one raises :class:`salrank.weights.WeightsNotFoundError` naming
    it); ``False`` builds random weights seeded with ``seed``; ``"auto"`` loads each file that is
    present and gives the other network random weights, saying so through ``log`` (e.g. ``print``).
    ``backbone``: a :data:`BACKBONES` name. ``device``: default the ``SALRANK_DEVICE`` setting.
    """
    plan = _plan(pretrained, seed, backbone, weights_dir, download=True)
    identity = _identity(plan, seed)
    if log is not None and pretrained == "auto":
        for net in (identity.unisal, identity.appearance):
            if net.random:
                log(f"{net.network}: pretrained weights not found; using RANDOM weights (seed {seed}) - "
                    "features and results are not those of the paper")
    unisal_path, cnn_path = plan["unisal"][1], plan["appearance"][1]
    unisal = load_psm(unisal_path is not None, unisal_path, device=device, seed=seed)
    cnn = load_backbone(backbone, cnn_path is not None, cnn_path, device=device, seed=seed)
    return unisal, cnn, identity


# --- the networks -----------------------------------------------------------------------------
def _default_device() -> torch.device:
    from salrank.config import get_settings

    return get_settings().torch_device()


class AppearanceBackbone(nn.Module):
    """A torchvision ResNet without its pooling and classifier: images -> stride-32 feature maps.

    ``dim`` = output channels (2048 for ResNet101, 512 for ResNet18); ``weights``: its
    :class:`NetworkWeights`; frozen, eval mode.
    """

    def __init__(self, name: str, trunk: nn.Module, dim: int, weights: NetworkWeights):
        super().__init__()
        self.name = name
        self.trunk = trunk
        self.dim = dim
        self.weights = weights
        self.stride = 32
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) ImageNet-normalised -> (B, dim, H/32, W/32)."""
        return self.trunk(x)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, dim) global average pooled features."""
        return self.trunk(x).mean(dim=(2, 3))


def load_backbone(name: str = "resnet101", pretrained: bool = True, weights=None, device=None,
                  seed: int = 0) -> AppearanceBackbone:
    """The frozen appearance CNN ``name`` (see :data:`BACKBONES`).

    ``pretrained=True`` loads torchvision's ImageNet file through :func:`salrank.weights.load_state_dict`
    (offline without it: :class:`salrank.weights.WeightsNotFoundError` naming the file and URL);
    ``weights``: an explicit file. ``pretrained=False``: random initialisation seeded with ``seed``.
    Most callers want :func:`feature_extractors`.
    """
    import torchvision

    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    ctor, dim, weights_name = BACKBONES[name]
    state = None
    if pretrained:
        from salrank.weights import load_state_dict, resolve

        path = resolve(weights_name, path=weights)
        state = load_state_dict(weights_name, path=path, check=False)  # resolve checked it
        identity = NetworkWeights.of_file(name, path)
    elif weights is not None:
        raise ValueError("weights were given but pretrained=False; drop one of them")
    else:
        identity = NetworkWeights(name, seed=int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(torchvision.models, ctor)(weights=None)
    if state is not None:
        from salrank.weights import load_into

        load_into(model, weights_name, path, state=state)  # all or nothing, the first bad key named
    trunk = nn.Sequential(*list(model.children())[:-2])
    device = torch.device(device) if device is not None else _default_device()
    return AppearanceBackbone(name, trunk, dim, identity).to(device)


def load_psm(pretrained: bool = True, weights=None, device=None, seed: int = 0):
    """UNISAL (the PSM) for feature extraction, frozen, with a ``weights`` :class:`NetworkWeights` attribute.

    ``pretrained=True``: the official weights (:func:`salrank.models.unisal.load_unisal`; offline
    without the file: :class:`salrank.weights.WeightsNotFoundError`); ``False``: random
    initialisation seeded with ``seed``. Most callers want :func:`feature_extractors`.
    """
    from salrank.models.unisal import WEIGHTS_NAME, load_unisal

    device = torch.device(device) if device is not None else _default_device()
    if pretrained:
        from salrank.weights import resolve

        weights = resolve(WEIGHTS_NAME, path=weights)
        identity = NetworkWeights.of_file("UNISAL", weights)
    else:
        identity = NetworkWeights("UNISAL", seed=int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = load_unisal(weights, pretrained=pretrained, device=device)
    model.weights = identity
    model.requires_grad_(False)
    return model
