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
                        image height (:func:`box_geometry`; used only by FOSRNet's optional
                        ``use_geometry`` addition, :mod:`salrank.fosrnet.model`)
=============  =======  ==================================================================

The PE (learned embedding of the centres) is part of FOSRNet, not cached. The feature networks
(UNISAL and the appearance CNN) and their weights come from
:func:`salrank.models.backbones.feature_extractors`.

Cache (:func:`extract_features` with ``cache=True``): one directory per (dataset name + split,
proposal-set hash, feature configuration, UNISAL and backbone weight fingerprints) under
``$SALRANK_CACHE/features/``, holding one ``.npy`` per field, concatenated over images
(``offsets`` (I + 1,) gives each image's rows), ``images.json`` (stems, image sizes) and
``manifest.json`` written last (its presence = complete). Extraction runs in chunks of
``chunk_size`` images; each finished chunk is saved atomically as its own file, so an
interrupted run resumes with the chunks already done; the final merge writes the fields and
removes the chunk files. :class:`FeatureStore` reads the fields back memory-mapped. Features
computed under autocast (``amp``) get their own key; float32 ones keep the key of earlier versions.

Batches (:func:`features_of_images`): images decoded in DataLoader workers (:func:`image_batches`,
:class:`DecodedImage`), one UNISAL forward per network size, one ROIAlign per input size for all
the boxes of a batch, the crops of many images per CNN forward.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.ops import roi_align

from salrank.cache import read_cache_entry
from salrank.errors import check_int
from salrank.io import atomic_output, atomic_write_json
from salrank.models.backbones import AppearanceBackbone, WeightsIdentity

__all__ = [
    "FIELDS",
    "MODES",
    "FeatureConfig",
    "DecodedImage",
    "FeatureStore",
    "ImageProposals",
    "box_centers",
    "box_geometry",
    "decode_image",
    "enlarge_boxes",
    "extract_features",
    "features_of_images",
    "image_batches",
    "module_fingerprint",
    "proposal_set_hash",
]

FORMAT_VERSION = 1
MODES = ("crop", "roi")
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


def _identity(unisal, backbone) -> WeightsIdentity:
    try:
        return WeightsIdentity(unisal.weights, backbone.weights)
    except AttributeError:
        raise ValueError("the feature networks carry no weights identity: build them with "
                         "salrank.models.backbones.feature_extractors") from None


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


# --- decoding, in DataLoader workers ---------------------------------------------------------------
@dataclass(frozen=True)
class DecodedImage:
    """An image decoded for the feature networks (what a loader worker hands over).

    ``rgb``: the RGB PIL image (for UNISAL and the detector); ``pixels``: (3, H, W) uint8, the
    appearance CNN's input before normalisation (the image itself in crop mode; resized, bilinear,
    to ``roi_image_size`` in ROI mode when that is set).
    """

    rgb: Image.Image
    pixels: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the image."""
        return self.rgb.height, self.rgb.width

    def pin_memory(self) -> DecodedImage:
        """A copy with ``pixels`` in page-locked memory (what a ``pin_memory`` DataLoader calls)."""
        return DecodedImage(self.rgb, self.pixels.pin_memory())


def _rgb(image) -> Image.Image:
    from salrank.models.unisal import to_rgb_image

    return image.rgb if isinstance(image, DecodedImage) else to_rgb_image(image)


def _pixels(rgb: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(3, H, W) uint8 tensor of an RGB image, optionally resized (bilinear) to ``size`` ``(H, W)``."""
    if size is not None and (rgb.height, rgb.width) != tuple(size):
        rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    # numpy's transpose copy: one thread (a torch copy goes through the intra-op thread pool,
    # whose wake-ups cost more than the copy itself on a busy machine)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)))


def _cnn_size(config: FeatureConfig, size: tuple[int, int]) -> tuple[int, int]:
    return config.roi_image_size if config.mode == "roi" and config.roi_image_size else size


def decode_image(image, config: FeatureConfig | None = None) -> DecodedImage:
    """``image`` (a path, PIL image, HxWx3 uint8 array or :class:`DecodedImage`) decoded for ``config``."""
    config = config or FeatureConfig()
    if isinstance(image, DecodedImage) and tuple(image.pixels.shape[1:]) == _cnn_size(config, image.size):
        return image
    rgb = _rgb(image)
    return DecodedImage(rgb, _pixels(rgb, _cnn_size(config, (rgb.height, rgb.width))))


def _normalise(pixels: Sequence[torch.Tensor], device=None) -> torch.Tensor:
    """(3, H, W) uint8 images -> one (B, 3, H, W) ImageNet-normalised float32 tensor on ``device``
    (default: the first image's), normalised image by image into it (no batch-sized temporaries)."""
    device = torch.device(device) if device is not None else pixels[0].device
    out = torch.empty((len(pixels), *pixels[0].shape), dtype=torch.float32, device=device)
    if device.type == "cpu":  # numpy: the same float32 operations, without the thread pool's wake-ups
        x, mean, std = out.numpy(), _MEAN[0].numpy(), _STD[0].numpy()
        for i, p in enumerate(pixels):
            np.divide(p.cpu().numpy(), np.float32(255.0), out=x[i])
            np.subtract(x[i], mean, out=x[i])
            np.divide(x[i], std, out=x[i])
        return out
    mean, std = _MEAN[0].to(device), _STD[0].to(device)
    for x, p in zip(out, pixels, strict=True):
        torch.div(p.to(device, non_blocking=True), 255.0, out=x)
        x.sub_(mean).div_(std)
    return out


def _image_tensor(rgb: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(1, 3, H, W) ImageNet-normalised float tensor of an RGB image (optionally resized, bilinear)."""
    return _normalise([_pixels(rgb, size)])


class _Decoding(torch.utils.data.Dataset):
    def __init__(self, images: Sequence, decode: Callable):
        self.images, self.decode = images, decode

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.decode(self.images[i])


def image_batches(images: Sequence, batch_size: int, decode: Callable = _rgb, num_workers: int = 0,
                  pin_memory: bool = False) -> Iterator[list]:
    """``decode(image)`` of each of ``images``, in order, in lists of ``batch_size``.

    A :class:`torch.utils.data.DataLoader` decodes them in ``num_workers`` worker processes (0:
    in this process) while the caller works on the previous batch; ``pin_memory`` (for CUDA) puts
    the decoded tensors in page-locked memory. ``decode`` must be picklable for workers.
    """
    from torch.utils.data import DataLoader

    check_int("batch_size", batch_size, 1)
    check_int("num_workers", num_workers, 0)
    yield from DataLoader(_Decoding(list(images), decode), batch_size=batch_size, shuffle=False,
                          num_workers=num_workers, collate_fn=list, pin_memory=pin_memory)


# --- the networks on a batch of images -------------------------------------------------------------
def _amp_name(amp: str | None, device) -> str | None:
    """``"bf16"``, ``"fp16"`` or ``None`` (float32) for ``amp`` on ``device``."""
    from salrank.bench.core import resolve_amp

    return resolve_amp(amp, device)


def _autocast(device: torch.device, amp: str | None):
    name = _amp_name(amp, device)
    if name is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if name == "bf16" else torch.float16)


def _pool_rois(fmap: torch.Tensor, rois: torch.Tensor, output: int, scale: float) -> torch.Tensor:
    """roi_align (aligned, adaptive sampling) of (K, 5) ``(batch index, x1, y1, x2, y2)`` rois on a
    (B, C, h, w) map, averaged -> (K, C)."""
    if len(rois) == 0:
        return fmap.new_zeros(0, fmap.shape[1])
    pooled = roi_align(fmap, rois, output_size=output, spatial_scale=scale, sampling_ratio=-1, aligned=True)
    return pooled.mean(dim=(2, 3))


def _as_batch(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """(B, ...) tensor of ``B`` equally shaped maps: a view of their batch when they are the
    consecutive rows of one tensor (what a batched forward returns), else a stacked copy."""
    first = maps[0]
    step, ptr = first.numel(), first.untyped_storage().data_ptr()
    rows = all(m.shape == first.shape and m.is_contiguous() and m.untyped_storage().data_ptr() == ptr
               and m.storage_offset() == first.storage_offset() + j * step for j, m in enumerate(maps))
    if rows and first.untyped_storage().nbytes() >= (first.storage_offset() + len(maps) * step) * first.element_size():
        return first.as_strided((len(maps), *first.shape), (step, *first.stride()), first.storage_offset())
    return torch.stack(list(maps))


def _groups(keys: Sequence) -> dict:
    """key -> indices holding it, keys in sorted order."""
    out: dict = {}
    for i, k in enumerate(keys):
        out.setdefault(k, []).append(i)
    return dict(sorted(out.items()))


@dataclass
class _Networks:
    """The feature networks and how they run on a batch of images."""

    unisal: object
    backbone: AppearanceBackbone
    config: FeatureConfig
    batch_size: int
    amp: str | None
    channels_last: bool

    def __post_init__(self):
        self.device = next(self.backbone.parameters()).device

    def autocast(self):
        return _autocast(self.device, self.amp)

    def cnn_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def unisal_features(self, decoded: Sequence[DecodedImage], boxes: Sequence[np.ndarray]):
        """(local, global) (K, 192) over all boxes of the batch: UNISAL's ``f_u`` of the images
        (grouped by network size), then one ROIAlign per network size for every box and its
        enlarged box."""
        from salrank.models.unisal import network_size_for, roi_boxes

        cfg = self.config
        counts = [len(b) for b in boxes]
        sizes = [d.size for d in decoded]
        nets = [cfg.unisal_network_size or network_size_for(s) for s in sizes]
        local: list = [None] * len(decoded)
        glob: list = [None] * len(decoded)
        for net, idx in _groups(nets).items():
            with self.autocast():
                maps = self.unisal.features_per_image([decoded[i].rgb for i in idx], batch_size=self.batch_size,
                                                      network_size=net)
            f = _as_batch(maps).float()
            big = [enlarge_boxes(boxes[i], cfg.global_scale, sizes[i]) for i in idx]
            rois = torch.cat([roi_boxes([boxes[i] for i in idx], [sizes[i] for i in idx], [net] * len(idx)),
                              roi_boxes(big, [sizes[i] for i in idx], [net] * len(idx))]).to(f.device)
            pooled = _pool_rois(f, rois, cfg.roi_output, 1.0).cpu()
            n = sum(counts[i] for i in idx)
            for i, lo, gl in zip(idx, pooled[:n].split([counts[i] for i in idx]),
                                 pooled[n:].split([counts[i] for i in idx]), strict=True):
                local[i], glob[i] = lo, gl
        return torch.cat(local), torch.cat(glob)

    def _inputs(self, decoded: Sequence[DecodedImage], boxes: Sequence[np.ndarray]):
        """The images with boxes, grouped by CNN input size: [normalised (n, 3, H, W) on the
        device], and for every box (in image order) its group and ``roi_align`` row ``(index in
        the group, x1, y1, x2, y2)`` in CNN input pixels."""
        with_boxes = [i for i, b in enumerate(boxes) if len(b)]
        groups = _groups([tuple(decoded[i].pixels.shape[1:]) for i in with_boxes]).values()
        images, group_of, rows = [], [], []
        where = {}
        for g, idx in enumerate([with_boxes[j] for j in members] for members in groups):
            images.append(_normalise([decoded[i].pixels for i in idx], self.device))
            where.update({i: (g, pos) for pos, i in enumerate(idx)})
        for i in with_boxes:
            g, pos = where[i]
            (h, w), (ph, pw) = decoded[i].size, decoded[i].pixels.shape[1:]
            b = torch.as_tensor(boxes[i], dtype=torch.float32)
            if (ph, pw) != (h, w):  # ROI mode at roi_image_size: the boxes in the resized image's pixels
                b = b * torch.tensor([pw / w, ph / h, pw / w, ph / h])
            rows.append(torch.cat([b.new_full((len(b), 1), float(pos)), b], dim=1))
            group_of += [g] * len(b)
        rows_t = torch.cat(rows).to(self.device) if rows else torch.zeros(0, 5, device=self.device)
        return images, torch.as_tensor(group_of, dtype=torch.long), rows_t

    def appearance(self, decoded: Sequence[DecodedImage], boxes: Sequence[np.ndarray]) -> torch.Tensor:
        """(K, dim) appearance features of all boxes of the batch (crop or ROI mode)."""
        images, group_of, rows = self._inputs(decoded, boxes)
        if not len(rows):
            return torch.zeros(0, self.backbone.dim)
        if self.config.mode == "roi":
            return self._roi_appearance(images, group_of, rows)
        size = self.config.crop_size
        feats = []
        for s in range(0, len(rows), self.batch_size):  # one ROIAlign per input size and CNN forward
            part, groups = rows[s : s + self.batch_size], group_of[s : s + self.batch_size]
            crops = None
            for g, x in enumerate(images):
                sel = (groups == g).nonzero().flatten()
                if len(sel) == 0:
                    continue
                c = roi_align(x, part[sel.to(part.device)], output_size=size, spatial_scale=1.0, sampling_ratio=-1,
                              aligned=True)
                if len(sel) == len(part):
                    crops = c
                    break
                if crops is None:
                    crops = x.new_empty(len(part), 3, size, size)
                crops[sel.to(x.device)] = c
            with self.autocast():
                feats.append(self.backbone.pooled(self.cnn_input(crops)).float().cpu())
        return torch.cat(feats)

    def _roi_appearance(self, images, group_of, rows) -> torch.Tensor:
        out = torch.zeros(len(rows), self.backbone.dim)
        for g, x in enumerate(images):
            fmaps = []
            for s in range(0, len(x), self.batch_size):
                with self.autocast():
                    fmaps.append(self.backbone(self.cnn_input(x[s : s + self.batch_size])).float())
            sel = (group_of == g).nonzero().flatten()
            out[sel] = _pool_rois(torch.cat(fmaps), rows[sel.to(rows.device)], self.config.roi_output,
                                  1.0 / self.backbone.stride).cpu()
        return out


@torch.no_grad()
def features_of_images(items: Sequence[ImageProposals], unisal, backbone: AppearanceBackbone,
                       config: FeatureConfig | None = None, batch_size: int = 32, *, num_workers: int = 0,
                       amp: str | None = None, channels_last: bool | None = None) -> list[dict[str, np.ndarray]]:
    """Per-image feature dicts (see the module table) for ``items``, without any caching.

    ``unisal``: a :class:`salrank.models.unisal.UNISAL`; ``backbone``: an
    :class:`~salrank.models.backbones.AppearanceBackbone`. The images go in batches of
    ``batch_size``: decoded in ``num_workers`` DataLoader worker processes (:func:`image_batches`;
    an item's image may already be a :class:`DecodedImage`), one UNISAL forward per network size,
    one ROIAlign on ``f_u`` for every box of the batch, and in crop mode the crops of all the
    batch's boxes cut by ROIAlign on the image tensors and through the CNN ``batch_size`` crops at
    a time (ROI mode: ``batch_size`` images per CNN forward). The features do not depend on
    ``batch_size`` beyond float rounding (equal at 1e-5); ``batch_size=1`` is one image at a time.
    ``amp``: autocast dtype of the network forwards (``"bf16"``, ``"fp16"``, ``"auto"`` = bf16/fp16
    on CUDA only; default off: float32); ``channels_last``: the CNN's inputs in channels-last
    memory format (default: on CUDA). Each dict also holds ``image_size`` ``(height, width)``.
    """
    config = config or FeatureConfig()
    check_int("batch_size", batch_size, 1)
    boxes = [_as_boxes(it.boxes, f"image {it.stem}: boxes") for it in items]
    for it, b in zip(items, boxes, strict=True):
        if it.scores is not None and len(it.scores) != len(b):
            raise ValueError(f"image {it.stem}: {len(b)} boxes but {len(it.scores)} scores")
    device = next(backbone.parameters()).device
    nets = _Networks(unisal, backbone, config, batch_size, amp,
                     device.type == "cuda" if channels_last is None else bool(channels_last))
    decode = functools.partial(decode_image, config=config)
    out: list[dict[str, np.ndarray]] = []
    start = 0
    for decoded in image_batches([it.image for it in items], batch_size, decode, num_workers,
                                 pin_memory=device.type == "cuda" and num_workers > 0):
        part = boxes[start : start + len(decoded)]
        counts = [len(b) for b in part]
        local, glob = nets.unisal_features(decoded, part)
        appearance = nets.appearance(decoded, part)
        for it, d, b, lo, gl, app in zip(items[start : start + len(decoded)], decoded, part, local.split(counts),
                                         glob.split(counts), appearance.split(counts), strict=True):
            n = len(b)
            out.append({
                "image_size": d.size,
                "local": lo.numpy().astype(np.float32),
                "global": gl.numpy().astype(np.float32),
                "appearance": app.numpy().astype(np.float32).reshape(-1, backbone.dim),
                "centers": box_centers(b, d.size).astype(np.float32),
                "geometry": box_geometry(b, d.size),
                "boxes": b.astype(np.float32),
                "scores": (np.ones(n) if it.scores is None else np.asarray(it.scores)).astype(np.float32),
            })
        start += len(decoded)
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
        arrays = {key: np.load(path / f"{key}.npy", mmap_mode="r", allow_pickle=False) for key in FIELDS}
        offsets = np.load(path / "offsets.npy", allow_pickle=False)
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

    def save_npz(self, path: str | os.PathLike) -> Path:
        """Write the store as one ``.npz`` file (atomically; the same store gives the same bytes)."""
        import zipfile

        path = Path(path)
        entries = {"offsets": self.offsets, "stems": np.array(self.stems, dtype=str),
                   "image_sizes": self.image_sizes, **{k: self.arrays[k] for k in FIELDS},
                   "meta": np.array(json.dumps(self.meta, sort_keys=True))}
        with atomic_output(path, "wb") as f, zipfile.ZipFile(f, "w") as z:
            for name, array in entries.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))  # no timestamps
                with z.open(info, "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, np.asarray(array), allow_pickle=False)
        return path

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> FeatureStore:
        """Read a store written by :meth:`save_npz`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            return cls({k: z[k] for k in FIELDS}, z["offsets"], [str(s) for s in z["stems"]], z["image_sizes"],
                       meta, Path(path))

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
    num_workers: int = 0,
    amp: str | None = None,
    channels_last: bool | None = None,
) -> FeatureStore:
    """Features of every proposal of every image (see the module docstring), cached.

    ``source``: a :class:`salrank.data.scenes.SceneSet` (boxes = ``proposals[stem]`` when given, a
    :class:`~salrank.proposals.Detections` or a (K, 4) array, else the set's reference boxes), an
    ``(images, boxes per image)`` pair, or a list of :class:`ImageProposals`. ``unisal``: a
    loaded UNISAL; ``backbone``: an :class:`~salrank.models.backbones.AppearanceBackbone`. ``mode`` overrides ``config.mode``.
    ``cache``: ``True`` = under ``$SALRANK_CACHE/features``, a directory = under it, ``False`` =
    in memory only. ``name`` overrides the dataset label of the cache directory.
    ``on_chunk(done, total)`` is called after each chunk is safely on disk. ``batch_size``,
    ``num_workers``, ``amp``, ``channels_last``: see :func:`features_of_images`; autocast changes
    the features, so it is part of the cache key (float32 keys are those of earlier versions).
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
        "weights": _identity(unisal, backbone).to_dict(),
        "backbone_fingerprint": module_fingerprint(backbone),
        "unisal_fingerprint": module_fingerprint(unisal),
        "n_images": len(items),
    }
    precision = _amp_name(amp, next(backbone.parameters()).device)
    if precision is not None:  # only then: float32 features keep their cache key
        meta["amp"] = precision
    key = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    meta["key"] = key

    def run(chunk_items):
        feats = features_of_images(chunk_items, unisal, backbone, config, batch_size, num_workers=num_workers,
                                   amp=amp, channels_last=channels_last)
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
    if (directory / "manifest.json").is_file():  # complete; damaged: discarded with a warning and rebuilt
        store = read_cache_entry(directory, FeatureStore.load, what="feature cache")
        if store is not None:
            return store
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
    store.save_npz(path)


def _load_chunk(path: Path) -> FeatureStore:
    return FeatureStore.load_npz(path)


def _chunk_ok(path: Path, stems: list[str]) -> bool:
    """``path`` holds the features of ``stems``, intact (a damaged chunk is discarded with a warning)."""
    stored = read_cache_entry(path, lambda p: _load_chunk(p).stems, what="feature cache chunk")
    return stored == stems


def clear_cache(path: str | os.PathLike) -> None:
    """Remove one feature cache directory."""
    shutil.rmtree(path, ignore_errors=True)
