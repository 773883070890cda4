"""Evaluate a FOSRNet on a prepared split (protocols: ``book/conventions.md``).

Per image, the model's final ACB ranks of the n proposals (1 = most salient .. n) are compared
with the RA-SRGT order of the same proposals. Both sides become values 0..n-1 (higher = more
salient), the official code's class convention: predicted ``n - rank``; GT
:func:`salrank.gt.class_labels` of the RA-SRGT scores with ``group_size=None`` (position in
ascending saliency, ties by the lower index, so proposals without fixations are ordered by
detector score). :func:`salrank.metrics.ranking.evaluate` then gives SRCC, macro F1, PLCC, RMSE and
top-1/2/3 accuracy under ``nan_policy``. When the split has reference boxes, box-level SA-SOR
(:func:`salrank.metrics.ranking.mean_sa_sor`) compares the ranked proposals with the reference objects
ranked by RA-SRGT.
"""

from __future__ import annotations

import numpy as np

from salrank.gt import class_labels
from salrank.metrics.ranking import evaluate, mean_sa_sor

__all__ = ["gt_values", "pred_values", "evaluate_model", "evaluate_ranks"]


def gt_values(scores) -> np.ndarray:
    """GT values 0..n-1 (n-1 = most salient) of one image's proposals from their RA-SRGT scores."""
    s = np.asarray(scores, np.float64)
    return class_labels(s, group_size=None) if len(s) else np.zeros(0, np.int64)


def pred_values(ranks) -> np.ndarray:
    """Predicted values 0..n-1 from final ranks 1..n (1 = most salient -> n-1)."""
    r = np.asarray(ranks, np.int64)
    return len(r) - r


def evaluate_ranks(pred_ranks, split, nan_policy: str = "exclude", iou_threshold: float = 0.5) -> dict:
    """Metrics of per-image predicted ranks against a :class:`~salrank.fosrnet.data.RankingSplit`."""
    if len(pred_ranks) != len(split):
        raise ValueError(f"{len(pred_ranks)} predictions for {len(split)} images")
    preds = [pred_values(r) for r in pred_ranks]
    gts = [gt_values(s) for s in split.gt_scores]
    out = evaluate(preds, gts, nan_policy=nan_policy)
    if split.ref_boxes is not None:
        images = [
            {"pred_boxes": split.features.image(i)["boxes"], "pred_ranks": r,
             "gt_boxes": split.ref_boxes[i], "gt_ranks": split.ref_ranks[i]}
            for i, r in enumerate(pred_ranks)
        ]
        sor = mean_sa_sor(images, iou_threshold)
        out["sa_sor"] = sor["sa_sor"]
        out["sa_sor_n_excluded"] = sor["n_excluded"]
    return out


def evaluate_model(model, split, nan_policy: str = "exclude", max_sequences: int | None = 8192) -> dict:
    """:meth:`FOSRNet.predict_ranks` on every image of ``split``, then :func:`evaluate_ranks`."""
    ranks = model.predict_ranks(split.images(), max_sequences=max_sequences) if len(split) else []
    return evaluate_ranks(ranks, split, nan_policy)
