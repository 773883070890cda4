"""Evaluate a FOSRNet on a prepared split under a named protocol (:data:`PROTOCOLS`; the book's
``book/conventions.md``, conv-protocols).

``"official"``: the authors' unit (:mod:`salrank.metrics.official`). Each image's group of its
first 5 proposals is one sequence; the head's (5, 5) logits give classes by the Hungarian
assignment on ``exp(-logits)``; GT classes come from the RA-SRGT scores by the authors' rule
(ties: the lower index is the less salient); SRCC, PLCC, RMSE, macro F1 and
``acc_first``/``acc_second``/``acc_third`` are averaged over groups, a NaN counting 0. Images
with fewer than 5 proposals are left out and counted (``n_images_short``).

``"acb"``: salrank's extension over all n proposals. The model's final ACB ranks
(1 = most salient .. n) become values ``n - rank``; the GT keeps eq. 5's ties: a proposal of
RA-SRGT rank r > 0 gets ``n - r``, every proposal without fixations (rank 0) gets 0. Images whose
GT is constant (e.g. no fixation in any box) are left out of SRCC/PLCC and counted
(``n_constant_gt``); :func:`salrank.metrics.ranking.evaluate` gives SRCC, macro F1, PLCC, RMSE
and top-1/2/3 accuracy. When the split has reference boxes, box-level SA-SOR
(:func:`salrank.metrics.ranking.mean_sa_sor`) compares the ranked proposals with the reference
objects ranked by RA-SRGT.

Every result dict carries ``"protocol"``. ``book/conventions.md`` ("Conventions and
interpretation") explains both.
"""

from __future__ import annotations

import numpy as np
import torch

from salrank.gt import ranks_from_scores
from salrank.metrics.official import OFFICIAL_GROUP, official_from_classes, official_gt_classes
from salrank.metrics.ranking import evaluate, mean_sa_sor

__all__ = [
    "headline_metrics","PROTOCOLS", "evaluate_model", "evaluate_ranks", "gt_values", "official_groups", "official_logits",
           "pred_values", "protocol_metrics"]

PROTOCOLS = ("official", "acb")
"""Evaluation protocols: the authors' 5-proposal groups, or salrank's ACB over all proposals."""


def _check_protocol(protocol: str, nan_policy: str | None) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: unknown {protocol!r}; expected one of {PROTOCOLS}")
    if protocol == "official":
        if nan_policy not in (None, "zero"):
            raise ValueError(f"protocol 'official' has its own NaN rule (NaN -> 0, counted); got nan_policy={nan_policy!r}")
        return "zero"
    return nan_policy or "exclude"


def protocol_metrics(metrics: dict, protocol: str) -> dict:
    """The flat metrics of ``protocol`` from a result holding both, one at the top level (its
    ``metrics["protocol"]``) and the other nested under its name, as :func:`headline_metrics` and
    :func:`salrank.analysis.experiments.run_experiment` store them. ``KeyError`` if absent."""
    _check_protocol(protocol, None)
    if metrics.get("protocol") == protocol:
        return {k: v for k, v in metrics.items() if k not in PROTOCOLS}
    nested = metrics.get(protocol)
    if not isinstance(nested, dict) or nested.get("protocol") != protocol:
        raise KeyError(f"these metrics hold no {protocol!r} protocol results (have: {metrics.get('protocol')!r})")
    return dict(nested)


def headline_metrics(acb: dict, official: dict | None) -> dict:
    """The metrics a page puts beside the paper's: the ``official`` protocol's when they were
    computed (flat, ``protocol == "official"``) with the ``acb`` ones under ``"acb"``; else the
    ``acb`` ones. :func:`protocol_metrics` takes either protocol back out."""
    return acb if official is None else {**official, "acb": acb}


def gt_values(scores) -> np.ndarray:
    """``acb`` GT values of one image's proposals from their RA-SRGT scores: ``n - rank`` for
    eq. 5 rank > 0 (n - 1 = most salient), 0 for every proposal without fixations (ties kept)."""
    s = np.asarray(scores, np.float64)
    if not len(s):
        return np.zeros(0, np.int64)
    r = ranks_from_scores(s)
    return np.where(r > 0, len(s) - r, 0).astype(np.int64)


def pred_values(ranks) -> np.ndarray:
    """Predicted values 0..n-1 from final ranks 1..n (1 = most salient -> n-1)."""
    r = np.asarray(ranks, np.int64)
    return len(r) - r


def official_groups(split, k: int = OFFICIAL_GROUP) -> np.ndarray:
    """Indices of the images of ``split`` with at least ``k`` proposals (the official unit)."""
    counts = np.asarray([len(s) for s in split.gt_scores], np.int64)
    return np.flatnonzero(counts >= k)


def _official_from_ranks(pred_ranks, split) -> dict:
    keep = official_groups(split)
    pred = np.empty((len(keep), OFFICIAL_GROUP), np.int64)
    for row, i in enumerate(keep):
        # the first 5 proposals' order under the predicted ranks -> classes 0 (least) .. 4 (most)
        r = np.asarray(pred_ranks[i], np.float64)[:OFFICIAL_GROUP]
        pred[row] = np.argsort(np.argsort(-r, kind="stable"), kind="stable")
    gt = official_gt_classes(np.stack([np.asarray(split.gt_scores[i], np.float64)[:OFFICIAL_GROUP] for i in keep])
                             if len(keep) else np.zeros((0, OFFICIAL_GROUP)))
    out = official_from_classes(pred, gt)
    out["n_images_short"] = len(split) - len(keep)
    return out


def evaluate_ranks(pred_ranks, split, nan_policy: str | None = None, iou_threshold: float = 0.5,
                   protocol: str = "acb") -> dict:
    """Metrics of per-image predicted ranks (1 = most salient) against a
    :class:`~salrank.fosrnet.data.RankingSplit` under ``protocol`` (see module doc).

    ``official`` here orders each image's first 5 proposals by their predicted ranks (a model's
    own official evaluation uses its logits: :func:`evaluate_model`). ``nan_policy``: ``acb``
    only (default ``"exclude"``).
    """
    nan_policy = _check_protocol(protocol, nan_policy)
    if len(pred_ranks) != len(split):
        raise ValueError(f"{len(pred_ranks)} predictions for {len(split)} images")
    if protocol == "official":
        return _official_from_ranks(pred_ranks, split)
    preds = [pred_values(r) for r in pred_ranks]
    gts = [gt_values(s) for s in split.gt_scores]
    out = evaluate(preds, gts, nan_policy=nan_policy)
    out["protocol"] = "acb"
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


@torch.no_grad()
def official_logits(model, split, max_sequences: int | None = 8192) -> tuple[np.ndarray, np.ndarray]:
    """The head's outputs on each image's group of its first 5 proposals: ``(G, 5, C)`` logits (or
    ``(G, 5)`` scores for a score head) and the indices of those images in ``split``."""
    keep = official_groups(split, model.config.k)
    images = split.images()
    groups = [{key: np.asarray(v)[: model.config.k] for key, v in images[i].items() if key != "mask"} for i in keep]
    chunks = []
    was_training = model.training
    model.eval()
    try:
        step = max_sequences or max(len(groups), 1)
        for s in range(0, len(groups), step):
            part = groups[s : s + step]
            feats = {key: np.stack([g[key] for g in part]) for key in part[0]}
            chunks.append(model(feats).detach().cpu().numpy().astype(np.float64))
    finally:
        model.train(was_training)
    shape = (0, model.config.k) + ((model.config.num_classes,) if model.output_kind == "classes" else ())
    return (np.concatenate(chunks) if chunks else np.zeros(shape)), keep


def evaluate_model(model, split, nan_policy: str | None = None, max_sequences: int | None = 8192,
                   protocol: str = "acb") -> dict:
    """Evaluate ``model`` on ``split`` under ``protocol`` (see module doc).

    ``official``: the head on each image's first 5 proposals, then
    :func:`salrank.metrics.official_protocol` (a score head's groups are ordered by score);
    ``acb``: :meth:`FOSRNet.predict_ranks` on every image, then :func:`evaluate_ranks`.
    """
    nan_policy = _check_protocol(protocol, nan_policy)
    if protocol == "acb":
        ranks = model.predict_ranks(split.images(), max_sequences=max_sequences) if len(split) else []
        return evaluate_ranks(ranks, split, nan_policy, protocol="acb")
    from salrank.fosrnet.ecs import score_positions
    from salrank.metrics.official import official_pred_classes

    out_k = model.config.k
    if out_k != OFFICIAL_GROUP:
        raise ValueError(f"protocol 'official' needs k = {OFFICIAL_GROUP}, the model has k = {out_k}")
    outputs, keep = official_logits(model, split, max_sequences)
    pred = score_positions(outputs) if outputs.ndim == 2 else official_pred_classes(outputs)
    gt = official_gt_classes(np.stack([np.asarray(split.gt_scores[i], np.float64)[:OFFICIAL_GROUP] for i in keep])
                             if len(keep) else np.zeros((0, OFFICIAL_GROUP)))
    out = official_from_classes(pred, gt)
    out["n_images_short"] = len(split) - len(keep)
    return out
