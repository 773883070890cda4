"""Validation and normalisation of the inputs of the ground-truth code.

Conventions: points are ``(x, y)`` pixel coordinates, 0-based, shape ``(N, 2)``; boxes are
``[x1, y1, x2, y2]`` pixels, shape ``(K, 4)``; ``image_size = (height, width)`` in pixels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_points", "as_boxes", "as_image_size", "clip_boxes", "box_areas"]


def as_points(points, name: str = "points") -> np.ndarray:
    """``points`` as a float64 ``(N, 2)`` array of finite ``(x, y)`` coordinates.

    An empty sequence gives a ``(0, 2)`` array. Raises :class:`ValueError` on a wrong shape or a
    NaN/infinite coordinate.
    """
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) as (x, y) pairs, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"{name} contains a NaN or infinite coordinate (row {bad}: {arr[bad].tolist()})")
    return np.ascontiguousarray(arr)


def as_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """``boxes`` as a float64 ``(K, 4)`` array of finite ``[x1, y1, x2, y2]`` with ``x1 <= x2``
    and ``y1 <= y2``.

    An empty sequence gives a ``(0, 4)`` array. Raises :class:`ValueError` on a wrong shape, a
    NaN/infinite coordinate or an inverted box (often an ``[x, y, w, h]`` box passed by mistake).
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (K, 4) as [x1, y1, x2, y2], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"{name} contains a NaN or infinite coordinate (box {bad}: {arr[bad].tolist()})")
    inverted = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if inverted.any():
        bad = int(np.flatnonzero(inverted)[0])
        raise ValueError(
            f"{name}[{bad}] = {arr[bad].tolist()} has x2 < x1 or y2 < y1; boxes must be [x1, y1, x2, y2]"
        )
    return np.ascontiguousarray(arr)


def as_image_size(image_size) -> tuple[int, int]:
    """``image_size`` as ``(height, width)`` positive integers; :class:`ValueError` otherwise."""
    try:
        values = [float(v) for v in image_size]
    except TypeError as exc:
        raise ValueError(f"image_size must be (height, width), got {image_size!r}") from exc
    if len(values) != 2 or not all(np.isfinite(v) and v > 0 and float(v).is_integer() for v in values):
        raise ValueError(f"image_size must be two positive integers (height, width), got {image_size!r}")
    return int(values[0]), int(values[1])


def clip_boxes(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Boxes clipped to the image ``[0, width] x [0, height]`` (a box outside it becomes empty)."""
    height, width = image_size
    out = boxes.copy()
    out[:, 0] = np.clip(boxes[:, 0], 0.0, width)
    out[:, 2] = np.clip(boxes[:, 2], 0.0, width)
    out[:, 1] = np.clip(boxes[:, 1], 0.0, height)
    out[:, 3] = np.clip(boxes[:, 3], 0.0, height)
    return out


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas ``(x2 - x1) * (y2 - y1)`` in square pixels of ``[x1, y1, x2, y2]`` boxes."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
