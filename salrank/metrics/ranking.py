"""Saliency-ranking metrics: the paper's per-image protocol (Sec. IV-A; ``book/conventions.md``)
and a box-level SA-SOR for comparison with peers.

Per-image metrics compare predicted and GT *saliency values* of the same objects, where a
higher value = more salient (e.g. rank classes 0 = least ... k-1 = most salient, as the
official code does). To compare ranks (1 = most salient, 0 = not salient) convert them with
:func:`ranks_to_scores` first.

* SRCC: :func:`scipy.stats.spearmanr`; NaN when either side is constant or < 2 objects.
* PLCC: :func:`scipy.stats.pearsonr`, same NaN rule.
* RMSE: ``sqrt(mean((pred - gt)^2))``.
* F1: macro F1 over the classes occurring in pred or GT (numpy; equals scikit-learn's
  ``f1_score(average="macro")``, which is symmetric in its two arguments).
* top-j accuracy (j = 1, 2, 3): the official code's definition: take the object with the j-th
  highest GT value (ties: lower index first); correct if its predicted class equals its GT
  class. NaN for images with fewer than j objects.

Dataset means (:func:`evaluate`), ``nan_policy``:

* ``"exclude"`` (project default): images whose GT is constant (SRCC/PLCC undefined) are left
  out of the SRCC and PLCC means and counted in ``n_constant_gt``; a NaN from a constant
  *prediction* against a non-constant GT counts as 0 (no correlation, not a free pass).
  Other metrics average over all images where they are defined.
* ``"zero"`` (official ``test.py``): every NaN SRCC/PLCC counts as 0 and all images are in
  the denominator.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

NAN_POLICIES = ("exclude", "zero")


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred.detach().cpu() if hasattr(pred, "detach") else pred, dtype=np.float64).ravel()
    g = np.asarray(gt.detach().cpu() if hasattr(gt, "detach") else gt, dtype=np.float64).ravel()
    if p.shape != g.shape:
        raise ValueError(f"pred ({p.size} objects) and gt ({g.size} objects) differ in length")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(g))):
        raise ValueError("pred/gt: contain NaN or inf")
    return p, g


def _is_constant(x: np.ndarray) -> bool:
    return x.size < 2 or bool(np.all(x == x[0]))


def ranks_to_scores(ranks) -> np.ndarray:
    """Ranks (1 = most salient, 0 = not salient) -> values where higher = more salient.

    Rank r > 0 becomes ``max_rank + 1 - r``; rank 0 becomes 0.
    """
    r = np.asarray(ranks, dtype=np.int64).ravel()
    if (r < 0).any():
        raise ValueError("ranks: must be >= 0")
    top = r.max(initial=0)
    return np.where(r > 0, top + 1 - r, 0)


def image_srcc(pred, gt) -> float:
    """Spearman's rho of one image; NaN when pred or GT is constant (or < 2 objects)."""
    p, g = _pair(pred, gt)
    if _is_constant(p) or _is_constant(g):
        return float("nan")
    return float(stats.spearmanr(p, g)[0])


def image_plcc(pred, gt) -> float:
    """Pearson's r of one image; NaN when pred or GT is constant (or < 2 objects)."""
    p, g = _pair(pred, gt)
    if _is_constant(p) or _is_constant(g):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.pearsonr(p, g)[0])


def image_rmse(pred, gt) -> float:
    """Root-mean-square difference of one image's values; NaN for an empty image."""
    p, g = _pair(pred, gt)
    return float(np.sqrt(np.mean((p - g) ** 2))) if p.size else float("nan")


def image_f1(pred, gt) -> float:
    """Macro F1 over the classes present in pred or GT: mean of ``2TP / (2TP + FP + FN)``."""
    p, g = _pair(pred, gt)
    if p.size == 0:
        return float("nan")
    classes = np.union1d(p, g)
    pc = p[None, :] == classes[:, None]
    gc = g[None, :] == classes[:, None]
    tp = (pc & gc).sum(axis=1)
    fp = (pc & ~gc).sum(axis=1)
    fn = (~pc & gc).sum(axis=1)
    return float(np.mean(2.0 * tp / (2.0 * tp + fp + fn)))


def image_topk_accuracy(pred, gt, j: int) -> float:
    """1.0 if the object with the j-th highest GT value (ties: lower index) has its GT class predicted."""
    p, g = _pair(pred, gt)
    if j < 1:
        raise ValueError(f"j: must be >= 1, got {j}")
    if p.size < j:
        return float("nan")
    idx = np.lexsort((np.arange(g.size), -g))[j - 1]
    return float(p[idx] == g[idx])


def per_image_metrics(preds: Sequence, gts: Sequence) -> pd.DataFrame:
    """One row per image: srcc, plcc, rmse, f1, acc_top1..3, n_objects, constant_gt."""
    if len(preds) != len(gts):
        raise ValueError(f"preds ({len(preds)} images) and gts ({len(gts)} images) differ in length")
    rows = []
    for i, (p, g) in enumerate(zip(preds, gts, strict=True)):
        try:
            pp, gg = _pair(p, g)
        except ValueError as err:
            raise ValueError(f"image {i}: {err}") from None
        rows.append({
            "srcc": image_srcc(pp, gg),
            "plcc": image_plcc(pp, gg),
            "rmse": image_rmse(pp, gg),
            "f1": image_f1(pp, gg),
            "acc_top1": image_topk_accuracy(pp, gg, 1),
            "acc_top2": image_topk_accuracy(pp, gg, 2),
            "acc_top3": image_topk_accuracy(pp, gg, 3),
            "n_objects": pp.size,
            "constant_gt": _is_constant(gg),
        })
    columns = ["srcc", "plcc", "rmse", "f1", "acc_top1", "acc_top2", "acc_top3", "n_objects", "constant_gt"]
    return pd.DataFrame(rows, columns=columns)


def evaluate(preds: Sequence, gts: Sequence, nan_policy: str = "exclude") -> dict:
    """Dataset means of the per-image metrics under ``nan_policy`` (see module doc).

    Returns a dict: srcc, plcc, rmse, f1, acc_top1, acc_top2, acc_top3 (means), n_images,
    n_constant_gt, n_used_correlation (images in the SRCC/PLCC means), nan_policy.
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy: unknown {nan_policy!r}; expected one of {NAN_POLICIES}")
    df = per_image_metrics(preds, gts)
    out: dict = {}
    corr = df[["srcc", "plcc"]].copy()
    if nan_policy == "zero":
        corr = corr.fillna(0.0)
    else:
        corr = corr[~df["constant_gt"].astype(bool)].fillna(0.0)
    for name in ("srcc", "plcc"):
        out[name] = float(corr[name].mean()) if len(corr) else float("nan")
    for name in ("rmse", "f1", "acc_top1", "acc_top2", "acc_top3"):
        col = df[name].dropna()
        out[name] = float(col.mean()) if len(col) else float("nan")
    out["n_images"] = len(df)
    out["n_constant_gt"] = int(df["constant_gt"].sum()) if len(df) else 0
    out["n_used_correlation"] = len(corr)
    out["nan_policy"] = nan_policy
    return out


# ----------------------------------------------------------------------------- SA-SOR (boxes)


def _ascending_index(ranks: np.ndarray) -> np.ndarray:
    """Ranks (1 = most salient) -> ascending indices 1..n (1 = least salient; ties: lower index first)."""
    order = np.lexsort((np.arange(ranks.size), ranks))[::-1]  # least salient first
    idx = np.empty(ranks.size, dtype=np.int64)
    idx[order] = np.arange(1, ranks.size + 1)
    return idx


def match_boxes(pred_boxes, gt_boxes, iou_threshold: float = 0.5) -> np.ndarray:
    """For each GT box the index of its matched predicted box, or -1 (missed).

    IRSR's rule: every GT takes its best-IoU prediction; missed if that IoU < ``iou_threshold``;
    when several GT take the same prediction the one with the higher IoU keeps it (ties: lower GT
    index) and the others are missed (they do not fall back to their second choice).
    Boxes ``[x1, y1, x2, y2]`` in pixels; IoU by :func:`torchvision.ops.box_iou`.
    """
    import torch
    from torchvision.ops import box_iou

    pb = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    gb = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    match = np.full(len(gb), -1, dtype=np.int64)
    if len(pb) == 0 or len(gb) == 0:
        return match
    iou = box_iou(torch.as_tensor(gb), torch.as_tensor(pb)).numpy()  # (G, P)
    best = iou.argmax(axis=1)
    best_iou = iou[np.arange(len(gb)), best]
    for g in np.lexsort((np.arange(len(gb)), -best_iou)):  # highest IoU claims first
        if best_iou[g] >= iou_threshold and best[g] not in match:
            match[g] = best[g]
    return match


def image_sa_sor(pred_boxes, pred_ranks, gt_boxes, gt_ranks, iou_threshold: float = 0.5) -> float:
    """Box-level SA-SOR of one image (IRSR's definition with boxes in place of masks).

    ``pred_ranks``/``gt_ranks``: 1 = most salient; objects with rank 0 (not salient) are dropped
    first. GT ranks -> ascending indices (1 = least salient); predicted ranks -> ascending indices
    over ALL kept predictions (false positives shift them); each GT takes its matched prediction's
    index (:func:`match_boxes`) or 0 if missed; score = Pearson correlation of the two vectors;
    0 when the predicted vector is constant; NaN (excluded from the mean) for < 2 GT objects.
    """
    pb = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    gb = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    pr = np.asarray(pred_ranks, dtype=np.int64).ravel()
    gr = np.asarray(gt_ranks, dtype=np.int64).ravel()
    if len(pr) != len(pb) or len(gr) != len(gb):
        raise ValueError(f"boxes/ranks length mismatch: pred {len(pb)}/{len(pr)}, gt {len(gb)}/{len(gr)}")
    pb, pr = pb[pr > 0], pr[pr > 0]
    gb, gr = gb[gr > 0], gr[gr > 0]
    if len(gb) < 2:
        return float("nan")
    gt_idx = _ascending_index(gr)
    pred_idx = _ascending_index(pr) if len(pr) else np.zeros(0, dtype=np.int64)
    match = match_boxes(pb, gb, iou_threshold)
    matched_idx = np.where(match >= 0, pred_idx[np.maximum(match, 0)] if len(pr) else 0, 0)
    if _is_constant(matched_idx.astype(np.float64)):
        return 0.0
    return float(np.corrcoef(matched_idx, gt_idx)[0, 1])


def mean_sa_sor(images: Sequence[dict], iou_threshold: float = 0.5) -> dict:
    """Mean box-level SA-SOR over images (dicts with pred_boxes, pred_ranks, gt_boxes, gt_ranks).

    NaN images (fewer than 2 GT objects) are excluded and counted. Returns
    ``{"sa_sor", "n_images", "n_excluded"}``.
    """
    values = np.array([
        image_sa_sor(im["pred_boxes"], im["pred_ranks"], im["gt_boxes"], im["gt_ranks"], iou_threshold)
        for im in images
    ], dtype=np.float64)
    ok = ~np.isnan(values)
    return {
        "sa_sor": float(values[ok].mean()) if ok.any() else float("nan"),
        "n_images": int(values.size),
        "n_excluded": int((~ok).sum()),
    }
