"""Discrepancy offsets between RA-SRGT orders at adjacent parameter values (paper eq. 13,
Fig. 11-B for gamma; the same sweep over beta stands in for Fig. 11-C, whose user study the
project does not have).

``T_offset(t) = sum over images n and boxes i of |Rank^t_{n,i} - Rank^{t - step}_{n,i}|``:
the fixation counts are computed once, then every parameter value only rescores and reranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from salrank.gt.dataset import DatasetCounts, count_dataset
from salrank.gt.scores import DEFAULT_BETA, DEFAULT_GAMMA

__all__ = ["DEFAULT_GRID", "discrepancy_offsets", "offsets_from_counts"]

DEFAULT_GRID = tuple(round(0.1 * k, 1) for k in range(11))
"""0.0, 0.1, ..., 1.0: offsets are reported for t = 0.1 ... 1.0 against t - 0.1."""


def offsets_from_counts(counts: DatasetCounts, *, parameter: str = "gamma",
                        values: Sequence[float] = DEFAULT_GRID, gamma: float = DEFAULT_GAMMA,
                        beta: float = DEFAULT_BETA) -> pd.DataFrame:
    """Eq. 13 for one parameter (``"gamma"`` or ``"beta"``) swept over ``values`` (ascending
    order not required; adjacent entries are compared), the other fixed at ``gamma``/``beta``.

    Returns a DataFrame with one row per adjacent pair: ``parameter``, ``t``, ``t_prev``,
    ``offset`` (sum of absolute rank changes), ``changed_boxes``, ``changed_images``.
    """
    if parameter not in ("gamma", "beta"):
        raise ValueError(f"parameter must be 'gamma' or 'beta', got {parameter!r}")
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ValueError("values needs at least two parameter values")
    ranks = []
    for v in values:
        g, b = (v, beta) if parameter == "gamma" else (gamma, v)
        ranks.append(counts.ranks(counts.ra_srgt_scores(g, b)))
    rows = []
    n_images = len(counts.images)
    for k in range(1, len(values)):
        diff = np.abs(ranks[k] - ranks[k - 1])
        changed = diff > 0
        rows.append({
            "parameter": parameter,
            "t": values[k],
            "t_prev": values[k - 1],
            "offset": int(diff.sum()),
            "changed_boxes": int(changed.sum()),
            "changed_images": int(np.unique(counts.image_index[changed]).size) if n_images else 0,
        })
    return pd.DataFrame(rows, columns=["parameter", "t", "t_prev", "offset", "changed_boxes", "changed_images"])


def discrepancy_offsets(fixations: Mapping, boxes: Mapping, *, gammas: Sequence[float] | None = DEFAULT_GRID,
                        betas: Sequence[float] | None = DEFAULT_GRID, gamma: float = DEFAULT_GAMMA,
                        beta: float = DEFAULT_BETA, progress: bool = True) -> pd.DataFrame:
    """Eq. 13 offsets of a dataset (``fixations``/``boxes`` as in
    :func:`salrank.gt.relabel_dataset`) for a sweep over gamma (beta fixed at ``beta``) and one
    over beta (gamma fixed at ``gamma``); ``None`` skips a sweep. The default grids are
    0.0..1.0 in steps of 0.1. Returns the rows of :func:`offsets_from_counts` for both sweeps.
    """
    counts = count_dataset(fixations, boxes, progress=progress)
    frames = []
    if gammas is not None:
        frames.append(offsets_from_counts(counts, parameter="gamma", values=gammas, beta=beta))
    if betas is not None:
        frames.append(offsets_from_counts(counts, parameter="beta", values=betas, gamma=gamma))
    if not frames:
        raise ValueError("nothing to sweep: gammas and betas are both None")
    return pd.concat(frames, ignore_index=True)
