"""Saliency-ranking metrics: the paper's per-image protocol (Sec. IV-A; ``book/conventions.md``). SA-SOR, the peers'
metric, is in :mod:`salrank.metrics.peers`.

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


# SA-SOR (boxes or masks, the IRSR, SeqRank and salrank variants) lives in salrank.metrics.peers;
# these names stay importable from here for older code.
from salrank.metrics.peers import image_sa_sor, match_boxes, mean_sa_sor  # noqa: E402,F401
