"""FOSRNet training losses (paper eq. 11) and per-sequence class targets.

``L = CE + alpha * L_rank`` where ``L_rank`` is PyTorch's MarginRanking loss (margin ``m``,
default 0 as in the paper) over all ordered pairs (i, j) of valid proposals of a sequence
with different target classes: ``max(0, -z * (s_i - s_j) + m)``, ``z = sign(t_i - t_j)``. The
scalar score ``s`` of a proposal is its expected class under the softmax, ``sum_c c * p_c``.

``alpha`` is not given in the paper; the project default is ``DEFAULT_ALPHA = 1.0`` (equal
weight of both terms), an assumption to revisit with the validation set.

Target classes (official label convention): within a sequence, position in ascending order of
GT saliency score, 0 = least salient ... k - 1 = most salient; dummy slots get ``ignore_index``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_ALPHA = 1.0
IGNORE_INDEX = -100


def sequence_class_targets(gt_scores, mask=None, dummies_least_salient: bool = True,
                           ignore_index: int = IGNORE_INDEX, tie_key=None, ties: str = "rank") -> Tensor:
    """Class targets of sequences from GT saliency scores.

    ``gt_scores`` (B, k) (higher = more salient, e.g. RA-SRGT scores; any real values), ``mask``
    (B, k) bool True = dummy. Valid proposals get their position in ascending score order.
    Equal scores are ordered by ``tie_key`` (B, k) integers, e.g. each slot's proposal index in
    its image (default: the slot index). Pass the image-wide index so that a pair of tied
    proposals gets the same order in every sequence it appears in (ACB sequences wrap around and
    reverse slot order). ``ties`` (:data:`salrank.gt.ranking.TIE_RULES`): ``"rank"`` = the lower
    key is the more salient (as for GT ranks), ``"official"`` = the lower key is the less salient
    (the authors' labels, ``sorted((score, index))``).
    With m valid proposals, ``dummies_least_salient=True`` (default) gives them classes
    k-m .. k-1 (dummy nodes are empty objects, below every real one, whose classes 0..k-m-1 are
    not trained: ignore_index); ``False`` gives 0 .. m-1. Returns (B, k) int64 tensor.
    """
    from salrank.gt.ranking import TIE_RULES

    if ties not in TIE_RULES:
        raise ValueError(f"ties: unknown {ties!r}; expected one of {TIE_RULES}")
    s = torch.as_tensor(np.asarray(gt_scores) if not isinstance(gt_scores, Tensor) else gt_scores)
    s = s.to(torch.float64)
    if s.ndim != 2:
        raise ValueError(f"gt_scores: expected (B, k), got {tuple(s.shape)}")
    b, k = s.shape
    m = torch.zeros(b, k, dtype=torch.bool) if mask is None else torch.as_tensor(mask, dtype=torch.bool).cpu()
    if m.shape != s.shape:
        raise ValueError(f"mask: expected {tuple(s.shape)}, got {tuple(m.shape)}")
    if tie_key is None:
        key = torch.arange(k).expand(b, k)
    else:
        key = torch.as_tensor(np.asarray(tie_key) if not isinstance(tie_key, Tensor) else tie_key).cpu()
        if key.shape != s.shape:
            raise ValueError(f"tie_key: expected {tuple(s.shape)}, got {tuple(key.shape)}")
        key = key.to(torch.int64)
    s = s.cpu()
    if not torch.isfinite(s[~m]).all():
        raise ValueError("gt_scores: valid entries contain NaN or inf")
    # Descending saliency order, dummies last: sort by tie key first (stable), then by -score.
    key = key if ties == "rank" else -key
    by_key = torch.sort(key, dim=1, stable=True).indices
    primary = torch.where(m, torch.full_like(s, float("inf")), -s).gather(1, by_key)
    order = by_key.gather(1, torch.sort(primary, dim=1, stable=True).indices)
    pos = torch.empty_like(order)
    pos.scatter_(1, order, torch.arange(k).expand(b, k).contiguous())
    n_valid = (~m).sum(dim=1, keepdim=True)
    cls = n_valid - 1 - pos
    if dummies_least_salient:
        cls = cls + (k - n_valid)
    return torch.where(m, torch.full_like(cls, ignore_index), cls)


def expected_class(logits: Tensor) -> Tensor:
    """Scalar score per proposal: the expected class ``sum_c c * softmax(logits)_c``. (..., C) -> (...)."""
    classes = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return logits.softmax(dim=-1) @ classes


def pairwise_margin_ranking(scores: Tensor, targets: Tensor, valid: Tensor, margin: float = 0.0) -> Tensor:
    """Mean MarginRanking loss over ordered pairs of valid slots with different targets, per batch.

    ``scores`` (B, k), ``targets`` (B, k) (higher = more salient), ``valid`` (B, k) bool.
    Returns a scalar (zero, still attached to the graph, when there is no such pair).
    """
    diff = scores[:, :, None] - scores[:, None, :]  # s_i - s_j
    t = targets.to(scores.dtype)
    z = torch.sign(t[:, :, None] - t[:, None, :])
    pair = valid[:, :, None] & valid[:, None, :] & (z != 0)
    if not pair.any():
        return scores.sum() * 0.0
    return F.margin_ranking_loss(
        diff[pair], torch.zeros_like(diff[pair]), z[pair], margin=margin, reduction="mean"
    )


def _valid(targets: Tensor, mask: Tensor | None, ignore_index: int) -> Tensor:
    valid = targets != ignore_index
    if mask is not None:
        if mask.shape != targets.shape:
            raise ValueError(f"mask: expected {tuple(targets.shape)}, got {tuple(mask.shape)}")
        valid = valid & ~mask.to(torch.bool)
    return valid


def fosrnet_loss_terms(logits: Tensor, target_classes: Tensor, mask: Tensor | None = None,
                       alpha: float = DEFAULT_ALPHA, margin: float = 0.0,
                       ignore_index: int = IGNORE_INDEX) -> dict[str, Tensor]:
    """The parts of :func:`fosrnet_loss`: ``{"ce", "rank", "total"}`` (scalars)."""
    if logits.ndim != 3 or target_classes.shape != logits.shape[:2]:
        raise ValueError(f"logits (B, k, C) {tuple(logits.shape)} and targets (B, k) "
                         f"{tuple(target_classes.shape)} do not match")
    targets = target_classes.to(torch.long)
    valid = _valid(targets, mask, ignore_index)
    safe = torch.where(valid, targets, torch.full_like(targets, ignore_index))
    if valid.any():
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), safe.reshape(-1), ignore_index=ignore_index)
    else:
        ce = logits.sum() * 0.0
    rank = pairwise_margin_ranking(expected_class(logits), targets, valid, margin)
    return {"ce": ce, "rank": rank, "total": ce + alpha * rank}


def fosrnet_loss(logits: Tensor, target_classes: Tensor, mask: Tensor | None = None,
                 alpha: float = DEFAULT_ALPHA, margin: float = 0.0, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """``CE + alpha * MarginRanking`` (eq. 11) for (B, k, C) logits and (B, k) class targets.

    CE is the mean over valid slots; the ranking term is the mean over valid ordered pairs with
    different targets, using the expected class as score. ``mask`` (B, k) True = dummy; target
    ``ignore_index`` also marks slots to skip.
    """
    return fosrnet_loss_terms(logits, target_classes, mask, alpha, margin, ignore_index)["total"]


def regression_loss(scores: Tensor, targets: Tensor, mask: Tensor | None = None,
                    alpha: float = DEFAULT_ALPHA, margin: float = 0.0) -> Tensor:
    """Loss of the ``reg`` head: MSE(scores, targets) + alpha * MarginRanking on the raw scores.

    ``scores``, ``targets`` (B, k) floats (targets e.g. class / (k - 1) or normalised GT scores;
    higher = more salient); ``mask`` (B, k) True = dummy (ignored). Means over valid slots/pairs.
    """
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"scores {tuple(scores.shape)} and targets {tuple(targets.shape)} must both be (B, k)")
    valid = torch.ones_like(scores, dtype=torch.bool) if mask is None else ~mask.to(torch.bool)
    t = targets.to(scores.dtype)
    mse = F.mse_loss(scores[valid], t[valid]) if valid.any() else scores.sum() * 0.0
    return mse + alpha * pairwise_margin_ranking(scores, t, valid, margin)
