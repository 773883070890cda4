"""From saliency scores to ranks (eq. 5) and to the official code's class labels.

Ranks: among the boxes of one image with a positive score, rank 1 = highest score; ties are
broken by the lower box index; boxes with score ``<= 0`` get rank 0 ("not salient").

Class labels (:func:`class_labels`) order equal scores by one of two rules (``ties=``):

* ``"official"``: the authors' labelling script sorts ``(score, index)`` pairs ascending, so
  of two equal scores the *lower* index is the *less* salient (it gets the lower class);
* ``"rank"``: the lower index is the *more* salient, as for the ranks of eq. 5.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GROUP_SIZE",
    "ranks_from_scores",
    "grouped_positions",
    "grouped_ranks_from_scores",
    "class_labels",
    "TIE_RULES",
]

TIE_RULES = ("official", "rank")
"""Tie orders of :func:`class_labels`: the authors' ``sorted((score, index))`` or eq. 5's."""

GROUP_SIZE = 5
"""Proposals per sequence in FOSRNet and the official code (5 rank classes)."""


def _as_scores(scores) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError("scores contain NaN")
    return arr


def _check_groups(scores: np.ndarray, groups) -> np.ndarray:
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != scores.shape:
        raise ValueError(f"groups has shape {groups.shape}, scores {scores.shape}")
    return groups


def grouped_positions(scores, groups) -> np.ndarray:
    """0-based position of each box in the descending order of its group (image): highest score
    first, ties by the lower index. ``scores``, ``groups``: ``(B,)``. Returns int64 ``(B,)``."""
    scores = _as_scores(scores)
    groups = _check_groups(scores, groups)
    n = len(scores)
    positions = np.zeros(n, dtype=np.int64)
    if n == 0:
        return positions
    index = np.arange(n)
    order = np.lexsort((index, -scores, groups))
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, n]))
    positions[order] = index - first
    return positions


def grouped_ranks_from_scores(scores, groups) -> np.ndarray:
    """Ranks (eq. 5) of many images at once.

    ``scores``: ``(B,)`` scores of all boxes; ``groups``: ``(B,)`` integer image index of each
    box (boxes of one image need not be contiguous; box order within an image = order in the
    arrays). Returns int64 ranks ``(B,)``: 1..m within each image for its m positive scores, 0
    for the others.
    """
    scores = _as_scores(scores)
    positions = grouped_positions(scores, groups)
    return np.where(scores > 0, positions + 1, 0).astype(np.int64)


def ranks_from_scores(scores) -> np.ndarray:
    """Ranks (eq. 5) of the boxes of one image: int64 ``(K,)``, 1 = highest positive score, ties
    by the lower index, 0 for scores ``<= 0``."""
    scores = _as_scores(scores)
    return grouped_ranks_from_scores(scores, np.zeros(len(scores), dtype=np.int64))


def class_labels(scores, group_size: int | None = GROUP_SIZE, ties: str = "rank") -> np.ndarray:
    """Official-code class labels of one group of proposals: the position in ascending order of
    saliency, ``0`` = least salient ... ``group_size - 1`` = most salient.

    ``ties`` (:data:`TIE_RULES`): ``"rank"`` (default) orders equal scores as
    :func:`ranks_from_scores` does (the lower index is the more salient), so labels and ranks
    never disagree; ``"official"`` is the authors' rule, ``sorted((score, index))`` ascending (the
    lower index is the *less* salient), used by :func:`salrank.metrics.official_protocol`.
    Either way the labels of a full group are a permutation of ``0..group_size-1``.
    A group shorter than ``group_size`` is treated as padded with dummy proposals that are less
    salient than every real one (FOSRNet pads short sequences with dummy nodes), so its most
    salient proposal still gets ``group_size - 1``; pass ``group_size=None`` to label a group of
    n proposals ``0..n-1`` instead. Returns int64 labels ``(n,)``.

    >>> class_labels([0.5, 0.0, 0.0, 0.2, 0.0], ties="official").tolist()
    [4, 0, 1, 3, 2]
    >>> class_labels([0.5, 0.0, 0.0, 0.2, 0.0], ties="rank").tolist()
    [4, 2, 1, 3, 0]
    """
    if ties not in TIE_RULES:
        raise ValueError(f"ties: unknown {ties!r}; expected one of {TIE_RULES}")
    scores = _as_scores(scores)
    n = len(scores)
    size = n if group_size is None else int(group_size)
    if n > size:
        raise ValueError(f"a group has at most group_size={size} proposals, got {n}")
    if ties == "official":
        ascending = np.lexsort((np.arange(n), scores))  # sorted((score, index))
        positions = np.empty(n, dtype=np.int64)
        positions[ascending] = np.arange(n)
        return (positions + (size - n)).astype(np.int64)
    positions = grouped_positions(scores, np.zeros(n, dtype=np.int64))
    return (size - 1 - positions).astype(np.int64)
