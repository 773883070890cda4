"""SynthSal's noisy oracle detector: the true boxes, jittered, with misses and false positives
(:func:`oracle_detections`; per image of a dataset: :func:`oracle_for_dataset`)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from salrank.data.synthsal.dataset import SynthSalSplit
from salrank.data.synthsal.scene import _as_generator


def oracle_detections(
    true_boxes,
    image_size: tuple[int, int],
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
    *,
    jitter: float = 0.1,
    miss_rate: float = 0.1,
    false_positives: float = 1.0,
    tp_score: tuple[float, float] = (8.0, 2.0),
    fp_score: tuple[float, float] = (2.0, 5.0),
    fp_size: tuple[float, float] = (0.05, 0.5),
    return_source: bool = False,
):
    """A simulated detector: the true boxes, jittered, with misses and false positives.

    Args:
        true_boxes: (K, 4) ``[x1, y1, x2, y2]`` pixels inside the image, ``x2 > x1``, ``y2 > y1``.
        image_size: ``(height, width)``.
        seed: int, SeedSequence or Generator; the output is a deterministic function of it.
        jitter: each edge moves by ``U(-jitter, jitter)`` times the box's width (x edges) or
            height (y edges); then clipped to the image. In ``[0, 0.5)`` so boxes stay valid.
        miss_rate: probability that a true box is not detected.
        false_positives: mean (Poisson) number of random boxes per image; their width and
            height are ``U(*fp_size)`` times the image's, placed uniformly inside the image.
        tp_score, fp_score: Beta ``(a, b)`` of the scores of true and false detections (the
            defaults have means 0.8 and 0.29).
        return_source: also return ``source`` (M,) int64: the index of the true box each
            detection comes from, -1 for false positives.

    Returns:
        ``boxes`` (M, 4) float64 ``[x1, y1, x2, y2]``, ``scores`` (M,) in (0, 1] sorted
        descending (ties keep true boxes first, in index order), ``labels`` (M,) int64, all 1
        (class-agnostic "object"), and ``source`` if asked.
    """
    boxes = np.asarray(true_boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"true_boxes must have shape (K, 4), got {boxes.shape}")
    H, W = (int(v) for v in image_size)
    if H <= 0 or W <= 0:
        raise ValueError(f"image_size must be positive (height, width), got {image_size}")
    if np.any(boxes[:, 2] <= boxes[:, 0]) or np.any(boxes[:, 3] <= boxes[:, 1]):
        raise ValueError("true_boxes must satisfy x2 > x1 and y2 > y1")
    if not 0 <= jitter < 0.5:
        raise ValueError(f"jitter must be in [0, 0.5), got {jitter}")
    if not 0 <= miss_rate <= 1:
        raise ValueError(f"miss_rate must be in [0, 1], got {miss_rate}")
    if false_positives < 0:
        raise ValueError(f"false_positives must be >= 0, got {false_positives}")
    lo, hi = fp_size
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"fp_size must satisfy 0 < lo <= hi <= 1, got {fp_size}")
    rng = _as_generator(seed)
    K = boxes.shape[0]
    wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    moved = boxes + rng.uniform(-jitter, jitter, size=(K, 4)) * wh
    moved = np.clip(moved, 0, [W, H, W, H])
    hit = rng.random(K) >= miss_rate
    tp_scores = rng.beta(*tp_score, size=K)
    n_fp = int(rng.poisson(false_positives))
    size = rng.uniform(lo, hi, size=(n_fp, 2)) * [W, H]
    corner = rng.random((n_fp, 2)) * ([W, H] - size)
    fp_boxes = np.concatenate([corner, corner + size], axis=1)
    fp_scores = rng.beta(*fp_score, size=n_fp)
    out_boxes = np.concatenate([moved[hit], fp_boxes]).reshape(-1, 4)
    scores = np.clip(np.concatenate([tp_scores[hit], fp_scores]), 1e-6, 1.0)
    source = np.concatenate([np.flatnonzero(hit), np.full(n_fp, -1)]).astype(np.int64)
    order = np.argsort(-scores, kind="stable")
    result = (out_boxes[order], scores[order], np.ones(order.size, dtype=np.int64))
    return (*result, source[order]) if return_source else result


def oracle_for_dataset(
    data: SynthSalSplit | Mapping[str, np.ndarray],
    *,
    image_size: tuple[int, int] | Mapping[str, tuple[int, int]] | None = None,
    seed: int = 0,
    **oracle_kwargs,
) -> list[dict]:
    """:func:`oracle_detections` for every image, as COCO detection-results records.

    ``data``: a :class:`SynthSalSplit` or ``{stem: (K, 4) boxes}`` (then ``image_size``, one
    ``(height, width)`` or one per stem, is required). Image ``stem`` uses the seed
    ``SeedSequence(seed, spawn_key=(crc32(stem),))``, so its detections do not depend on the
    other images. Returns ``[{"image_id": stem, "bbox": [x, y, w, h], "score": s,
    "category_id": 1}, ...]`` in image order, each image's records by descending score.
    """
    if isinstance(data, SynthSalSplit):
        boxes, image_size = data.boxes, image_size or data.image_size
    else:
        boxes = data
    if image_size is None:
        raise ValueError("oracle_for_dataset: image_size is required when data is a mapping of boxes")
    records = []
    for stem, true_boxes in boxes.items():
        size = image_size[stem] if isinstance(image_size, Mapping) else image_size
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(zlib.crc32(stem.encode()),)))
        det, scores, labels = oracle_detections(true_boxes, size, rng, **oracle_kwargs)
        for box, score, label in zip(det, scores, labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            records.append({"image_id": stem, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score),
                            "category_id": int(label)})
    return records
