"""Comparisons and parameter sweeps of the ground-truth rankings over scene sets (for the book pages).

* :func:`image_rank_table`: one image's boxes with fixation counts, scores and ranks (a table);
* :func:`method_rankings`: every method's ranks for every image of a
  :class:`~salrank.data.scenes.SceneSet` (one fixation map per image, shared by the map methods);
* :func:`rank_agreement` / :func:`agreement_summary`: per-image Spearman rho between each
  method's order and a reference (a method, e.g. RA-SRGT, or SynthSal's planted salience);
* :func:`offset_sweeps`: eq. 13 gamma and beta sweeps (Fig. 11-B and its beta proxy) of several
  scene sets in one table, :func:`offset_range_summary` its plateaus over the paper's ranges;
  :func:`gamma_sensitivity`: the images whose ranks change most with
  gamma (to pick gallery examples); :func:`scenes_with_boxes`: the images of a set with boxes.

Conventions as in :mod:`salrank.gt`: points ``(x, y)`` 0-based pixels, boxes ``[x1, y1, x2, y2]``
pixels, ``image_size = (height, width)``, rank 1 = most salient, 0 = not salient.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from salrank.gt.counting import _count
from salrank.gt.discrepancy import DEFAULT_GRID, offsets_from_counts
from salrank.gt.inputs import as_boxes, as_image_size, as_points, clip_boxes
from salrank.gt.ranking import ranks_from_scores
from salrank.gt.scores import (
    DEFAULT_BETA,
    DEFAULT_GAMMA,
    DEFAULT_SIGMA,
    DEFAULT_THRESHOLD,
    METHODS,
    fixation_map_from_points,
    score_objects,
)
from salrank.paper import GAMMAS

__all__ = [
    "SALIENCE",
    "image_rank_table",
    "method_rankings",
    "salience_order",
    "rank_agreement",
    "agreement_summary",
    "offset_sweeps",
    "OFFSET_RANGES",
    "offset_range_summary",
    "gamma_sensitivity",
    "scenes_with_boxes",
]

SALIENCE = "salience"
"""Reference name of SynthSal's planted salience in :func:`rank_agreement`."""

_MAP_METHODS = ("map-max", "map-avg", "binary-map")


def _check_methods(methods: Sequence[str]) -> list[str]:
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {', '.join(METHODS)}")
    if not methods:
        raise ValueError("methods is empty")
    return methods


def image_rank_table(points, boxes, image_size, method: str = "ra-srgt", gamma: float = DEFAULT_GAMMA,
                     beta: float = DEFAULT_BETA, *, salience=None, **options) -> pd.DataFrame:
    """The boxes of one image with their fixation count, score and rank, one row per box.

    ``points``: ``(N, 2)`` ``(x, y)``; ``boxes``: ``(K, 4)`` ``[x1, y1, x2, y2]`` pixels (clipped
    to the image, as :func:`salrank.gt.rank_objects` does); ``image_size``: ``(height, width)``;
    ``method``, ``gamma``, ``beta`` and ``options`` (``sigma``, ``fixation_map``, ``threshold``)
    as in :func:`~salrank.gt.rank_objects`. ``salience``: optional ``(K,)`` planted salience.

    Columns: ``box`` (0-based index), ``x1 y1 x2 y2`` (clipped), ``n_fixations`` (points inside,
    half-open), ``score``, ``rank`` [, ``salience``]. Scores and ranks equal ``rank_objects``'.
    """
    size = as_image_size(image_size)
    pts = as_points(points)
    bxs = clip_boxes(as_boxes(boxes), size)
    scores = score_objects(pts, bxs, size, method, gamma, beta, **options)
    table = pd.DataFrame({
        "box": np.arange(len(bxs), dtype=np.int64),
        "x1": bxs[:, 0], "y1": bxs[:, 1], "x2": bxs[:, 2], "y2": bxs[:, 3],
        "n_fixations": _count(pts, bxs),
        "score": scores,
        "rank": ranks_from_scores(scores),
    })
    if salience is not None:
        sal = np.asarray(salience, dtype=np.float64).reshape(-1)
        if len(sal) != len(bxs):
            raise ValueError(f"salience has {len(sal)} values for {len(bxs)} boxes")
        table["salience"] = sal
    return table


def scenes_with_boxes(scene_set, n: int | None = None, seed: int = 0):
    """The :class:`~salrank.data.scenes.SceneSet` restricted to its images with at least one box;
    with ``n``, a random ``n`` of them (``numpy`` generator seeded with ``seed``; kept in sorted
    stem order). Raises :class:`ValueError` when no image has a box."""
    stems = [s for s in scene_set.stems if len(scene_set.boxes_of(s))]
    if not stems:
        raise ValueError(f"{scene_set.name}/{scene_set.split}: no image has object boxes "
                         "(for SALICON, generate proposals first: salrank proposals)")
    if n is not None and n < len(stems):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        pick = np.random.default_rng(seed).choice(len(stems), size=n, replace=False)
        stems = [stems[i] for i in sorted(pick)]
    return scene_set.subset(stems)


def method_rankings(scene_set, *, methods: Sequence[str] = METHODS, gamma: float = DEFAULT_GAMMA,
                    beta: float = DEFAULT_BETA, stems: Sequence[str] | None = None,
                    sigma: float = DEFAULT_SIGMA, threshold: float = DEFAULT_THRESHOLD,
                    progress: bool = False) -> pd.DataFrame:
    """Every method's scores and ranks for every box of a scene set, as one tidy table.

    ``scene_set``: a :class:`~salrank.data.scenes.SceneSet` (images without boxes are skipped);
    ``stems``: a subset (default: all, sorted). The fixation map of an image (``sigma`` pixels)
    is built once and shared by the map methods; ``threshold`` is eq. 3's. Each image's result
    equals :func:`salrank.gt.rank_objects` with the same arguments.

    Columns: ``dataset``, ``image``, ``method``, then those of :func:`image_rank_table`
    (``salience`` is NaN when the set has no planted salience).
    """
    methods = _check_methods(methods)
    stems = list(scene_set.stems if stems is None else stems)
    frames = []
    for stem in tqdm(stems, desc="ranking", unit="image", disable=not progress):
        boxes = scene_set.boxes_of(stem)
        if len(boxes) == 0:
            continue
        fx = scene_set.fixations[stem]
        size = (fx.height, fx.width)
        salience = scene_set.salience[stem] if scene_set.salience is not None else np.full(len(boxes), np.nan)
        fmap = None
        if any(m in _MAP_METHODS for m in methods):
            fmap = fixation_map_from_points(fx.points, size, sigma)
        for method in methods:
            options = {"fixation_map": fmap, "threshold": threshold} if method in _MAP_METHODS else {}
            table = image_rank_table(fx.points, boxes, size, method, gamma, beta, salience=salience, **options)
            table.insert(0, "method", method)
            table.insert(0, "image", stem)
            frames.append(table)
    columns = ["dataset", "image", "method", "box", "x1", "y1", "x2", "y2", "n_fixations", "score", "rank",
               "salience"]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "dataset", f"{scene_set.name}/{scene_set.split}")
    return out[columns]


def salience_order(ranks) -> np.ndarray:
    """Ranks (1 = most salient, 0 = not salient) as order values, larger = more salient: rank r
    gives ``-r``; every rank-0 box gives ``-(K + 1)`` (tied below all ranked boxes, K = boxes)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    return np.where(ranks > 0, -ranks, -(len(ranks) + 1)).astype(np.float64)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rho; NaN when it is undefined (fewer than 2 boxes or a constant side)."""
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]) or np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def rank_agreement(rankings: pd.DataFrame, reference: str = "ra-srgt") -> pd.DataFrame:
    """Per image and method: Spearman rho between the method's order and the reference's.

    ``rankings``: a table of :func:`method_rankings`. ``reference``: a method present in it
    (orders from ranks, rank-0 boxes tied at the bottom, see :func:`salience_order`) or
    :data:`SALIENCE` (the planted salience values). Rho is NaN where undefined (an image with
    one box, or all its boxes tied on either side, e.g. no fixation in any box).

    Columns: ``dataset``, ``image``, ``method``, ``n_boxes``, ``spearman``.
    """
    needed = {"dataset", "image", "method", "box", "rank", "salience"}
    missing = needed - set(rankings.columns)
    if missing:
        raise ValueError(f"rankings lacks column(s) {sorted(missing)}; use method_rankings()")
    if reference != SALIENCE and reference not in set(rankings["method"]):
        raise ValueError(f"reference {reference!r} is neither {SALIENCE!r} nor a method in rankings "
                         f"({sorted(set(rankings['method']))})")
    rows = []
    for (dataset, image), group in rankings.groupby(["dataset", "image"], sort=True):
        by_method = {m: g.sort_values("box") for m, g in group.groupby("method", sort=False)}
        if reference == SALIENCE:
            ref = next(iter(by_method.values()))["salience"].to_numpy(dtype=np.float64)
        else:
            ref = salience_order(by_method[reference]["rank"].to_numpy())
        for method, g in by_method.items():
            rows.append({"dataset": dataset, "image": image, "method": method, "n_boxes": len(g),
                         "spearman": _spearman(salience_order(g["rank"].to_numpy()), ref)})
    return pd.DataFrame(rows, columns=["dataset", "image", "method", "n_boxes", "spearman"])


def agreement_summary(agreement: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method (in :data:`~salrank.gt.METHODS` order): ``mean`` and ``median``
    Spearman rho over the images where it is defined, ``images`` (defined) and ``undefined``
    (excluded, see :func:`rank_agreement`)."""
    order = {m: i for i, m in enumerate(METHODS)}
    rows = []
    for (dataset, method), g in agreement.groupby(["dataset", "method"], sort=False):
        rho = g["spearman"].to_numpy(dtype=np.float64)
        defined = rho[~np.isnan(rho)]
        rows.append({"dataset": dataset, "method": method,
                     "mean": float(defined.mean()) if len(defined) else float("nan"),
                     "median": float(np.median(defined)) if len(defined) else float("nan"),
                     "images": int(len(defined)), "undefined": int(len(rho) - len(defined))})
    out = pd.DataFrame(rows, columns=["dataset", "method", "mean", "median", "images", "undefined"])
    out["_order"] = out["method"].map(order).fillna(len(order))
    return out.sort_values(["dataset", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


def offset_sweeps(scene_sets, *, gammas: Sequence[float] | None = DEFAULT_GRID,
                  betas: Sequence[float] | None = DEFAULT_GRID, gamma: float = DEFAULT_GAMMA,
                  beta: float = DEFAULT_BETA, progress: bool = False) -> pd.DataFrame:
    """Eq. 13 discrepancy offsets of each scene set, for a gamma sweep (beta fixed at ``beta``)
    and a beta sweep (gamma fixed at ``gamma``); ``None`` skips a sweep. Images without boxes
    are left out.

    Returns the rows of :func:`salrank.gt.offsets_from_counts` (``parameter``, ``t``,
    ``t_prev``, ``offset``, ``changed_boxes``, ``changed_images``) with ``dataset``, ``images``,
    ``boxes`` and ``offset_per_1k_boxes`` (``1000 * offset / boxes``: comparable across sets).
    """
    from salrank.gt.dataset import count_dataset

    if gammas is None and betas is None:
        raise ValueError("nothing to sweep: gammas and betas are both None")
    frames = []
    for ss in scene_sets:
        boxes = {s: b for s, b in ss.boxes.items() if len(b) and s in ss.fixations}
        counts = count_dataset(ss.fixations, boxes, progress=progress)
        for parameter, values in (("gamma", gammas), ("beta", betas)):
            if values is None:
                continue
            frame = offsets_from_counts(counts, parameter=parameter, values=values, gamma=gamma, beta=beta)
            frame.insert(0, "dataset", f"{ss.name}/{ss.split}")
            frame["images"] = len(counts.images)
            frame["boxes"] = len(counts.counts)
            frame["offset_per_1k_boxes"] = 1000.0 * frame["offset"] / max(len(counts.counts), 1)
            frames.append(frame)
    if not frames:
        raise ValueError("scene_sets is empty")
    return pd.concat(frames, ignore_index=True)


OFFSET_RANGES = {
    "gamma": ((0.1, 0.2), (0.3, 0.6), (0.7, 1.0)),
    "beta": ((0.1, 0.3), (0.4, 0.6), (0.7, 1.0), (1.1, 2.0)),
}
"""Ranges of ``t`` summarised by :func:`offset_range_summary`: for gamma, the paper's (Sec. IV-E:
offsets "essentially the same" within 0.3-0.6 and within 0.7-1.0, hence gamma = 0.1, 0.2, 0.5,
0.8); for beta, the paper's stable range 0.4-0.6 (Fig. 11-C) and its neighbours."""


def offset_range_summary(offsets: pd.DataFrame, ranges=None) -> pd.DataFrame:
    """Per dataset, parameter and range ``lo <= t <= hi`` of an :func:`offset_sweeps` table: the
    ``steps`` in it, the ``mean``, ``min`` and ``max`` offset, and ``spread = (max - min) / mean``
    (0 = a perfect plateau; NaN when the mean is 0). ``ranges``: ``{parameter: [(lo, hi), ...]}``
    (default :data:`OFFSET_RANGES`); ranges without a step are left out."""
    ranges = OFFSET_RANGES if ranges is None else ranges
    missing = {"dataset", "parameter", "t", "offset"} - set(offsets.columns)
    if missing:
        raise ValueError(f"offsets lacks column(s) {sorted(missing)}; use offset_sweeps()")
    rows = []
    for (dataset, parameter), group in offsets.groupby(["dataset", "parameter"], sort=False):
        t = group["t"].to_numpy(dtype=np.float64)
        for lo, hi in ranges.get(parameter, ()):
            inside = group["offset"].to_numpy(dtype=np.float64)[(t >= lo - 1e-9) & (t <= hi + 1e-9)]
            if len(inside) == 0:
                continue
            mean = float(inside.mean())
            rows.append({"dataset": dataset, "parameter": parameter, "range": f"{lo:.1f}-{hi:.1f}",
                         "steps": int(len(inside)), "mean": mean, "min": float(inside.min()),
                         "max": float(inside.max()),
                         "spread": float((inside.max() - inside.min()) / mean) if mean > 0 else float("nan")})
    return pd.DataFrame(rows, columns=["dataset", "parameter", "range", "steps", "mean", "min", "max", "spread"])


def gamma_sensitivity(scene_set, gammas: Sequence[float] = GAMMAS,
                      beta: float = DEFAULT_BETA) -> pd.DataFrame:
    """How much each image's RA-SRGT ranks change along ``gammas`` (``beta`` fixed): per image,
    the eq. 13 offset summed over adjacent gammas, ``sum_t sum_i |Rank^t_i - Rank^(t-1)_i|``.

    Columns: ``image``, ``boxes``, ``offset``, ``changed_boxes`` (boxes whose rank differs
    between any two gammas); images without boxes are left out; sorted by decreasing
    ``offset``, then by stem.
    """
    from salrank.gt.dataset import count_dataset

    gammas = [float(g) for g in gammas]
    if len(gammas) < 2:
        raise ValueError("gammas needs at least two values")
    boxes = {s: b for s, b in scene_set.boxes.items() if len(b) and s in scene_set.fixations}
    counts = count_dataset(scene_set.fixations, boxes, progress=False)
    ranks = np.stack([counts.ranks(counts.ra_srgt_scores(g, beta)) for g in gammas])
    n_images = len(counts.images)
    offset = np.bincount(counts.image_index, weights=np.abs(np.diff(ranks, axis=0)).sum(axis=0),
                         minlength=n_images)
    changed = np.bincount(counts.image_index, weights=(ranks != ranks[0]).any(axis=0), minlength=n_images)
    out = pd.DataFrame({
        "image": list(counts.images),
        "boxes": np.bincount(counts.image_index, minlength=n_images).astype(np.int64),
        "offset": offset.astype(np.int64),
        "changed_boxes": changed.astype(np.int64),
    })
    return out.sort_values(["offset", "image"], ascending=[False, True], kind="stable").reset_index(drop=True)
