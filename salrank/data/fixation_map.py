"""Fixation maps: fixation points blurred into a continuous map, the SALICON API's convention."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from salrank.data.salicon import Fixations

__all__ = ["SALICON_SIGMA", "fixation_map", "binary_fixation_map"]

#: Gaussian sigma (pixels at SALICON's native 640 x 480) used by the SALICON API.
SALICON_SIGMA = 19.0


def _points_and_size(
    fixations: Fixations | np.ndarray, image_size: tuple[int, int] | None
) -> tuple[np.ndarray, int, int]:
    if isinstance(fixations, Fixations):
        height, width = image_size if image_size is not None else fixations.image_size
        return fixations.points, int(height), int(width)
    if image_size is None:
        raise ValueError("image_size=(height, width) is needed when fixations is a plain array")
    points = np.asarray(fixations, dtype=np.float64)
    if points.size == 0:
        points = points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {points.shape}")
    return points, int(image_size[0]), int(image_size[1])


def binary_fixation_map(
    fixations: Fixations | np.ndarray, *, image_size: tuple[int, int] | None = None
) -> np.ndarray:
    """``(H, W)`` float64 map with 1 at each fixated pixel, 0 elsewhere.

    A point ``(x, y)`` (0-based) marks pixel ``(round(y), round(x))`` (halves round up); points
    rounding to a pixel outside the image are ignored. Several points on one pixel still give 1.
    ``image_size`` (``(height, width)``) is required for a plain ``(N, 2)`` array and
    overrides a :class:`Fixations`' own size otherwise.
    """
    points, height, width = _points_and_size(fixations, image_size)
    out = np.zeros((height, width), dtype=np.float64)
    if len(points) == 0:
        return out
    cols = np.floor(points[:, 0] + 0.5).astype(np.int64)
    rows = np.floor(points[:, 1] + 0.5).astype(np.int64)
    keep = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    out[rows[keep], cols[keep]] = 1.0
    return out


def fixation_map(
    fixations: Fixations | np.ndarray,
    sigma: float = SALICON_SIGMA,
    *,
    image_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """``(H, W)`` float64 fixation map in ``[0, 1]``, as the SALICON API builds it.

    The :func:`binary_fixation_map` is blurred with ``scipy.ndimage.gaussian_filter`` (``sigma``
    in pixels of the native image size, default 19; border mode ``reflect``) and min-max scaled
    to ``[0, 1]``. ``sigma=0`` returns the binary map itself. No fixations gives all zeros.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    binary = binary_fixation_map(fixations, image_size=image_size)
    if not binary.any():
        return binary
    blurred = gaussian_filter(binary, sigma=float(sigma)) if sigma > 0 else binary
    low, high = blurred.min(), blurred.max()
    if high <= low:  # every pixel fixated: a constant map
        return np.ones_like(blurred)
    return (blurred - low) / (high - low)
