"""Ranking objects from an eye-fixation-prediction (EFP) saliency map (paper eq. 12, Fig. 9).

Following the paper's text (``book/conventions.md``, section conv-eq12): grey the map; per object, the mean
map value over the box's pixels; threshold ``T`` = mean of those object means divided by
``lam`` (``0 < lam <= 1``); binarise the map (white = value ``> T``); score = number of white
pixels inside the box; more = more salient, 0 = rank 0. The printed formula divides each sum by
``sqrt(size)`` instead of the size: that variant is ``normalise="sqrt-area"``.
"""

from __future__ import annotations

import numpy as np

from salrank.gt.inputs import as_boxes, box_areas, clip_boxes
from salrank.gt.ranking import ranks_from_scores
from salrank.gt.scores import box_pixel_bounds

__all__ = ["grey", "efp_threshold", "efp_ranks"]

_LUMA = np.array([0.299, 0.587, 0.114])


def grey(saliency_map) -> np.ndarray:
    """A ``(H, W)`` float64 grey map from a ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
    ``(H, W, 4)`` map (ITU-R 601 luma for colour; alpha ignored). Values keep their scale."""
    arr = np.asarray(saliency_map, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[:, :, :3] @ _LUMA
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"saliency_map must be (H, W) or (H, W, 3), got shape {np.shape(saliency_map)}")
    if not np.isfinite(arr).all():
        raise ValueError("saliency_map contains NaN or infinite values")
    return arr


def efp_threshold(grey_map: np.ndarray, bounds: np.ndarray, areas: np.ndarray, lam: float,
                  normalise: str = "area") -> float:
    """Eq. 12's threshold ``T`` from a grey map and the boxes' pixel bounds
    (:func:`salrank.gt.scores.box_pixel_bounds`); boxes without pixels are left out of the mean."""
    values = []
    for (c0, r0, c1, r1), area in zip(bounds, areas, strict=True):
        n_pixels = (c1 - c0) * (r1 - r0)
        if n_pixels <= 0:
            continue
        total = grey_map[r0:r1, c0:c1].sum()
        values.append(total / n_pixels if normalise == "area" else total / np.sqrt(area))
    if not values:
        return float("inf")
    return float(np.mean(values) / lam)


def efp_ranks(saliency_map, boxes, lam: float = 1.0, normalise: str = "area") -> tuple[np.ndarray, np.ndarray]:
    """Scores and ranks of ``boxes`` (``(K, 4)`` ``[x1, y1, x2, y2]`` pixels of the map, clipped
    to it) from an EFP ``saliency_map`` (``(H, W)`` or ``(H, W, 3)``, any value scale).

    ``lam`` in ``(0, 1]``: the threshold is ``T = mean / lam``, so a smaller ``lam`` raises it.
    ``normalise``: ``"area"`` (the text: mean over the box's
    pixels, default) or ``"sqrt-area"`` (the printed formula: sum / sqrt(area)).
    Returns ``(scores, ranks)``: float64 white-pixel counts and int64 ranks (1 = most white
    pixels, ties by the lower index, 0 = none).
    """
    if not (np.isfinite(lam) and 0 < lam <= 1):
        raise ValueError(f"lam must be in (0, 1], got {lam!r}")
    if normalise not in ("area", "sqrt-area"):
        raise ValueError(f"normalise must be 'area' or 'sqrt-area', got {normalise!r}")
    gmap = grey(saliency_map)
    size = gmap.shape
    bxs = clip_boxes(as_boxes(boxes), size)
    bounds = box_pixel_bounds(bxs, size)
    threshold = efp_threshold(gmap, bounds, box_areas(bxs), lam, normalise)
    white = gmap > threshold
    scores = np.zeros(len(bxs))
    for k, (c0, r0, c1, r1) in enumerate(bounds):
        if c1 > c0 and r1 > r0:
            scores[k] = np.count_nonzero(white[r0:r1, c0:c1])
    return scores, ranks_from_scores(scores)
