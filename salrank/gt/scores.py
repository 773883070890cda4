"""Saliency scores of object boxes from fixations (paper Sec. III-B, eqs. 1-5) and
:func:`rank_objects`, the entry point of the ground truth.

Per image: boxes ``Q_i = [x1, y1, x2, y2]`` (pixels, clipped to the image), ``N_i`` = fixation
points inside ``Q_i`` (half-open ``x1 <= x < x2``, ``y1 <= y < y2``), ``N`` = fixation points
inside the image, ``A_i`` = box area, ``A`` = image area (square pixels). A pixel ``(row, col)``
of a map belongs to a box under the same half-open rule applied to ``(x, y) = (col, row)``, i.e.
columns ``ceil(x1) .. ceil(x2) - 1``.

=============  ===========================================================================
method         score S_i
=============  ===========================================================================
``ra-srgt``    eq. 4: ``N_i / N + gamma * exp(beta * sqrt(A_i / A))`` if ``N_i > 0`` else 0
               (both terms normalised to [0, 1], see ``book/conventions.md``, conv-eq4)
``points``     eq. 1: ``N_i / sqrt(A_i)``
``map-max``    eq. 2: maximum of the fixation map inside ``Q_i``
``map-avg``    eq. 2: mean of the fixation map inside ``Q_i``
``binary-map`` eq. 3: ``(pixels > threshold in Q_i) / (pixels in Q_i) * sqrt(A_i / A)``
=============  ===========================================================================

A box with zero area (or without a pixel) scores 0; an image without fixations scores 0
everywhere. Ranks follow eq. 5 (:func:`salrank.gt.ranking.ranks_from_scores`).
"""

from __future__ import annotations

import numpy as np

from salrank.errors import check_number
from salrank.gt.counting import _count, points_inside_image
from salrank.gt.inputs import as_boxes, as_image_size, as_points, box_areas, clip_boxes
from salrank.gt.ranking import ranks_from_scores
from salrank.paper import DEFAULT_BETA, DEFAULT_GAMMA

__all__ = [
    "METHODS",
    "DEFAULT_GAMMA",
    "DEFAULT_BETA",
    "DEFAULT_SIGMA",
    "DEFAULT_THRESHOLD",
    "rank_objects",
    "score_objects",
    "ra_srgt_scores",
    "point_density_scores",
    "box_pixel_bounds",
    "map_scores",
    "binary_map_scores",
    "fixation_map_from_points",
    "check_options",
]

METHODS = ("ra-srgt", "points", "map-max", "map-avg", "binary-map")
DEFAULT_SIGMA = 19.0
DEFAULT_THRESHOLD = 0.5


def ra_srgt_scores(counts, n_points, areas, image_area, gamma: float = DEFAULT_GAMMA,
                   beta: float = DEFAULT_BETA) -> np.ndarray:
    """Eq. 4 on arrays (broadcast): ``counts / n_points + gamma * exp(beta * sqrt(areas /
    image_area))`` where ``counts > 0``, else 0. Areas in square pixels."""
    counts = np.asarray(counts)
    n_points = np.asarray(n_points, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    salient = counts > 0
    share = np.divide(counts, n_points, out=np.zeros(np.broadcast(counts, n_points).shape), where=salient)
    size_term = gamma * np.exp(beta * np.sqrt(areas / image_area))
    return np.where(salient, share + size_term, 0.0)


def point_density_scores(counts, areas) -> np.ndarray:
    """Eq. 1 on arrays: ``counts / sqrt(areas)``; 0 where the area is 0."""
    counts = np.asarray(counts, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64)
    root = np.sqrt(areas)
    return np.divide(counts, root, out=np.zeros(np.broadcast(counts, root).shape), where=areas > 0)


def box_pixel_bounds(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Integer pixel bounds ``[c0, r0, c1, r1]`` (half-open slices ``[r0:r1, c0:c1]``) of the
    pixels inside each ``[x1, y1, x2, y2]`` box: ``c0 = ceil(x1)``, ``c1 = ceil(x2)``, clipped."""
    height, width = image_size
    bounds = np.ceil(boxes).astype(np.int64)
    bounds[:, 0::2] = np.clip(bounds[:, 0::2], 0, width)
    bounds[:, 1::2] = np.clip(bounds[:, 1::2], 0, height)
    return bounds


def _check_map(values, image_size: tuple[int, int], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != tuple(image_size):
        raise ValueError(f"{name} has shape {arr.shape}, expected (height, width) = {tuple(image_size)}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def map_scores(fixation_map, boxes, image_size, reduce: str = "max") -> np.ndarray:
    """Eq. 2: the maximum (``reduce="max"``) or mean (``"mean"``) of a ``(height, width)`` map
    over the pixels of each box; 0 for a box without pixels."""
    size = as_image_size(image_size)
    fmap = _check_map(fixation_map, size, "fixation_map")
    boxes = clip_boxes(as_boxes(boxes), size)
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    scores = np.zeros(len(boxes))
    for k, (c0, r0, c1, r1) in enumerate(box_pixel_bounds(boxes, size)):
        if c1 > c0 and r1 > r0:
            patch = fmap[r0:r1, c0:c1]
            scores[k] = patch.max() if reduce == "max" else patch.mean()
    return scores


def binary_map_scores(fixation_map, boxes, image_size, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Eq. 3: share of the box's pixels whose map value is ``> threshold``, times
    ``sqrt(A_i / A)``; 0 for a box without pixels."""
    size = as_image_size(image_size)
    fmap = _check_map(fixation_map, size, "fixation_map")
    boxes = clip_boxes(as_boxes(boxes), size)
    white = fmap > threshold
    rel_size = np.sqrt(box_areas(boxes) / (size[0] * size[1]))
    scores = np.zeros(len(boxes))
    for k, (c0, r0, c1, r1) in enumerate(box_pixel_bounds(boxes, size)):
        n_pixels = (c1 - c0) * (r1 - r0)
        if n_pixels > 0:
            scores[k] = np.count_nonzero(white[r0:r1, c0:c1]) / n_pixels * rel_size[k]
    return scores


def fixation_map_from_points(points, image_size, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """The fixation map (:func:`salrank.data.fixation_map`) of bare ``(x, y)`` points."""
    from salrank.data import fixation_map

    size = as_image_size(image_size)
    return np.asarray(fixation_map(as_points(points), sigma=sigma, image_size=size), dtype=np.float64)


def score_objects(points, boxes, image_size, method: str = "ra-srgt", gamma: float = DEFAULT_GAMMA,
                  beta: float = DEFAULT_BETA, *, sigma: float = DEFAULT_SIGMA, fixation_map=None,
                  threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """The scores of :func:`rank_objects` alone (float64, ``(K,)``)."""
    check_options(method, gamma, beta, sigma=sigma, threshold=threshold)
    size = as_image_size(image_size)
    pts = as_points(points)
    bxs = clip_boxes(as_boxes(boxes), size)
    if method in ("ra-srgt", "points"):
        counts = _count(pts, bxs)
        areas = box_areas(bxs)
        if method == "points":
            return point_density_scores(counts, areas)
        return ra_srgt_scores(counts, points_inside_image(pts, size), areas, size[0] * size[1], gamma, beta)
    if method in ("map-max", "map-avg", "binary-map"):
        if fixation_map is None:
            if points_inside_image(pts, size) == 0:
                return np.zeros(len(bxs))
            fixation_map = fixation_map_from_points(pts, size, sigma)
        if method == "binary-map":
            return binary_map_scores(fixation_map, bxs, size, threshold)
        return map_scores(fixation_map, bxs, size, "max" if method == "map-max" else "mean")
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


def _check_parameters(gamma: float, beta: float) -> None:
    check_number("gamma", gamma, 0.0)
    check_number("beta", beta)


def check_options(method: str, gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA, *,
                  sigma: float = DEFAULT_SIGMA, threshold: float = DEFAULT_THRESHOLD) -> None:
    """Raise :class:`salrank.errors.InvalidOptionError` (a ``ValueError``) naming the option and
    its range unless: ``gamma`` finite ``>= 0`` and ``beta`` finite (``ra-srgt``); ``sigma``
    finite ``>= 0`` pixels (map methods); ``threshold`` in ``[0, 1)`` (``binary-map``: the map is
    scaled to ``[0, 1]`` and a pixel counts when ``> threshold``)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if method == "ra-srgt":
        _check_parameters(gamma, beta)
    if method in ("map-max", "map-avg", "binary-map"):
        check_number("sigma", sigma, 0.0)
    if method == "binary-map":
        check_number("threshold", threshold, 0.0, 1.0, high_open=True)


def rank_objects(points, boxes, image_size, method: str = "ra-srgt", gamma: float = DEFAULT_GAMMA,
                 beta: float = DEFAULT_BETA, **options) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth saliency scores and ranks of the boxes of one image.

    ``points``: ``(N, 2)`` fixation points ``(x, y)``, 0-based pixels (points outside the image
    are ignored); ``boxes``: ``(K, 4)`` ``[x1, y1, x2, y2]`` pixels (clipped to the image);
    ``image_size``: ``(height, width)``. ``method``: one of :data:`METHODS` (see the module
    docstring); ``gamma``/``beta`` are used by ``ra-srgt`` only. Options: ``sigma`` (pixels,
    default 19) or a precomputed ``fixation_map`` (``(height, width)``, values in [0, 1]) for the
    map methods, ``threshold`` (default 0.5) for ``binary-map``.

    Returns ``(scores, ranks)``: float64 ``(K,)`` and int64 ``(K,)``, rank 1 = most salient,
    ties broken by the lower box index, 0 = not salient (score 0).
    Raises :class:`ValueError` on a wrong shape, a NaN/infinite coordinate or an unknown method.
    """
    unknown = set(options) - {"sigma", "fixation_map", "threshold"}
    if unknown:
        raise TypeError(f"rank_objects() got unexpected option(s): {', '.join(sorted(unknown))}")
    scores = score_objects(points, boxes, image_size, method, gamma, beta, **options)
    return scores, ranks_from_scores(scores)
