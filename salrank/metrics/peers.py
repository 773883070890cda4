"""Instance-mask metrics of the peer saliency-ranking papers (ASSR, IRSR): rank maps, SOR and MAE.

These need masks and painted rank maps, unlike salrank's box-level metrics
(:mod:`salrank.metrics.ranking`). Definitions differ between codebases (``book/conventions.md``, conv-metrics); every
function states the variant it computes.

Rank maps (:func:`paint_rank_map`), values in [0, 1], 0 = background; where masks overlap the
more salient object is on top:

* ``"assr"``: ranks 1..5 painted 255, 229, 204, 178, 153 (/ 255); rank 0 and ranks > 5 not painted.
* ``"irsr"``: each ranked object gets ``(ascending index + 1) / count`` (the most salient 1,
  the least ``1 / count``; count = objects with rank > 0).

SOR (:func:`image_sor`, Siris et al.): GT objects of rank 1..``top_k`` (ASSR: value > 0.5).
Each object's predicted value is read from the predicted rank map inside its GT mask:

* ``variant="cvpr"`` (ASSR CVPR 2020 code): the mode of the non-zero pixel values, counted only
  when more than ``coverage`` (0.5) of the mask's pixels are non-zero (else 0); an image with a
  single object left scores rho = 1.
* ``variant="ijcv"`` (IJCV extension): the mean of the pixel values in the mask; an image needs
  at least 2 objects left.

Objects whose predicted value is 0 are dropped, then Spearman's rho between GT saliency and the
predicted values; images with no result (or a NaN rho, e.g. constant predictions) are "not
used" and left out of the mean. :func:`mean_sor` reports the mean rho and ``(rho + 1) / 2``.

MAE (:func:`image_mae`): mean per-pixel ``|pred - gt|`` of two rank maps in [0, 1] (ASSR and
IRSR both; the maps differ by painting convention, so compare like with like).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "ASSR_LEVELS",
    "PAINTINGS",
    "SOR_VARIANTS",
    "paint_rank_map",
    "load_rank_map",
    "object_values",
    "image_sor",
    "mean_sor",
    "image_mae",
    "mean_mae",
]

#: ASSR's grey levels for ranks 1..5.
ASSR_LEVELS = (255, 229, 204, 178, 153)
PAINTINGS = ("assr", "irsr")
SOR_VARIANTS = ("cvpr", "ijcv")


def _masks(masks, what: str = "masks") -> np.ndarray:
    m = np.asarray(masks)
    if m.ndim != 3:
        raise ValueError(f"{what}: expected (K, H, W), got shape {m.shape}")
    return m.astype(bool)


def _ranks(ranks, n: int, what: str = "ranks") -> np.ndarray:
    r = np.asarray(ranks).reshape(-1)
    if len(r) != n:
        raise ValueError(f"{what}: {len(r)} ranks for {n} masks")
    if not np.issubdtype(r.dtype, np.integer):
        if not np.all(np.isfinite(r)) or np.any(r != np.round(r)):
            raise ValueError(f"{what}: ranks must be integers (1 = most salient, 0 = not salient)")
        r = r.astype(np.int64)
    if (r < 0).any():
        raise ValueError(f"{what}: ranks must be >= 0")
    return r.astype(np.int64)


def paint_rank_map(masks, ranks, painting: str = "assr") -> np.ndarray:
    """Rank map ``(H, W)`` float64 in [0, 1] from instance masks ``(K, H, W)`` and ranks ``(K,)``
    (1 = most salient, 0 = not salient), painted the ``painting`` way (module docstring)."""
    if painting not in PAINTINGS:
        raise ValueError(f"painting: unknown {painting!r}; expected one of {PAINTINGS}")
    m = _masks(masks)
    r = _ranks(ranks, len(m))
    out = np.zeros(m.shape[1:], dtype=np.float64)
    ranked = np.flatnonzero(r > 0)
    count = len(ranked)
    for k in ranked[np.argsort(-r[ranked], kind="stable")]:  # least salient first, the top one last
        if painting == "assr":
            if r[k] > len(ASSR_LEVELS):
                continue
            value = ASSR_LEVELS[r[k] - 1] / 255.0
        else:
            ascending = count - int((r[ranked] < r[k]).sum()) - 1  # 0 = least salient
            value = (ascending + 1) / count
        out[m[k]] = value
    return out


def load_rank_map(path) -> np.ndarray:
    """A rank-map PNG (first channel if colour) as float64 in [0, 1] (pixel / 255)."""
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr.astype(np.float64) / 255.0


def object_values(pred_map, gt_masks, variant: str = "cvpr", coverage: float = 0.5) -> np.ndarray:
    """The predicted value of each GT object read from ``pred_map`` ``(H, W)`` inside its mask
    (``variant`` ``"cvpr"``: mode of the non-zero values if more than ``coverage`` of the mask
    is non-zero, else 0; ``"ijcv"``: mean). Returns float64 ``(K,)``."""
    if variant not in SOR_VARIANTS:
        raise ValueError(f"variant: unknown {variant!r}; expected one of {SOR_VARIANTS}")
    pred = np.asarray(pred_map, dtype=np.float64)
    m = _masks(gt_masks, "gt_masks")
    if pred.shape != m.shape[1:]:
        raise ValueError(f"pred_map has shape {pred.shape}, the masks {m.shape[1:]}")
    values = np.zeros(len(m))
    for k, mask in enumerate(m):
        inside = pred[mask]
        if inside.size == 0:
            continue
        if variant == "ijcv":
            values[k] = inside.mean()
            continue
        nonzero = inside[inside > 0]
        if nonzero.size > int(inside.size * coverage):
            values[k] = stats.mode(nonzero, keepdims=False).mode  # ties: the smallest value
    return values


def image_sor(pred_map, gt_masks, gt_ranks, variant: str = "cvpr", *, top_k: int = 5,
              coverage: float = 0.5) -> float:
    """SOR's Spearman rho of one image (module docstring); NaN when the image is not used.

    ``gt_ranks``: 1 = most salient, 0 = not salient; only ranks 1..``top_k`` take part.
    ``pred_map``: predicted rank map, higher = more salient, 0 = background.
    """
    m = _masks(gt_masks, "gt_masks")
    r = _ranks(gt_ranks, len(m), "gt_ranks")
    keep = (r > 0) & (r <= top_k)
    pred = object_values(pred_map, m[keep], variant, coverage)
    gt = -r[keep].astype(np.float64)  # higher = more salient
    used = pred != 0
    pred, gt = pred[used], gt[used]
    if len(pred) == 1 and variant == "cvpr":
        return 1.0
    if len(pred) < 2 or np.all(pred == pred[0]) or np.all(gt == gt[0]):
        return float("nan")
    return float(stats.spearmanr(gt, pred)[0])


def mean_sor(values: Iterable[float]) -> dict:
    """Dataset SOR from per-image rhos (NaN = not used): ``{"sor", "sor_normalised", "n_images",
    "n_used"}`` with ``sor_normalised = (sor + 1) / 2``."""
    v = np.asarray(list(values), dtype=np.float64)
    ok = ~np.isnan(v)
    sor = float(v[ok].mean()) if ok.any() else float("nan")
    return {"sor": sor, "sor_normalised": (sor + 1) / 2, "n_images": int(v.size), "n_used": int(ok.sum())}


def image_mae(pred_map, gt_map) -> float:
    """Mean absolute difference of two ``(H, W)`` rank maps with values in [0, 1]."""
    p = np.asarray(pred_map, dtype=np.float64)
    g = np.asarray(gt_map, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"pred_map {p.shape} and gt_map {g.shape} differ in shape")
    for name, a in (("pred_map", p), ("gt_map", g)):
        if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
            raise ValueError(f"{name}: values must lie in [0, 1] (divide 8-bit maps by 255)")
    return float(np.abs(p - g).mean()) if p.size else float("nan")


def mean_mae(pairs: Sequence[tuple]) -> float:
    """Mean of :func:`image_mae` over ``(pred_map, gt_map)`` pairs (each image weighs the same)."""
    values = [image_mae(p, g) for p, g in pairs]
    return float(np.mean(values)) if values else float("nan")
