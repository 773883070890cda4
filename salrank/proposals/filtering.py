"""The paper's proposal filtering (Sec. III-C1; ``book/conventions.md``).

In order: drop boxes covering more than ``max_area_frac`` of the image (60% in the paper); drop
tiny boxes (the paper: "a sum of pixel values less than 20", read as an area below ``min_area``
= 20 px; optionally also a minimum side ``min_side`` and a minimum area fraction
``min_area_frac``); drop near-duplicates with class-agnostic non-maximum suppression at
``iou_threshold`` (the paper's wording on IoU is garbled; 0.7 is the project's default); keep the
``top_n`` highest-scoring boxes (10). An image left with fewer than ``min_keep`` (5) proposals is
flagged for dummy padding, which the ranker does (FOSRNet pads each 5-proposal sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FilterResult", "filter_proposals", "check_filter_options", "DEFAULTS"]

DEFAULTS = {
    "max_area_frac": 0.6,
    "min_area": 20.0,
    "min_side": 0.0,
    "min_area_frac": 0.0,
    "iou_threshold": 0.7,
    "top_n": 10,
    "min_keep": 5,
}


@dataclass(frozen=True)
class FilterResult:
    """Which proposals survive.

    ``keep``: indices into the input, highest score first; ``num_dummies``: how many dummy
    proposals pad the image up to ``min_keep`` (0 when enough were kept); counts of the boxes
    each rule dropped.
    """

    keep: np.ndarray
    min_keep: int
    dropped_large: int
    dropped_small: int
    dropped_duplicate: int
    dropped_top_n: int

    @property
    def num_kept(self) -> int:
        return len(self.keep)

    @property
    def num_dummies(self) -> int:
        return max(0, self.min_keep - len(self.keep))

    @property
    def needs_padding(self) -> bool:
        """Fewer than ``min_keep`` proposals survive: the ranker pads with dummy nodes."""
        return self.num_dummies > 0


def check_filter_options(**options) -> None:
    """Raise :class:`salrank.errors.InvalidOptionError` (a ``ValueError``) naming the first option
    of :func:`filter_proposals` outside its range: ``max_area_frac`` in ``(0, 1]``, ``min_area``
    and ``min_side`` ``>= 0`` (pixels), ``min_area_frac`` and ``iou_threshold`` in ``[0, 1]``
    (``iou_threshold`` may be ``None``), ``top_n`` an integer ``>= 1`` or ``None``, ``min_keep``
    an integer ``>= 0``. Unknown names are a ``ValueError``."""
    from salrank.errors import check_int, check_number

    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown filter options {sorted(unknown)}")
    bounds = {"max_area_frac": (0.0, 1.0, True), "min_area": (0.0, None, False), "min_side": (0.0, None, False),
              "min_area_frac": (0.0, 1.0, False), "iou_threshold": (0.0, 1.0, False)}
    for name, value in options.items():
        if name in bounds and not (name == "iou_threshold" and value is None):
            low, high, low_open = bounds[name]
            check_number(name, value, low, high, low_open=low_open)
    if options.get("top_n") is not None:
        check_int("top_n", options["top_n"], 1)
    if "min_keep" in options:
        check_int("min_keep", options["min_keep"], 0)


def filter_proposals(
    boxes,
    scores,
    image_size: tuple[int, int],
    max_area_frac: float = DEFAULTS["max_area_frac"],
    min_area: float = DEFAULTS["min_area"],
    min_side: float = DEFAULTS["min_side"],
    min_area_frac: float = DEFAULTS["min_area_frac"],
    iou_threshold: float | None = DEFAULTS["iou_threshold"],
    top_n: int | None = DEFAULTS["top_n"],
    min_keep: int = DEFAULTS["min_keep"],
) -> FilterResult:
    """Apply the paper's filtering to one image's proposals.

    Args:
        boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` in pixels of the image.
        scores: ``(N,)`` detector scores (higher = more confident).
        image_size: ``(height, width)`` of the image in pixels.
        max_area_frac: drop boxes whose area is more than this fraction of the image.
        min_area: drop boxes with an area (px^2) below this; boxes with a non-positive side
            or non-finite coordinates are always dropped.
        min_side: drop boxes whose shorter side (px) is below this.
        min_area_frac: drop boxes whose area is below this fraction of the image.
        iou_threshold: class-agnostic NMS: a box overlapping a higher-scoring kept box with IoU
            above this is dropped (``None`` or 1 to skip).
        top_n: keep at most this many (``None`` for all).
        min_keep: the number of proposals the ranker needs (padding flag).
    """
    import torch
    from torchvision.ops import nms

    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    if len(scores) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size}")
    check_filter_options(max_area_frac=max_area_frac, min_area=min_area, min_side=min_side,
                         min_area_frac=min_area_frac, iou_threshold=iou_threshold, top_n=top_n, min_keep=min_keep)
    height, width = image_size
    image_area = float(height) * float(width)

    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    area = w * h
    valid = np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & (w > 0) & (h > 0)
    large = valid & (area > max_area_frac * image_area)
    small = valid & ~large & (
        (area < min_area) | (np.minimum(w, h) < min_side) | (area < min_area_frac * image_area)
    )
    candidates = np.flatnonzero(valid & ~large & ~small)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]

    if iou_threshold is not None and iou_threshold < 1.0 and len(order) > 1:
        # torchvision's nms keeps boxes in decreasing score order; ties: the earlier (lower index) first
        ranked_scores = torch.from_numpy(np.linspace(1.0, 0.0, len(order), endpoint=False))
        kept = nms(torch.from_numpy(boxes[order]), ranked_scores, float(iou_threshold)).numpy()
        after_nms = order[np.sort(kept)]
    else:
        after_nms = order
    keep = after_nms if top_n is None else after_nms[:top_n]
    return FilterResult(
        keep=keep.astype(np.int64),
        min_keep=int(min_keep),
        dropped_large=int(large.sum()),
        dropped_small=int((~valid).sum() + small.sum()),
        dropped_duplicate=int(len(order) - len(after_nms)),
        dropped_top_n=int(len(after_nms) - len(keep)),
    )
