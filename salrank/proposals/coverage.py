"""Proposal coverage between two detectors (the paper's Fig. 12).

For each image, the top-k proposals of the *reference* detector (EfficientDet in the paper) are
compared with the top-k proposals of another detector: a reference proposal is *covered* at IoU
threshold ``t`` when some proposal of the other detector overlaps it with IoU >= ``t``. The
coverage rate is the share of covered reference proposals, pooled over all images (the mean
of the per-image rates is reported too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["coverage_rate", "DEFAULT_IOU_THRESHOLDS"]

DEFAULT_IOU_THRESHOLDS = tuple(np.round(np.arange(0.5, 1.0001, 0.05), 2))


def _as_boxes(b, what: str) -> np.ndarray:
    arr = np.asarray(b, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what}: boxes must have shape (N, 4), got {arr.shape}")
    return arr


def coverage_rate(
    reference_boxes: Sequence,
    other_boxes: Sequence,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    top_k: int | Sequence[int] = (5, 10),
):
    """Coverage of the reference detector's top-k proposals by the other detector's top-k.

    Args:
        reference_boxes: per image, ``(N, 4)`` ``[x1, y1, x2, y2]`` boxes in descending score order.
        other_boxes: the same images (same order), the other detector's boxes, score order.
        iou_thresholds: IoU thresholds ``t`` (a match needs IoU >= t).
        top_k: the number(s) of proposals compared per image (the paper: 5 and 10).

    Returns:
        a :class:`pandas.DataFrame` with columns ``threshold``, ``top_k``, ``coverage`` (pooled
        share in [0, 1]), ``mean_image_coverage`` (mean of per-image shares over images with at
        least one reference box), ``matched`` and ``reference`` (counts).
    """
    import pandas as pd
    import torch
    from torchvision.ops import box_iou

    if len(reference_boxes) != len(other_boxes):
        raise ValueError(f"{len(reference_boxes)} reference images but {len(other_boxes)} other images")
    ks = [int(top_k)] if np.isscalar(top_k) else [int(k) for k in top_k]
    if any(k < 1 for k in ks):
        raise ValueError(f"top_k must be >= 1, got {ks}")
    thresholds = np.asarray(list(iou_thresholds), dtype=np.float64)
    rows = []
    for k in ks:
        matched = np.zeros(len(thresholds), dtype=np.int64)
        total = 0
        per_image: list[np.ndarray] = []
        for i, (ref, oth) in enumerate(zip(reference_boxes, other_boxes, strict=True)):
            ref = _as_boxes(ref, f"reference image {i}")[:k]
            oth = _as_boxes(oth, f"other image {i}")[:k]
            if len(ref) == 0:
                continue
            if len(oth):
                best = box_iou(torch.from_numpy(ref), torch.from_numpy(oth)).max(dim=1).values.numpy()
            else:
                best = np.zeros(len(ref))
            # a small tolerance so that identical boxes count at t = 1.0 despite rounding
            hits = (best[None, :] >= thresholds[:, None] - 1e-9).sum(axis=1)
            matched += hits
            total += len(ref)
            per_image.append(hits / len(ref))
        mean_image = np.mean(per_image, axis=0) if per_image else np.full(len(thresholds), np.nan)
        for j, t in enumerate(thresholds):
            rows.append(
                {
                    "threshold": float(t),
                    "top_k": k,
                    "coverage": matched[j] / total if total else float("nan"),
                    "mean_image_coverage": float(mean_image[j]),
                    "matched": int(matched[j]),
                    "reference": int(total),
                }
            )
    return pd.DataFrame(rows, columns=["threshold", "top_k", "coverage", "mean_image_coverage", "matched",
                                       "reference"])
