"""Speed of the dataset relabelling against a straightforward per-point Python loop.

:func:`benchmark` generates its own SALICON-like synthetic data (640 x 480 images, about 9,000
points and 10 boxes each, float coordinates), checks that the fast counts equal the loop's and
reports both times per image, their ratio and the time a 15,000-image relabel takes
(extrapolated from ``n_images``, or measured when ``n_images >= 15000``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from salrank import paper
from salrank.bench.core import random_boxes, stopwatch
from salrank.gt.counting import count_points_in_boxes_loop, points_inside_image
from salrank.gt.dataset import relabel_dataset
from salrank.gt.inputs import box_areas, clip_boxes
from salrank.gt.ranking import class_labels, ranks_from_scores
from salrank.gt.scores import ra_srgt_scores

__all__ = ["synthetic_dataset", "benchmark"]

SALICON_IMAGES = 15_000


def synthetic_dataset(n_images: int, points_per_image: int = 9000, boxes_per_image: int = 10,
                      image_size: tuple[int, int] = (480, 640), seed: int = 0):
    """``(fixations, boxes)`` mappings of synthetic images: points clustered around a few centres
    (float ``(x, y)`` inside the image) and float boxes ``[x1, y1, x2, y2]`` from
    :func:`~salrank.bench.core.random_boxes`."""
    rng = np.random.default_rng(seed)
    height, width = image_size
    fixations, boxes = {}, {}
    for i in range(n_images):
        centres = rng.uniform((0, 0), (width, height), size=(6, 2))
        which = rng.integers(0, len(centres), points_per_image)
        pts = centres[which] + rng.normal(0, 40, size=(points_per_image, 2))
        pts[:, 0] = np.clip(pts[:, 0], 0, np.nextafter(width, 0))
        pts[:, 1] = np.clip(pts[:, 1], 0, np.nextafter(height, 0))
        stem = f"synthetic_{i:06d}"
        fixations[stem] = SimpleNamespace(points=pts, height=height, width=width)
        boxes[stem] = random_boxes(rng, boxes_per_image, image_size)
    return fixations, boxes


def _relabel_loop(fixations, boxes, gamma: float, beta: float) -> dict:
    """The straightforward way: per image, a Python loop over the points for the counts."""
    out = {}
    for stem in sorted(boxes):
        fx = fixations[stem]
        bxs = clip_boxes(np.asarray(boxes[stem], dtype=np.float64), (fx.height, fx.width))
        counts = count_points_in_boxes_loop(fx.points, bxs)
        n = points_inside_image(fx.points, (fx.height, fx.width))
        scores = ra_srgt_scores(counts, n, box_areas(bxs), fx.height * fx.width, gamma, beta)
        out[stem] = (counts, ranks_from_scores(scores), class_labels(scores[:5]))
    return out


def benchmark(n_images: int = 100, points_per_image: int = 9000, boxes_per_image: int = 10, seed: int = 0,
              loop_images: int | None = None, gamma: float = paper.DEFAULT_GAMMA,
              beta: float = paper.DEFAULT_BETA) -> dict:
    """Time the relabelling (``ra-srgt``) of ``n_images`` synthetic images with the fast path
    (:func:`salrank.gt.relabel_dataset`, no cache, no progress bar) and of ``loop_images``
    (default ``min(n_images, 20)``) with the per-point loop; check both give the same counts and
    ranks. Times are CPU seconds of this process (:func:`time.process_time`, one core, robust to
    other load on a shared machine); the ``*_wall*`` entries give wall-clock seconds too.

    Returns a dict: ``loop_s_per_image``, ``fast_s_per_image``, ``speedup`` (their ratio),
    ``salicon_s`` (time of a 15,000-image relabel), ``salicon_s_measured`` (whether that was
    measured, ``n_images >= 15000``, rather than extrapolated), the same three in wall-clock
    time, the sizes and ``counts_equal`` (fast counts and ranks == the loop's).
    """
    fixations, boxes = synthetic_dataset(n_images, points_per_image, boxes_per_image, seed=seed)
    n_loop = min(n_images, 20) if loop_images is None else min(loop_images, n_images)
    loop_stems = sorted(boxes)[:n_loop]

    with stopwatch() as fast:
        table = relabel_dataset(fixations, boxes, gamma=gamma, beta=beta, cache=False, progress=False)
    with stopwatch() as loop:
        reference = _relabel_loop(fixations, {s: boxes[s] for s in loop_stems}, gamma, beta)
    fast_wall, fast_cpu, loop_wall, loop_cpu = fast.wall, fast.cpu, loop.wall, loop.cpu

    by_image = table[table["image"].isin(loop_stems)].groupby("image", sort=True)
    equal = all(
        np.array_equal(group["n_fixations"].to_numpy(), reference[stem][0])
        and np.array_equal(group["rank"].to_numpy(), reference[stem][1])
        for stem, group in by_image
    )
    n_loop = max(n_loop, 1)
    measured = n_images >= SALICON_IMAGES
    return {
        "n_images": n_images,
        "loop_images": n_loop,
        "points_per_image": points_per_image,
        "boxes_per_image": boxes_per_image,
        "loop_s_per_image": loop_cpu / n_loop,
        "fast_s_per_image": fast_cpu / n_images,
        "speedup": (loop_cpu / n_loop) / (fast_cpu / n_images),
        "salicon_s": fast_cpu if measured else fast_cpu / n_images * SALICON_IMAGES,
        "salicon_s_measured": measured,
        "loop_wall_s_per_image": loop_wall / n_loop,
        "fast_wall_s_per_image": fast_wall / n_images,
        "speedup_wall": (loop_wall / n_loop) / (fast_wall / n_images),
        "salicon_wall_s": fast_wall if measured else fast_wall / n_images * SALICON_IMAGES,
        "counts_equal": bool(equal),
    }
