"""The authors' evaluation protocol (``official``): groups of 5 proposals, 5 rank classes.

The released evaluation scores each image's group of its first 5 proposals as one unit:

* GT classes from the RA-SRGT scores by the authors' labelling rule: the position of each
  proposal in ``sorted((score, index))`` (ascending), ``0`` = least ... ``4`` = most salient;
  equal scores (mostly proposals without fixations) put the lower index below, so the GT of a
  group is always a permutation (:func:`salrank.gt.class_labels` with ``ties="official"``);
* predicted classes by a Hungarian assignment on the cost ``exp(-logits)`` (rows = proposals,
  columns = classes; :func:`salrank.fosrnet.ecs.exclusive_classes_batched`);
* per group: Spearman's rho and Pearson's r (:mod:`scipy.stats`) of the predicted against the GT
  classes, RMSE, macro F1 over the classes present on either side, and ``acc_first``,
  ``acc_second``, ``acc_third``: whether the proposal with the highest (second, third highest)
  GT class got exactly that class;
* a group whose SRCC or PLCC is NaN counts 0 for both and stays in every mean (the denominator
  is always the number of groups). With 5 distinct classes on both sides this cannot happen;
  it can for other inputs to :func:`official_from_classes`.

The book page ``book/conventions.md`` ("Conventions and interpretation") sets this protocol
beside salrank's ``acb`` protocol (all n proposals, eq. 5 ties kept).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from salrank.gt.ranking import class_labels
from salrank.metrics.ranking import image_f1, image_topk_accuracy

__all__ = [
    "OFFICIAL_GROUP",
    "official_from_classes",
    "official_gt_classes",
    "official_group_metrics",
    "official_pred_classes",
    "official_protocol",
]

OFFICIAL_GROUP = 5
"""Proposals per evaluation group (and rank classes) in the authors' protocol."""

_METRICS = ("srcc", "plcc", "rmse", "f1", "acc_first", "acc_second", "acc_third")


def _array(x, name: str, ndim: int) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf")
    return a


def official_gt_classes(gt_scores) -> np.ndarray:
    """GT classes ``(G, k)`` int64 of groups of RA-SRGT scores ``(G, k)`` (higher = more salient):
    position in ``sorted((score, index))``, 0 = least salient; ties: lower index less salient."""
    s = _array(gt_scores, "gt_scores", 2)
    out = np.empty(s.shape, dtype=np.int64)
    for g, row in enumerate(s):
        out[g] = class_labels(row, group_size=None, ties="official")
    return out


def official_pred_classes(logits) -> np.ndarray:
    """Predicted classes ``(G, k)`` int64 from logits ``(G, k, C)`` (C >= k): the minimum-cost
    assignment of distinct classes under the cost ``exp(-logits)``, by
    :func:`scipy.optimize.linear_sum_assignment` on each group."""
    from salrank.fosrnet.ecs import exclusive_classes_batched

    x = _array(logits, "logits", 3)
    return exclusive_classes_batched(x, cost="exp-neg-logit", method="scipy")


def official_group_metrics(pred_classes, gt_classes) -> pd.DataFrame:
    """One row per group: srcc, plcc, rmse, f1, acc_first, acc_second, acc_third, nan.

    ``pred_classes``, ``gt_classes``: ``(G, k)`` classes (higher = more salient). ``nan`` is True
    where SRCC or PLCC was undefined; both are then 0 (the authors' rule). ``acc_*`` of a group
    with fewer than 1 (2, 3) proposals is NaN.
    """
    p = _array(pred_classes, "pred_classes", 2)
    g = _array(gt_classes, "gt_classes", 2)
    if p.shape != g.shape:
        raise ValueError(f"pred_classes {p.shape} and gt_classes {g.shape} differ in shape")
    rows = []
    for pi, gi in zip(p, g, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN
            srcc = float(stats.spearmanr(pi, gi)[0]) if len(pi) > 1 else float("nan")
            plcc = float(stats.pearsonr(pi, gi)[0]) if len(pi) > 1 else float("nan")
        nan = bool(np.isnan(srcc) or np.isnan(plcc))
        if nan:
            srcc = plcc = 0.0
        rows.append({
            "srcc": srcc,
            "plcc": plcc,
            "rmse": float(np.sqrt(np.mean((pi - gi) ** 2))) if len(pi) else float("nan"),
            "f1": image_f1(pi, gi),
            "acc_first": image_topk_accuracy(pi, gi, 1),
            "acc_second": image_topk_accuracy(pi, gi, 2),
            "acc_third": image_topk_accuracy(pi, gi, 3),
            "nan": nan,
        })
    return pd.DataFrame(rows, columns=[*_METRICS, "nan"])


def official_from_classes(pred_classes, gt_classes) -> dict:
    """Means over groups of :func:`official_group_metrics`: srcc, plcc, rmse, f1, acc_first,
    acc_second, acc_third; ``n_groups``; ``n_nan_groups`` (counted as 0, kept in the means);
    ``protocol`` = ``"official"``."""
    df = official_group_metrics(pred_classes, gt_classes)
    out: dict = {name: float(df[name].mean()) if len(df) else float("nan") for name in _METRICS}
    out["n_groups"] = len(df)
    out["n_nan_groups"] = int(df["nan"].sum()) if len(df) else 0
    out["protocol"] = "official"
    return out


def official_protocol(logits, gt_scores) -> dict:
    """The authors' evaluation of G groups (see module doc).

    ``logits``: ``(G, 5, 5)`` head outputs (rows = the group's proposals, columns = classes
    0 = least ... 4 = most salient); ``gt_scores``: ``(G, 5)`` RA-SRGT scores of the same
    proposals. Returns the dict of :func:`official_from_classes`.

    >>> import numpy as np
    >>> logits = np.eye(5)[None] * 10.0          # proposal i is sure of class i
    >>> out = official_protocol(logits, [[0.0, 0.1, 0.2, 0.3, 0.4]])
    >>> round(out["srcc"], 9), out["f1"], out["acc_first"], out["n_groups"]
    (1.0, 1.0, 1.0, 1)
    """
    x = _array(logits, "logits", 3)
    s = _array(gt_scores, "gt_scores", 2)
    if x.shape[:2] != s.shape:
        raise ValueError(f"logits {x.shape} and gt_scores {s.shape}: need (G, k, C) and (G, k)")
    return official_from_classes(official_pred_classes(x), official_gt_classes(s))
