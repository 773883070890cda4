"""From saliency scores to ranks (eq. 5) and to the official code's class labels.

Ranks: among the boxes of one image with a positive score, rank 1 = highest score; ties are
broken by the lower box index; boxes with score ``<= 0`` get rank 0 ("not salient").
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GROUP_SIZE",
    "ranks_from_scores",
    "grouped_positions",
    "grouped_ranks_from_scores",
    "class_labels",
]

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


def class_labels(scores, group_size: int | None = GROUP_SIZE) -> np.ndarray:
    """Official-code class labels of one group of proposals: the position in ascending order of
    saliency, ``0`` = least salient ... ``group_size - 1`` = most salient.

    Ties are ordered as in :func:`ranks_from_scores` (the lower index is the more salient), so
    labels and ranks never disagree. A group shorter than ``group_size`` is treated as padded
    with dummy proposals that are less salient than every real one (FOSRNet pads short
    sequences with dummy nodes), so its most salient proposal still gets ``group_size - 1``;
    pass ``group_size=None`` to label a group of n proposals ``0..n-1`` instead.
    Returns int64 labels ``(n,)``.
    """
    scores = _as_scores(scores)
    n = len(scores)
    size = n if group_size is None else int(group_size)
    if n > size:
        raise ValueError(f"a group has at most group_size={size} proposals, got {n}")
    positions = grouped_positions(scores, np.zeros(n, dtype=np.int64))
    return (size - 1 - positions).astype(np.int64)
