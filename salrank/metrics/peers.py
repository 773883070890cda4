"""Instance-mask metrics of the peer saliency-ranking papers (ASSR, IRSR, SeqRank): rank maps,
SOR, MAE and SA-SOR, each variant named after the code it reproduces.

Ranks follow salrank's convention (1 = most salient, 0 = not salient); masks are boolean
``(K, H, W)`` (binarise soft masks first, IRSR and SeqRank use ``> 0.5``); boxes are
``[x1, y1, x2, y2]`` pixels. Coordinates, rank conventions and the metric variants: ``book/conventions.md`` (conv-metrics).

Rank maps (:func:`paint_rank_map`), values in [0, 1], 0 = background:

* ``"assr"`` (ASSR ``generate_saliency_map.py``): the objects sorted from most to least salient
  (equal ranks: the higher index first, as ASSR's ``sorted(..., reverse=True)``), the first five
  painted 255, 229, 204, 178, 153 (/ 255) *in that order*, so where masks overlap the less
  salient object is on top; rank 0 is never painted.
* ``"irsr"`` (IRSR ``make_map``): each ranked object gets ``(m + 1) / count``, m = the number of
  ranked objects strictly less salient than it (ties share the lower value), count = the
  number of ranked objects; painted in list order, so a later object is on top. IRSR paints
  its GT from the raw IRSR rank values ``(rank + 1) / count``, which is the same map when the
  raw ranks are ``0..count-1`` without ties.

SOR (:func:`image_sor`, ASSR's ``evaluate.py`` / ``evaluate_MAE_SOR.py``): the GT objects of
rank 1..``top_k``; the predicted map is read as 8-bit grey levels (``round(value * 255)``, as
ASSR reads its PNGs) inside each GT mask:

* ``variant="assr-cvpr"`` (CVPR 2020 code, alias ``"cvpr"``): the mode of the non-zero levels
  (ties: the smallest), counted only when more than ``coverage`` (0.5) of the mask's pixels are
  non-zero, else 0; an image with a single object left scores rho = 1.
* ``variant="assr-ijcv"`` (IJCV extension, alias ``"ijcv"``): the integer sum of the levels
  divided by the pixel count, so equal means tie exactly; an image needs >= 2 objects left.

Objects whose predicted value is 0 are dropped, then Spearman's rho between GT saliency and the
predicted values; images with no result or a NaN rho (constant values) are "not used" and left
out of the mean. :func:`mean_sor` reports the mean rho and ``(rho + 1) / 2``.

MAE (:func:`image_mae`): mean per-pixel ``|pred - gt|`` of two rank maps in [0, 1] (ASSR,
IRSR, SeqRank); the maps differ by painting, so compare like with like.

SA-SOR (:func:`image_sa_sor`, Liu et al.), on masks ``(K, H, W)`` or boxes ``(K, 4)``: GT and
predicted ranks become ascending indices (1 = least salient, ties share the lower index); each
GT object takes the index of its matched prediction, 0 if missed; score = Pearson correlation
of the two vectors. ``variant``:

* ``"irsr"`` (IRSR ``metric/SA-SOR.py``): each GT takes its best-IoU prediction, missed if IoU
  < ``iou_threshold``; when several GT take one prediction the highest IoU keeps it and the
  others are missed. Equal IoUs are settled as IRSR does, by the last entry of numpy's default
  ``argsort`` (with numpy 1.x on rows this short: the *last* prediction, the *later* GT; numpy
  2's SIMD sorts can order equal keys otherwise, and salrank follows whatever numpy is
  installed, as IRSR's script would). Mask IoU is computed in float32, as IRSR's; predicted indices are counted over ALL predictions only when there are more
  predictions than GT objects, else over the matched predictions only; a constant predicted
  vector scores 0; images with < 2 GT objects or a NaN score are excluded from the mean.
* ``"seqrank"`` (SeqRank ``evaluation/metrics.py``): one-to-one Hungarian matching on
  ``1 - IoU`` (mask IoU ``inter / (union + 1e-6)``), a pair counts when IoU > ``iou_threshold``;
  indices by position in the rank order (equal ranks: the lower index is the more salient);
  NaN images (one GT, constant vectors) count as 0 in the mean.
* ``"salrank"`` (salrank's earlier reading): best IoU with equal IoU -> the first prediction,
  conflicts to the higher IoU (equal IoU: the earlier GT), indices always over all predictions,
  equal predicted ranks ordered by index (the lower index more salient).

Objects with rank 0 are dropped before SA-SOR (the peers have no rank 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "ASSR_LEVELS",
    "PAINTINGS",
    "SOR_VARIANTS",
    "SA_SOR_VARIANTS",
    "paint_rank_map",
    "load_rank_map",
    "object_values",
    "image_sor",
    "mean_sor",
    "image_mae",
    "mean_mae",
    "iou_matrix",
    "match_boxes",
    "image_sa_sor",
    "mean_sa_sor",
]

#: ASSR's grey levels for ranks 1..5.
ASSR_LEVELS = (255, 229, 204, 178, 153)
PAINTINGS = ("assr", "irsr")
SOR_VARIANTS = ("assr-cvpr", "assr-ijcv")
_SOR_ALIASES = {"cvpr": "assr-cvpr", "ijcv": "assr-ijcv"}
SA_SOR_VARIANTS = ("irsr", "seqrank", "salrank")


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


def _ascending_index(ranks: np.ndarray) -> np.ndarray:
    """Ranks (1 = most salient) -> 1 + the number of objects strictly less salient (ties share
    the lower index), IRSR's ``sorted(x).index(a) + 1``."""
    r = np.asarray(ranks).reshape(-1)
    return 1 + (r[None, :] > r[:, None]).sum(axis=1).astype(np.int64)


def _positions(ranks: np.ndarray, last_first: bool = False) -> np.ndarray:
    """Order of the objects from most to least salient; equal ranks by index (the higher index
    first when ``last_first``)."""
    idx = np.arange(len(ranks))
    return np.lexsort((-idx if last_first else idx, ranks))


def _position_index(ranks: np.ndarray) -> np.ndarray:
    """n for the most salient object ... 1 for the least, by :func:`_positions`."""
    out = np.empty(len(ranks), dtype=np.int64)
    out[_positions(ranks)] = np.arange(len(ranks), 0, -1)
    return out


def paint_rank_map(masks, ranks, painting: str = "assr") -> np.ndarray:
    """Rank map ``(H, W)`` float64 in [0, 1] from instance masks ``(K, H, W)`` and ranks ``(K,)``
    (1 = most salient, 0 = not salient), painted as ``painting``'s code does (module docstring)."""
    if painting not in PAINTINGS:
        raise ValueError(f"painting: unknown {painting!r}; expected one of {PAINTINGS}")
    m = _masks(masks)
    r = _ranks(ranks, len(m))
    out = np.zeros(m.shape[1:], dtype=np.float64)
    ranked = np.flatnonzero(r > 0)
    if painting == "assr":
        order = ranked[_positions(r[ranked], last_first=True)][: len(ASSR_LEVELS)]
        for level, k in zip(ASSR_LEVELS, order, strict=False):  # most salient first, overwritten
            out[m[k]] = level / 255.0
        return out
    values = _ascending_index(r[ranked]) / len(ranked) if len(ranked) else []
    for k, value in zip(ranked, values, strict=True):  # list order: a later object on top
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


def _sor_variant(variant: str) -> str:
    variant = _SOR_ALIASES.get(variant, variant)
    if variant not in SOR_VARIANTS:
        raise ValueError(f"variant: unknown {variant!r}; expected one of {SOR_VARIANTS} "
                         f"(or {tuple(_SOR_ALIASES)})")
    return variant


def _levels(pred_map, shape) -> np.ndarray:
    """A rank map in [0, 1] as ASSR reads it from its PNG: 8-bit grey levels (int64)."""
    pred = np.asarray(pred_map, dtype=np.float64)
    if pred.shape != shape:
        raise ValueError(f"pred_map has shape {pred.shape}, the masks {shape}")
    if pred.size and (not np.isfinite(pred).all() or pred.min() < 0 or pred.max() > 1):
        raise ValueError("pred_map: values must lie in [0, 1] (divide 8-bit maps by 255)")
    return np.rint(pred * 255.0).astype(np.int64)


def _object_levels(levels: np.ndarray, m: np.ndarray, variant: str, coverage: float) -> np.ndarray:
    values = np.zeros(len(m))
    for k, mask in enumerate(m):
        inside = levels[mask]
        if variant == "assr-ijcv":
            # ASSR: integer sum / pixel count; an empty mask divides by zero -> NaN
            values[k] = inside.sum() / inside.size if inside.size else np.nan
            continue
        nonzero = inside[inside > 0]
        if nonzero.size > int(inside.size * coverage):
            values[k] = stats.mode(nonzero, keepdims=False).mode  # ties: the smallest level
    return values


def object_values(pred_map, gt_masks, variant: str = "assr-cvpr", coverage: float = 0.5) -> np.ndarray:
    """The predicted value in [0, 1] of each GT object read from ``pred_map`` ``(H, W)`` inside its
    mask, ASSR's way (module docstring): ``"assr-cvpr"`` the mode of the non-zero 8-bit levels
    if more than ``coverage`` of the mask is non-zero, else 0; ``"assr-ijcv"`` the mean level.
    Returns float64 ``(K,)`` (level / 255)."""
    variant = _sor_variant(variant)
    m = _masks(gt_masks, "gt_masks")
    return _object_levels(_levels(pred_map, m.shape[1:]), m, variant, coverage) / 255.0


def image_sor(pred_map, gt_masks, gt_ranks, variant: str = "assr-cvpr", *, top_k: int = 5,
              coverage: float = 0.5) -> float:
    """SOR's Spearman rho of one image (module docstring); NaN when the image is not used.

    ``gt_ranks``: 1 = most salient, 0 = not salient; only ranks 1..``top_k`` take part.
    ``pred_map``: predicted rank map in [0, 1], higher = more salient, 0 = background.
    """
    variant = _sor_variant(variant)
    m = _masks(gt_masks, "gt_masks")
    r = _ranks(gt_ranks, len(m), "gt_ranks")
    levels = _levels(pred_map, m.shape[1:])
    keep = (r > 0) & (r <= top_k)
    pred = _object_levels(levels, m[keep], variant, coverage)
    gt = -r[keep].astype(np.float64)  # higher = more salient
    used = pred != 0
    pred, gt = pred[used], gt[used]
    if len(pred) == 1 and variant == "assr-cvpr":
        return 1.0
    if len(pred) < 2 or np.isnan(pred).any() or np.all(pred == pred[0]) or np.all(gt == gt[0]):
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


# ----------------------------------------------------------------------------- SA-SOR


def _objects(x, what: str) -> np.ndarray:
    """Boxes ``(K, 4)`` float64 or masks ``(K, H, W)`` bool."""
    a = np.asarray(x)
    if a.ndim == 3:
        return a.astype(bool)
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim == 1 and a.size == 4:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{what}: expected boxes (K, 4) or masks (K, H, W), got shape {a.shape}")
    return a.astype(np.float64)


def iou_matrix(gt, pred, variant: str = "irsr") -> np.ndarray:
    """IoU ``(G, P)`` of GT and predicted objects, both boxes ``(K, 4)`` (:func:`torchvision.ops.box_iou`)
    or both masks ``(K, H, W)`` (``inter / union``, 0 when both are empty; ``variant="seqrank"``:
    ``inter / (union + 1e-6)`` as SeqRank)."""
    g, p = _objects(gt, "gt"), _objects(pred, "pred")
    if len(g) == 0 or len(p) == 0:
        return np.zeros((len(g), len(p)))
    if g.ndim != p.ndim or (g.ndim == 3 and g.shape[1:] != p.shape[1:]):
        raise ValueError(f"gt {g.shape[1:]} and pred {p.shape[1:]}: both boxes or both masks of one size")
    if g.ndim == 2:
        import torch
        from torchvision.ops import box_iou

        return box_iou(torch.as_tensor(g), torch.as_tensor(p)).numpy()
    gf = g.reshape(len(g), -1).astype(np.int64)
    pf = p.reshape(len(p), -1).astype(np.int64)
    inter = (gf @ pf.T).astype(np.float64)
    union = gf.sum(1)[:, None] + pf.sum(1)[None, :] - inter
    if variant == "seqrank":
        return inter / (union + 1e-6)
    if variant == "irsr":  # IRSR divides float32 pixel counts: the IoU is a float32
        iou = inter.astype(np.float32) / np.maximum(union, 1).astype(np.float32)
        return np.where(union > 0, iou, 0).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def _match(iou: np.ndarray, iou_threshold: float, variant: str) -> np.ndarray:
    """For each GT row the matched prediction column, or -1 (module docstring)."""
    n_gt, n_pred = iou.shape
    match = np.full(n_gt, -1, dtype=np.int64)
    if n_gt == 0 or n_pred == 0:
        return match
    if variant == "seqrank":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(1.0 - iou)
        ok = iou[rows, cols] > iou_threshold
        match[rows[ok]] = cols[ok]
        return match
    if variant == "irsr":
        # IRSR: best = the last column of numpy's default argsort of the row; below the threshold
        # -> missed; a column claimed by several GT goes to the last of their IoUs' argsort
        best = iou.argsort()[:, -1]
        best[iou[np.arange(n_gt), best] < iou_threshold] = -1
        for j in np.unique(best[best >= 0]):
            claimants = np.flatnonzero(best == j)
            if len(claimants) > 1:
                winner = claimants[iou[:, j][claimants].argsort()[-1]]
                best[claimants[claimants != winner]] = -1
        return best
    best = iou.argmax(axis=1)  # salrank: equal IoU -> the first prediction
    best_iou = iou[np.arange(n_gt), best]
    for g in np.lexsort((np.arange(n_gt), -best_iou)):  # highest IoU claims first, then the earlier GT
        if best_iou[g] >= iou_threshold and best[g] not in match:
            match[g] = best[g]
    return match


def match_boxes(pred_boxes, gt_boxes, iou_threshold: float = 0.5, variant: str = "irsr") -> np.ndarray:
    """For each GT object (box or mask) the index of its matched prediction, or -1 (missed), by
    ``variant``'s rule (module docstring)."""
    if variant not in SA_SOR_VARIANTS:
        raise ValueError(f"variant: unknown {variant!r}; expected one of {SA_SOR_VARIANTS}")
    return _match(iou_matrix(gt_boxes, pred_boxes, variant), iou_threshold, variant)


def image_sa_sor(pred_boxes, pred_ranks, gt_boxes, gt_ranks, iou_threshold: float = 0.5,
                 variant: str = "irsr") -> float:
    """SA-SOR of one image (module docstring) from predicted and GT objects (boxes ``(K, 4)``
    pixels or boolean masks ``(K, H, W)``) and their ranks (1 = most salient; rank 0 dropped).

    NaN for an image the variant leaves out of (``"irsr"``, ``"salrank"``) or counts as 0 in
    (``"seqrank"``) the mean: fewer than 2 GT objects, a constant GT vector.
    """
    if variant not in SA_SOR_VARIANTS:
        raise ValueError(f"variant: unknown {variant!r}; expected one of {SA_SOR_VARIANTS}")
    pb, gb = _objects(pred_boxes, "pred_boxes"), _objects(gt_boxes, "gt_boxes")
    pr = np.asarray(pred_ranks, dtype=np.int64).ravel()
    gr = np.asarray(gt_ranks, dtype=np.int64).ravel()
    if len(pr) != len(pb) or len(gr) != len(gb):
        raise ValueError(f"boxes/ranks length mismatch: pred {len(pb)}/{len(pr)}, gt {len(gb)}/{len(gr)}")
    pb, pr = pb[pr > 0], pr[pr > 0]
    gb, gr = gb[gr > 0], gr[gr > 0]
    if len(gb) < 2:
        return float("nan")
    if variant == "seqrank":  # SeqRank's lists run from the most to the least salient object
        gb, gr = gb[_positions(gr)], gr[_positions(gr)]
        pb, pr = pb[_positions(pr)], pr[_positions(pr)]
    match = _match(iou_matrix(gb, pb, variant), iou_threshold, variant)
    hit = match >= 0
    if variant == "irsr":
        gt_idx = _ascending_index(gr)
        # predicted indices over all predictions only when they outnumber the GT objects
        counted = np.arange(len(pr)) if len(pr) > len(gb) else match[hit]
        pred_idx = np.zeros(len(pr), dtype=np.int64)
        pred_idx[counted] = _ascending_index(pr[counted])
    else:  # seqrank, salrank: position in the rank order, equal ranks by index
        gt_idx, pred_idx = _position_index(gr), _position_index(pr)
    matched = np.where(hit, pred_idx[np.maximum(match, 0)], 0) if len(pr) else np.zeros(len(gr), np.int64)
    constant_pred, constant_gt = bool(np.all(matched == matched[0])), bool(np.all(gt_idx == gt_idx[0]))
    if variant == "seqrank" and constant_pred:
        return float("nan")  # np.corrcoef's NaN, counted as 0 by SeqRank's mean
    if constant_pred:
        return 0.0
    if constant_gt:
        return float("nan")
    return float(np.corrcoef(matched, gt_idx)[0, 1])


def mean_sa_sor(images: Sequence[dict], iou_threshold: float = 0.5, variant: str = "irsr") -> dict:
    """Mean SA-SOR over images (dicts with ``pred_boxes``, ``pred_ranks``, ``gt_boxes``,
    ``gt_ranks``; boxes or masks). NaN images are excluded and counted in ``n_excluded``
    (``"irsr"``, ``"salrank"``) or count as 0 and are counted in ``n_zero`` (``"seqrank"``).
    Returns ``{"sa_sor", "n_images", "n_excluded", "n_zero", "variant"}``."""
    values = np.array([
        image_sa_sor(im["pred_boxes"], im["pred_ranks"], im["gt_boxes"], im["gt_ranks"], iou_threshold, variant)
        for im in images
    ], dtype=np.float64)
    nan = np.isnan(values)
    if variant == "seqrank":
        mean = float(np.where(nan, 0.0, values).mean()) if values.size else float("nan")
        excluded, zero = 0, int(nan.sum())
    else:
        mean = float(values[~nan].mean()) if (~nan).any() else float("nan")
        excluded, zero = int(nan.sum()), 0
    return {"sa_sor": mean, "n_images": int(values.size), "n_excluded": excluded, "n_zero": zero,
            "variant": variant}
