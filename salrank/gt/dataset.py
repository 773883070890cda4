"""Relabelling a whole dataset: fixations + object proposals -> a tidy table of GT ranks.

Inputs: ``fixations``, a mapping ``{file stem: Fixations}`` (anything with ``points`` ``(N, 2)``
``(x, y)`` 0-based, ``height`` and ``width``; e.g. :func:`salrank.data.load_salicon`) and
``boxes``, a mapping ``{file stem: (K, 4) [x1, y1, x2, y2]}`` pixels (the box order is the
proposal order, e.g. by descending detector score). Every stem of ``boxes`` needs fixations;
fixations without boxes are ignored. Images are processed in sorted stem order.

For the counting methods (``ra-srgt``, ``points``) the per-image work is one
:func:`numpy.searchsorted` pass per axis and one 2-D prefix sum (:mod:`salrank.gt.counting`),
then scores, ranks and labels are computed for all images at once; the map methods build one
fixation map per image. Tables are cached under ``salrank.config.cache_dir("gt")`` as a NumPy
``.npz`` of the columns (no pickles: reading a shared cache never runs code), keyed by a hash of
the inputs and parameters (written atomically; a damaged entry is discarded and rebuilt).

The 5-proposal group of the official code's class labels is the first ``group_size`` proposals
of each image in box order; proposals after them get label -1, and an image with fewer
proposals is treated as padded with dummy, least-salient ones (:func:`salrank.gt.ranking.class_labels`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from salrank.gt.counting import count_points_in_boxes_batch
from salrank.gt.inputs import as_boxes, as_image_size, as_points, box_areas, clip_boxes
from salrank.gt.ranking import GROUP_SIZE, grouped_positions
from salrank.gt.scores import (
    DEFAULT_BETA,
    DEFAULT_GAMMA,
    METHODS,
    _check_parameters,
    check_options,
    point_density_scores,
    ra_srgt_scores,
    score_objects,
)
from salrank.io import atomic_output

__all__ = ["DatasetCounts", "count_dataset", "relabel_dataset", "COLUMNS", "CACHE_VERSION"]

#: Bumped when the table layout or the scoring rules change, so stale cache entries are ignored.
CACHE_VERSION = 1

COLUMNS = ("image", "box", "x1", "y1", "x2", "y2", "n_fixations", "score", "rank", "label")
"""Columns of :func:`relabel_dataset`'s table."""


@dataclass(frozen=True)
class DatasetCounts:
    """Fixation counts of every box of a dataset, boxes of all images concatenated.

    ``images``: stems in processing order; ``image_index`` ``(B,)``: image of each box;
    ``box_index`` ``(B,)``: position of the box within its image; ``boxes`` ``(B, 4)``: boxes
    clipped to their image; ``counts`` ``(B,)``: fixation points inside each box (half-open);
    ``areas`` ``(B,)``: square pixels; ``n_points`` ``(n_images,)``: points inside each image;
    ``image_areas`` ``(n_images,)``: ``height * width``.
    """

    images: tuple[str, ...]
    image_index: np.ndarray
    box_index: np.ndarray
    boxes: np.ndarray
    counts: np.ndarray
    areas: np.ndarray
    n_points: np.ndarray
    image_areas: np.ndarray

    def ra_srgt_scores(self, gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA) -> np.ndarray:
        """Eq. 4 scores ``(B,)`` of every box."""
        _check_parameters(gamma, beta)
        idx = self.image_index
        return ra_srgt_scores(self.counts, self.n_points[idx], self.areas, self.image_areas[idx], gamma, beta)

    def point_density_scores(self) -> np.ndarray:
        """Eq. 1 scores ``(B,)`` of every box."""
        return point_density_scores(self.counts, self.areas)

    def ranks(self, scores: np.ndarray) -> np.ndarray:
        """Eq. 5 ranks ``(B,)`` of ``scores`` within each image."""
        positions = grouped_positions(scores, self.image_index)
        return np.where(scores > 0, positions + 1, 0).astype(np.int64)

    def labels(self, scores: np.ndarray, group_size: int = GROUP_SIZE) -> np.ndarray:
        """Official-code class labels ``(B,)`` within each image's first ``group_size`` boxes
        (``group_size - 1`` = most salient), -1 for the other boxes."""
        in_group = self.box_index < group_size
        labels = np.full(len(scores), -1, dtype=np.int64)
        positions = grouped_positions(scores[in_group], self.image_index[in_group])
        labels[in_group] = group_size - 1 - positions
        return labels


def _image_inputs(stem: str, fixations: Mapping, boxes: Mapping):
    try:
        fx = fixations[stem]
    except KeyError:
        raise KeyError(f"image {stem!r} has boxes but no fixations") from None
    size = as_image_size((fx.height, fx.width))
    points = as_points(fx.points, name=f"fixations[{stem!r}].points")
    bxs = clip_boxes(as_boxes(boxes[stem], name=f"boxes[{stem!r}]"), size)
    return points, bxs, size


def _image_arrays(fixations: Mapping, boxes: Mapping, stems: list[str], progress: bool):
    """Per image: points ``(N, 2)`` and boxes ``(K, 4)`` as float64 arrays (shapes checked), and
    the sizes ``(n, 2)`` ``(height, width)``."""
    points, boxes_list, sizes = [], [], []
    for stem in tqdm(stems, desc="reading inputs", unit="image", disable=not progress, mininterval=0.5):
        try:
            fx = fixations[stem]
        except KeyError:
            raise KeyError(f"image {stem!r} has boxes but no fixations") from None
        sizes.append(as_image_size((fx.height, fx.width)))
        pts = np.asarray(fx.points, dtype=np.float64)
        if pts.size == 0:
            pts = pts.reshape(0, 2)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"fixations[{stem!r}].points must have shape (N, 2), got {pts.shape}")
        bxs = np.asarray(boxes[stem], dtype=np.float64)
        if bxs.size == 0:
            bxs = bxs.reshape(0, 4)
        if bxs.ndim != 2 or bxs.shape[1] != 4:
            raise ValueError(f"boxes[{stem!r}] must have shape (K, 4) as [x1, y1, x2, y2], got {bxs.shape}")
        points.append(pts)
        boxes_list.append(bxs)
    return points, boxes_list, np.asarray(sizes, dtype=np.int64).reshape(-1, 2)


def _check_finite(arrays: list[np.ndarray], stems: list[str], what: str) -> np.ndarray:
    """Concatenate ``arrays``; :class:`ValueError` naming the image on a NaN/infinite value."""
    joined = np.concatenate(arrays) if arrays else np.zeros((0, 2))
    if not np.isfinite(joined.sum()):  # cheap test first; a huge finite sum may overflow: recheck
        for stem, arr in zip(stems, arrays, strict=True):
            if not np.isfinite(arr).all():
                raise ValueError(f"{what} of image {stem!r} contain a NaN or infinite coordinate")
    return joined


def _clip_dataset_boxes(all_boxes: np.ndarray, n_boxes: np.ndarray, sizes: np.ndarray, stems) -> np.ndarray:
    image_of_box = np.repeat(np.arange(len(sizes)), n_boxes)
    inverted = (all_boxes[:, 2] < all_boxes[:, 0]) | (all_boxes[:, 3] < all_boxes[:, 1])
    if inverted.any():
        row = int(np.flatnonzero(inverted)[0])
        raise ValueError(f"a box of image {stems[image_of_box[row]]!r} has x2 < x1 or y2 < y1: "
                         f"{all_boxes[row].tolist()}; boxes must be [x1, y1, x2, y2]")
    clipped = all_boxes.copy()
    clipped[:, 0::2] = np.clip(all_boxes[:, 0::2], 0, sizes[image_of_box, 1:2])
    clipped[:, 1::2] = np.clip(all_boxes[:, 1::2], 0, sizes[image_of_box, 0:1])
    return clipped


def count_dataset(fixations: Mapping, boxes: Mapping, *, progress: bool = True) -> DatasetCounts:
    """Count the fixation points inside every box of a dataset (see the module docstring);
    :func:`salrank.gt.counting.count_points_in_boxes_batch` does the work, in chunks."""
    stems = sorted(boxes)
    points, boxes_list, sizes = _image_arrays(fixations, boxes, stems, progress)
    n_boxes = np.fromiter((len(b) for b in boxes_list), dtype=np.int64, count=len(boxes_list))
    all_boxes = _check_finite(boxes_list, stems, "boxes").reshape(-1, 4)
    clipped = _clip_dataset_boxes(all_boxes, n_boxes, sizes, stems)
    counts, inside = count_points_in_boxes_batch(points, clipped, n_boxes, sizes, names=stems, progress=progress)
    box_start = np.r_[0, np.cumsum(n_boxes)]
    starts = np.repeat(box_start[:-1], n_boxes)
    return DatasetCounts(
        images=tuple(stems),
        image_index=np.repeat(np.arange(len(stems), dtype=np.int64), n_boxes),
        box_index=np.arange(len(clipped), dtype=np.int64) - starts,
        boxes=clipped,
        counts=counts,
        areas=box_areas(clipped),
        n_points=inside,
        image_areas=(sizes[:, 0] * sizes[:, 1]).astype(np.float64),
    )


def _cache_key(fixations: Mapping, boxes: Mapping, params: dict) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps({"version": CACHE_VERSION, **params}, sort_keys=True, default=str).encode())
    for stem in sorted(boxes):
        fx = fixations.get(stem) if hasattr(fixations, "get") else fixations[stem]
        if fx is None:
            raise KeyError(f"image {stem!r} has boxes but no fixations")
        digest.update(f"\0{stem}\0{fx.height}x{fx.width}\0".encode())
        digest.update(np.ascontiguousarray(fx.points, dtype=np.float64).tobytes())
        digest.update(b"\0")
        digest.update(np.ascontiguousarray(boxes[stem], dtype=np.float64).tobytes())
    return digest.hexdigest()


def _write_table(frame: pd.DataFrame, target: Path) -> None:
    """Save a :func:`relabel_dataset` table as ``.npz`` columns (``image`` as text) + its attrs as JSON."""
    columns = {c: (frame[c].to_numpy(dtype=str) if c == "image" else frame[c].to_numpy()) for c in COLUMNS}
    with atomic_output(target, "wb") as f:
        np.savez(f, attrs=np.array(json.dumps(frame.attrs, sort_keys=True)), **columns)


def _read_table(target: Path) -> pd.DataFrame:
    """The table saved by :func:`_write_table` (``allow_pickle=False``: data only)."""
    with np.load(target, allow_pickle=False) as z:
        data = {c: z[c] for c in COLUMNS}
        attrs = json.loads(str(z["attrs"]))
    if len({len(v) for v in data.values()}) != 1:
        raise ValueError("columns of different lengths")
    data["image"] = pd.Series(data["image"].astype(object), dtype=object)
    frame = pd.DataFrame(data)
    frame.attrs.update(attrs)
    return frame


def relabel_dataset(fixations: Mapping, boxes: Mapping, *, method: str = "ra-srgt",
                    gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA, group_size: int = GROUP_SIZE,
                    cache: bool = True, progress: bool = True, **options) -> pd.DataFrame:
    """GT scores, ranks and class labels of every proposal of a dataset, as a tidy table.

    One row per box (images in sorted stem order, boxes in their given order) with columns
    :data:`COLUMNS`: ``image`` (stem), ``box`` (0-based index within the image), ``x1..y2``
    (the box clipped to the image, pixels), ``n_fixations`` (points inside, half-open rule),
    ``score`` and ``rank`` (as :func:`salrank.gt.rank_objects` with the same ``method``,
    ``gamma``, ``beta`` and ``options``), ``label`` (official-code class label within the first
    ``group_size`` boxes, -1 after them). The parameters are stored in ``table.attrs``.
    ``cache``: reuse/write an ``.npz`` in ``cache_dir("gt")`` keyed by the inputs and parameters.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    unknown = set(options) - {"sigma", "threshold"}
    if unknown:
        raise TypeError(f"relabel_dataset() got unexpected option(s) {sorted(unknown)}; allowed: sigma, threshold")
    check_options(method, gamma, beta, **options)
    params = {"method": method, "gamma": float(gamma), "beta": float(beta), "group_size": int(group_size),
              **{k: float(v) for k, v in options.items()}}
    target = None
    if cache:
        from salrank.cache import read_cache_entry
        from salrank.config import cache_dir

        target = cache_dir("gt") / f"relabel-{_cache_key(fixations, boxes, params)}.npz"
        cached = read_cache_entry(target, _read_table, what="GT table cache")
        if cached is not None:
            return cached

    counts = count_dataset(fixations, boxes, progress=progress)
    if method == "ra-srgt":
        scores = counts.ra_srgt_scores(gamma, beta)
    elif method == "points":
        scores = counts.point_density_scores()
    else:
        parts = []
        for stem in tqdm(counts.images, desc=f"scoring ({method})", unit="image", disable=not progress):
            points, bxs, size = _image_inputs(stem, fixations, boxes)
            parts.append(score_objects(points, bxs, size, method, gamma, beta, **options))
        scores = np.concatenate(parts) if parts else np.zeros(0)
    frame = pd.DataFrame({
        "image": pd.Series(np.asarray(counts.images, dtype=object)[counts.image_index], dtype=object),
        "box": counts.box_index,
        "x1": counts.boxes[:, 0],
        "y1": counts.boxes[:, 1],
        "x2": counts.boxes[:, 2],
        "y2": counts.boxes[:, 3],
        "n_fixations": counts.counts,
        "score": scores,
        "rank": counts.ranks(scores),
        "label": counts.labels(scores, group_size),
    })
    frame.attrs.update(params)
    if target is not None:
        _write_table(frame, target)
    return frame
