"""FOSRNet Part 2 inputs: per-proposal features, computed once and cached (paper Sec. III-C2).

For each proposal box ``[x1, y1, x2, y2]`` (pixels of the original image) of an image:

=============  =======  ==================================================================
field          shape    what
=============  =======  ==================================================================
``local``      (192,)   UNISAL ``f_u`` ROI-aligned on the box (``roi_output`` x ``roi_output``
                        bins, ``aligned=True``), then averaged: the paper's ROIAlign + GAP
``global``     (192,)   the same on the box enlarged ``global_scale`` (1.5) times about its
                        centre and clipped to the image (:func:`enlarge_boxes`)
``appearance`` (D,)     frozen ImageNet CNN (PSE), global-average pooled; ``crop`` mode (the
                        paper's default): each box is cut out and resized to ``crop_size``
                        (bilinear, area-averaged when shrinking, via ``roi_align`` on the image)
                        and batched through the CNN; ``roi`` mode: one CNN pass per image and
                        ``roi_align`` on its last feature map (stride 32), faster
``centers``    (2,)     box centre ``(x, y)`` divided by the image ``(width, height)``, in [0, 1]
``boxes``      (4,)     the box itself, pixels
``scores``     ()       the detector score (1.0 when the boxes came without scores)
``geometry``   (3,)     ``sqrt(box area / image area)``, box width / image width, box height /
                        image height (:func:`box_geometry`; used only by the optional
                        :mod:`salrank.fosrnet.extensions` addition)
=============  =======  ==================================================================

The PE (learned embedding of the centres) is part of FOSRNet, not cached. Backbones
(:func:`load_backbone`): ``resnet101`` (2048-d, the paper's PSE) and ``resnet18`` (512-d, the
sample profile's lighter choice), torchvision models with weights from :mod:`salrank.weights`;
``pretrained=False`` keeps a seeded random initialisation and never touches files.

Cache (:func:`extract_features` with ``cache=True``): one directory per (dataset name + split,
proposal-set hash, feature configuration, UNISAL and backbone weight fingerprints) under
``$SALRANK_CACHE/features/``, holding one ``.npy`` per field, concatenated over images
(``offsets`` (I + 1,) gives each image's rows), ``images.json`` (stems, image sizes) and
``manifest.json`` written last (its presence = complete). Extraction runs in chunks of
``chunk_size`` images; each finished chunk is saved atomically as its own file, so an
interrupted run resumes with the chunks already done; the final merge writes the fields and
removes the chunk files. :class:`FeatureStore` reads the fields back memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.ops import roi_align

from salrank.io import atomic_output, atomic_write_json

__all__ = [
    "BACKBONES",
    "FIELDS",
    "MODES",
    "AppearanceBackbone",
    "FeatureConfig",
    "FeatureStore",
    "ImageProposals",
    "box_centers",
    "box_geometry",
    "enlarge_boxes",
    "extract_features",
    "features_of_images",
    "load_backbone",
    "load_psm",
    "module_fingerprint",
    "proposal_set_hash",
]

FORMAT_VERSION = 1
MODES = ("crop", "roi")
#: backbone name -> (torchvision constructor, feature width, salrank.weights name)
BACKBONES: dict[str, tuple[str, int, str]] = {
    "resnet101": ("resnet101", 2048, "resnet101.tv_in1k"),
    "resnet18": ("resnet18", 512, "resnet18.tv_in1k"),
}
#: the per-proposal fields of a :class:`FeatureStore`
FIELDS = ("local", "global", "appearance", "centers", "boxes", "scores", "geometry")
GEOMETRY_DIM = 3
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# --- geometry --------------------------------------------------------------------------------------
def _as_boxes(boxes, what: str = "boxes") -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{what}: expected (K, 4) [x1, y1, x2, y2] boxes, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{what}: contains NaN or inf")
    return b


def enlarge_boxes(boxes, scale: float, image_size: Sequence[int]) -> np.ndarray:
    """Boxes scaled by ``scale`` about their centres, clipped to the image ``(height, width)``.

    >>> enlarge_boxes([[10, 20, 30, 60]], 1.5, (100, 100)).tolist()
    [[5.0, 10.0, 35.0, 70.0]]
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    b = _as_boxes(boxes)
    h, w = image_size
    c = (b[:, :2] + b[:, 2:]) / 2.0
    half = (b[:, 2:] - b[:, :2]) * (scale / 2.0)
    out = np.concatenate([c - half, c + half], axis=1)
    return np.clip(out, 0.0, [w, h, w, h])


def box_centers(boxes, image_size: Sequence[int]) -> np.ndarray:
    """Box centres ``(x, y)`` divided by the image ``(width, height)``: (K, 2) in [0, 1]."""
    b = _as_boxes(boxes)
    h, w = image_size
    c = (b[:, :2] + b[:, 2:]) / 2.0 / np.array([w, h], dtype=np.float64)
    return np.clip(c, 0.0, 1.0)


def box_geometry(boxes, image_size: Sequence[int]) -> np.ndarray:
    """(K, 3) float32: ``sqrt(area / image area)``, width / image width, height / image height.

    ``boxes`` (K, 4) ``[x1, y1, x2, y2]`` pixels; ``image_size`` ``(height, width)``.
    """
    b = _as_boxes(boxes)
    h, w = (float(v) for v in image_size)
    bw = np.clip(b[:, 2] - b[:, 0], 0, None)
    bh = np.clip(b[:, 3] - b[:, 1], 0, None)
    return np.stack([np.sqrt(bw * bh / (h * w)), bw / w, bh / h], axis=1).astype(np.float32)


# --- backbones -------------------------------------------------------------------------------------
class AppearanceBackbone(nn.Module):
    """A torchvision ResNet without its pooling and classifier: images -> stride-32 feature maps.

    ``dim`` = output channels (2048 for ResNet101, 512 for ResNet18); frozen, eval mode.
    """

    def __init__(self, name: str, trunk: nn.Module, dim: int, weights_id: str):
        super().__init__()
        self.name = name
        self.trunk = trunk
        self.dim = dim
        self.weights_id = weights_id
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
    """
    import torchvision

    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    ctor, dim, weights_name = BACKBONES[name]
    state = None
    if pretrained:
        from salrank.weights import load_state_dict

        state = load_state_dict(weights_name, path=weights)
    elif weights is not None:
        raise ValueError("weights were given but pretrained=False; drop one of them")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(torchvision.models, ctor)(weights=None)
    if state is not None:
        from salrank.weights import load_into

        load_into(model, weights_name, weights, state=state)
    trunk = nn.Sequential(*list(model.children())[:-2])
    if pretrained:
        from salrank.weights import weights_id as _weights_id

        weights_id = _weights_id(weights_name, weights)  # "+rehearsal" for rehearsal files
    else:
        weights_id = f"random-seed{seed}"
    device = torch.device(device) if device is not None else _default_device()
    return AppearanceBackbone(name, trunk, dim, weights_id).to(device)


def load_psm(pretrained: bool = True, weights=None, device=None, seed: int = 0):
    """UNISAL (the PSM) for feature extraction, with a ``weights_id`` attribute.

    ``pretrained=True``: the official weights (:func:`salrank.models.unisal.load_unisal`; offline
    without the file: :class:`salrank.weights.WeightsNotFoundError`); ``False``: random
    initialisation seeded with ``seed`` (``weights_id`` ``"random-seed<seed>"``).
    """
    from salrank.models.unisal import WEIGHTS_NAME, load_unisal

    device = torch.device(device) if device is not None else _default_device()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = load_unisal(weights, pretrained=pretrained, device=device)
    if pretrained:
        from salrank.weights import weights_id

        model.weights_id = weights_id(WEIGHTS_NAME, weights)  # "+rehearsal" for rehearsal files
    else:
        model.weights_id = f"random-seed{seed}"
    model.requires_grad_(False)
    return model


def _default_device() -> torch.device:
    from salrank.config import get_settings

    return get_settings().torch_device()


def module_fingerprint(module: nn.Module) -> str:
    """SHA-1 (16 hex digits) of a module's state dict (names, shapes, values): a weights id."""
    h = hashlib.sha1()
    for key, value in module.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


# --- inputs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageProposals:
    """One image and its proposals: ``image`` a path, PIL image or HxWx3 uint8 array; ``boxes``
    (K, 4) ``[x1, y1, x2, y2]`` pixels; ``scores`` (K,) or ``None`` (then all 1.0)."""

    stem: str
    image: object
    boxes: np.ndarray
    scores: np.ndarray | None = None


@dataclass(frozen=True)
class FeatureConfig:
    """How features are computed (part of the cache key).

    ``unisal_network_size``: the UNISAL input ``(height, width)`` (``None``: UNISAL's own rule,
    288 x 384 for 4:3 images); ``roi_output``: ROIAlign bins per side on ``f_u`` before averaging;
    ``crop_size``: crop side in pixels (crop mode); ``roi_image_size``: the CNN input
    ``(height, width)`` in ROI mode (``None``: the image's own size).
    """

    mode: str = "crop"
    global_scale: float = 1.5
    roi_output: int = 7
    crop_size: int = 224
    unisal_network_size: tuple[int, int] | None = None
    roi_image_size: tuple[int, int] | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"FeatureConfig.mode: expected one of {MODES}, got {self.mode!r}")
        if self.global_scale <= 0 or self.roi_output < 1 or self.crop_size < 32:
            raise ValueError("FeatureConfig: global_scale > 0, roi_output >= 1 and crop_size >= 32 required")
        for name in ("unisal_network_size", "roi_image_size"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, (int(v[0]), int(v[1])))


# --- the extraction of one batch of images ---------------------------------------------------------
def _rgb(image) -> Image.Image:
    from salrank.models.unisal import to_rgb_image

    return to_rgb_image(image)


def _image_tensor(rgb: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(1, 3, H, W) ImageNet-normalised float tensor of an RGB image (optionally resized, bilinear)."""
    if size is not None and (rgb.height, rgb.width) != size:
        rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    return (x - _MEAN) / _STD


def _pool_rois(fmap: torch.Tensor, rois: torch.Tensor, output: int, scale: float) -> torch.Tensor:
    """roi_align (aligned, adaptive sampling) on one (1, C, h, w) map, averaged -> (K, C)."""
    if len(rois) == 0:
        return fmap.new_zeros(0, fmap.shape[1])
    pooled = roi_align(fmap, [rois], output_size=output, spatial_scale=scale, sampling_ratio=-1, aligned=True)
    return pooled.mean(dim=(2, 3))


@torch.no_grad()
def features_of_images(items: Sequence[ImageProposals], unisal, backbone: AppearanceBackbone,
                       config: FeatureConfig | None = None, batch_size: int = 32) -> list[dict[str, np.ndarray]]:
    """Per-image feature dicts (see the module table) for ``items``, without any caching.

    ``unisal``: a :class:`salrank.models.unisal.UNISAL`; ``backbone``: :func:`load_backbone`;
    ``batch_size``: crops per CNN forward in crop mode (and images per UNISAL forward). Each dict
    also holds ``image_size`` ``(height, width)``.
    """
    from salrank.models.unisal import boxes_to_feature_coords, network_size_for

    config = config or FeatureConfig()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rgbs = [_rgb(it.image) for it in items]
    boxes = [_as_boxes(it.boxes, f"image {it.stem}: boxes") for it in items]
    net_sizes = [config.unisal_network_size or network_size_for((im.height, im.width)) for im in rgbs]
    # UNISAL: one f_u per image (grouped by network size inside UNISAL)
    f_us: list[torch.Tensor | None] = [None] * len(items)
    for size in sorted(set(net_sizes)):
        idx = [i for i, s in enumerate(net_sizes) if s == size]
        maps = unisal.features_per_image([rgbs[i] for i in idx], batch_size=batch_size, network_size=size)
        for i, m in zip(idx, maps, strict=True):
            f_us[i] = m
    device = next(backbone.parameters()).device
    out: list[dict[str, np.ndarray]] = []
    crops: list[torch.Tensor] = []
    for it, rgb, b, net, f_u in zip(items, rgbs, boxes, net_sizes, f_us, strict=True):
        size = (rgb.height, rgb.width)
        n = len(b)
        if it.scores is not None and len(it.scores) != n:
            raise ValueError(f"image {it.stem}: {n} boxes but {len(it.scores)} scores")
        f = f_u[None].float()
        local = _pool_rois(f, boxes_to_feature_coords(b, size, net).to(f.device), config.roi_output, 1.0)
        big = enlarge_boxes(b, config.global_scale, size)
        glob = _pool_rois(f, boxes_to_feature_coords(big, size, net).to(f.device), config.roi_output, 1.0)
        rec = {
            "image_size": size,
            "local": local.cpu().numpy().astype(np.float32),
            "global": glob.cpu().numpy().astype(np.float32),
            "centers": box_centers(b, size).astype(np.float32),
            "geometry": box_geometry(b, size),
            "boxes": b.astype(np.float32),
            "scores": (np.ones(n) if it.scores is None else np.asarray(it.scores)).astype(np.float32),
        }
        if n == 0:
            rec["appearance"] = np.zeros((0, backbone.dim), np.float32)
        elif config.mode == "roi":
            x = _image_tensor(rgb, config.roi_image_size).to(device)
            fmap = backbone(x)
            sy = x.shape[2] / size[0]
            sx = x.shape[3] / size[1]
            rois = torch.as_tensor(b, dtype=torch.float32, device=device) * torch.tensor(
                [sx, sy, sx, sy], device=device)
            rec["appearance"] = _pool_rois(fmap, rois, config.roi_output, 1.0 / backbone.stride).cpu().numpy()
        else:
            x = _image_tensor(rgb).to(device)
            rois = torch.as_tensor(b, dtype=torch.float32, device=device)
            crops.append(roi_align(x, [rois], output_size=config.crop_size, spatial_scale=1.0,
                                   sampling_ratio=-1, aligned=True))
            rec["appearance"] = None  # filled below
        out.append(rec)
    if config.mode == "crop" and crops:
        all_crops = torch.cat(crops)
        feats = torch.cat([backbone.pooled(all_crops[s : s + batch_size])
                           for s in range(0, len(all_crops), batch_size)]).cpu().numpy()
        start = 0
        for rec in out:
            if rec["appearance"] is None:
                n = len(rec["boxes"])
                rec["appearance"] = feats[start : start + n]
                start += n
    for rec in out:
        rec["appearance"] = np.asarray(rec["appearance"], np.float32).reshape(-1, backbone.dim)
    return out


# --- cache -----------------------------------------------------------------------------------------
def proposal_set_hash(items: Sequence[ImageProposals]) -> str:
    """SHA-1 (16 hex) of the stems, boxes and scores of a proposal set (order matters)."""
    h = hashlib.sha1()
    for it in items:
        h.update(it.stem.encode() + b"\0")
        h.update(np.ascontiguousarray(_as_boxes(it.boxes), dtype=np.float64).tobytes())
        if it.scores is not None:
            h.update(np.ascontiguousarray(it.scores, dtype=np.float64).tobytes())
        h.update(b"|")
    return h.hexdigest()[:16]


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_output(path, "wb") as f:
        np.save(f, array)


class FeatureStore:
    """Per-proposal features of a set of images, in memory or memory-mapped from a cache directory.

    ``arrays``: field -> (N, ...) arrays over all proposals (see :data:`FIELDS`); ``offsets``
    (I + 1,); ``stems`` (I,); ``image_sizes`` (I, 2) ``(height, width)``.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], offsets, stems: Sequence[str], image_sizes,
                 meta: Mapping | None = None, path: Path | None = None):
        self.arrays = dict(arrays)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.stems = list(stems)
        self.image_sizes = np.asarray(image_sizes, dtype=np.int64).reshape(-1, 2)
        self.meta = dict(meta or {})
        self.path = path
        self._index = {s: i for i, s in enumerate(self.stems)}
        n = int(self.offsets[-1]) if len(self.offsets) else 0
        if len(self.offsets) != len(self.stems) + 1:
            raise ValueError(f"FeatureStore: {len(self.offsets)} offsets for {len(self.stems)} images")
        for key in FIELDS:
            if key not in self.arrays:
                raise ValueError(f"FeatureStore: missing field {key!r}")
            if len(self.arrays[key]) != n:
                raise ValueError(f"FeatureStore: field {key!r} has {len(self.arrays[key])} rows, expected {n}")

    @classmethod
    def from_images(cls, per_image: Sequence[Mapping[str, np.ndarray]], stems: Sequence[str], image_sizes,
                    meta: Mapping | None = None, appearance_dim: int | None = None) -> FeatureStore:
        """Concatenate per-image dicts (as :func:`features_of_images` returns) into a store."""
        counts = [len(d["boxes"]) for d in per_image]
        arrays = {}
        for key in FIELDS:
            parts = [np.asarray(d[key]) for d in per_image]
            if parts:
                arrays[key] = np.concatenate(parts)
            else:
                width = {"local": 192, "global": 192, "appearance": appearance_dim or 0, "centers": 2,
                         "boxes": 4, "geometry": GEOMETRY_DIM}.get(key)
                arrays[key] = np.zeros((0,) if width is None else (0, width), np.float32)
        offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        return cls(arrays, offsets, stems, image_sizes, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStore:
        """Open a complete cache directory (fields memory-mapped read-only)."""
        path = Path(path)
        manifest = path / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{path}: no manifest.json (missing or unfinished feature cache)")
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        info = json.loads((path / "images.json").read_text(encoding="utf-8"))
        arrays = {key: np.load(path / f"{key}.npy", mmap_mode="r") for key in FIELDS}
        offsets = np.load(path / "offsets.npy")
        return cls(arrays, offsets, info["stems"], info["image_sizes"], meta, path)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fields, offsets, image list and finally the manifest (each file atomically)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for key in FIELDS:
            _save_npy(path / f"{key}.npy", np.ascontiguousarray(self.arrays[key]))
        _save_npy(path / "offsets.npy", self.offsets)
        atomic_write_json(path / "images.json", {"stems": self.stems, "image_sizes": self.image_sizes.tolist()})
        atomic_write_json(path / "manifest.json", {**self.meta, "format": FORMAT_VERSION}, indent=1)
        self.path = path
        return path

    def __len__(self) -> int:
        return len(self.stems)

    @property
    def n_proposals(self) -> int:
        return int(self.offsets[-1])

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def appearance_dim(self) -> int:
        return int(self.arrays["appearance"].shape[1])

    def index_of(self, stem: str) -> int:
        if stem not in self._index:
            raise KeyError(f"no image {stem!r} in the feature store")
        return self._index[stem]

    def image(self, key: int | str) -> dict[str, np.ndarray]:
        """The feature dict of one image (index or stem), the shape FOSRNet expects."""
        i = self.index_of(key) if isinstance(key, str) else int(key)
        s, e = self.offsets[i], self.offsets[i + 1]
        return {k: np.array(v[s:e]) for k, v in self.arrays.items()}

    def images(self) -> list[dict[str, np.ndarray]]:
        """Feature dicts of all images, in store order."""
        return [self.image(i) for i in range(len(self))]

    def subset(self, stems: Sequence[str]) -> FeatureStore:
        """An in-memory store of ``stems`` (in that order)."""
        idx = [self.index_of(s) for s in stems]
        return FeatureStore.from_images([self.image(i) for i in idx], list(stems), self.image_sizes[idx],
                                        self.meta, self.appearance_dim)

    def tensors(self, device=None) -> dict[str, torch.Tensor]:
        """All fields as float32 tensors (loaded into memory) on ``device``."""
        return {k: torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for k, v in self.arrays.items()}


def _items_from(source, proposals) -> tuple[str, list[ImageProposals]]:
    """(dataset label, items) from a SceneSet (+ optional proposals) or (images, boxes)."""
    from salrank.data.scenes import SceneSet

    if isinstance(source, SceneSet):
        items = []
        for stem in source.stems:
            if stem not in source.images:
                raise ValueError(f"{source.name}/{source.split}: image {stem!r} has no image file")
            if proposals is None:
                boxes, scores = source.boxes_of(stem), None
            elif stem not in proposals:
                raise KeyError(f"proposals: no entry for image {stem!r}")
            else:
                p = proposals[stem]
                boxes, scores = (p.boxes, p.scores) if hasattr(p, "boxes") else (p, None)
            items.append(ImageProposals(stem, source.images[stem], np.asarray(boxes, np.float64),
                                        None if scores is None else np.asarray(scores, np.float64)))
        return f"{source.name}_{source.split}", items
    if isinstance(source, tuple) and len(source) == 2:
        images, boxes = source
        images, boxes = list(images), list(boxes)
        if len(images) != len(boxes):
            raise ValueError(f"{len(images)} images but {len(boxes)} box arrays")
        items = []
        for i, (im, b) in enumerate(zip(images, boxes, strict=True)):
            stem = Path(im).stem if isinstance(im, (str, os.PathLike)) else f"image{i:06d}"
            bx, sc = (b.boxes, b.scores) if hasattr(b, "boxes") else (b, None)
            items.append(ImageProposals(stem, im, np.asarray(bx, np.float64),
                                        None if sc is None else np.asarray(sc, np.float64)))
        return "images", items
    if isinstance(source, Sequence) and all(isinstance(it, ImageProposals) for it in source):
        return "images", list(source)
    raise TypeError("extract_features: expected a SceneSet, an (images, boxes) pair or ImageProposals")


def extract_features(
    source,
    *,
    unisal,
    backbone: AppearanceBackbone,
    proposals: Mapping | None = None,
    config: FeatureConfig | None = None,
    mode: str | None = None,
    batch_size: int = 32,
    chunk_size: int = 64,
    cache: bool | str | os.PathLike = True,
    name: str | None = None,
    progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
) -> FeatureStore:
    """Features of every proposal of every image (see the module docstring), cached.

    ``source``: a :class:`salrank.data.scenes.SceneSet` (boxes = ``proposals[stem]`` when given, a
    :class:`~salrank.proposals.Detections` or a (K, 4) array, else the set's reference boxes), an
    ``(images, boxes per image)`` pair, or a list of :class:`ImageProposals`. ``unisal``: a
    loaded UNISAL; ``backbone``: :func:`load_backbone`. ``mode`` overrides ``config.mode``.
    ``cache``: ``True`` = under ``$SALRANK_CACHE/features``, a directory = under it, ``False`` =
    in memory only. ``name`` overrides the dataset label of the cache directory.
    ``on_chunk(done, total)`` is called after each chunk is safely on disk.
    """
    from tqdm.auto import tqdm

    config = config or FeatureConfig()
    if mode is not None:
        config = FeatureConfig(**{**asdict(config), "mode": mode})
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    label, items = _items_from(source, proposals)
    label = name or label
    stems = [it.stem for it in items]
    if len(set(stems)) != len(stems):
        raise ValueError("extract_features: two images share a stem")
    meta = {
        "dataset": label,
        "proposals": proposal_set_hash(items),
        "config": asdict(config),
        "backbone": backbone.name,
        "backbone_weights": backbone.weights_id,
        "backbone_fingerprint": module_fingerprint(backbone),
        "unisal_weights": getattr(unisal, "weights_id", "unknown"),
        "unisal_fingerprint": module_fingerprint(unisal),
        "n_images": len(items),
    }
    key = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    meta["key"] = key

    def run(chunk_items):
        feats = features_of_images(chunk_items, unisal, backbone, config, batch_size)
        return feats, [f.pop("image_size") for f in feats]

    if cache is False:
        per_image: list[dict] = []
        sizes: list = []
        for s in tqdm(range(0, len(items), chunk_size), desc="features", unit="chunk", disable=not progress):
            feats, chunk_sizes = run(items[s : s + chunk_size])
            per_image += feats
            sizes += chunk_sizes
        return FeatureStore.from_images(per_image, stems, sizes, meta, backbone.dim)

    if cache is True:
        from salrank.config import cache_dir

        root = cache_dir("features")
    else:
        root = Path(cache)
    directory = root / f"{_safe(label)}-{key}"
    if (directory / "manifest.json").is_file():
        return FeatureStore.load(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-len(items) // chunk_size)
    with tqdm(total=len(items), desc=f"features {label}", unit="img", disable=not progress) as bar:
        for c in range(n_chunks):
            chunk = items[c * chunk_size : (c + 1) * chunk_size]
            path = directory / f"chunk{chunk_size}_{c:05d}.npz"
            if not _chunk_ok(path, [it.stem for it in chunk]):
                feats, chunk_sizes = run(chunk)
                store = FeatureStore.from_images(feats, [it.stem for it in chunk], chunk_sizes,
                                                 appearance_dim=backbone.dim)
                _save_chunk(path, store)
            bar.update(len(chunk))
            if on_chunk is not None:
                on_chunk(c + 1, n_chunks)
    parts = [_load_chunk(directory / f"chunk{chunk_size}_{c:05d}.npz") for c in range(n_chunks)]
    merged = FeatureStore.from_images([p.image(i) for p in parts for i in range(len(p))], stems,
                                      [s for p in parts for s in p.image_sizes.tolist()], meta, backbone.dim)
    merged.save(directory)
    for p in directory.glob("chunk*.npz"):
        p.unlink()
    return FeatureStore.load(directory)


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)


def _save_chunk(path: Path, store: FeatureStore) -> None:
    with atomic_output(path, "wb") as f:
        np.savez(f, offsets=store.offsets, stems=np.array(store.stems), image_sizes=store.image_sizes,
                 **store.arrays)


def _load_chunk(path: Path) -> FeatureStore:
    with np.load(path) as z:
        return FeatureStore({k: z[k] for k in FIELDS}, z["offsets"], [str(s) for s in z["stems"]],
                            z["image_sizes"])


def _chunk_ok(path: Path, stems: list[str]) -> bool:
    if not path.is_file():
        return False
    try:
        with np.load(path) as z:
            return [str(s) for s in z["stems"]] == stems
    except (OSError, ValueError, KeyError):
        return False


def clear_cache(path: str | os.PathLike) -> None:
    """Remove one feature cache directory."""
    shutil.rmtree(path, ignore_errors=True)
