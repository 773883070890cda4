"""Image files: read as RGB, or read only the size.

EXIF orientation is deliberately **not** applied: COCO/SALICON annotations refer to the pixels
as stored in the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from salrank.errors import UserFacingError

__all__ = ["ImageReadError", "load_image", "image_size"]


class ImageReadError(OSError, UserFacingError):
    """An image file is missing, unreadable or not an image; the message names the file."""


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageReadError(f"image not found: {path}")
    if not path.is_file():
        raise ImageReadError(f"not a file: {path}")
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB version of ``img``: alpha is dropped, palettes expanded, CMYK/YCbCr/LAB converted,
    16-bit and float grey scaled to 8 bits (16-bit: ``v / 257``; float: clipped to ``[0, 255]``)."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if img.mode != "F":
            values = values / 257.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    return img.convert("RGB")


def load_image(path: str | os.PathLike) -> Image.Image:
    """Read an image file as a fully decoded RGB :class:`PIL.Image.Image`.

    Grayscale, 16-bit, RGBA/LA (alpha dropped), palette and CMYK images are converted to RGB.

    Raises:
        ImageReadError: the file is missing, truncated or not an image.
    """
    path = Path(path)
    img = _open(path)
    try:
        with img:
            img.load()
            return _to_rgb(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"cannot decode image {path}: {exc}") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header without decoding the pixels.

    Raises:
        ImageReadError: the file is missing or not an image.
    """
    path = Path(path)
    with _open(path) as img:
        width, height = img.size
    return (int(height), int(width))
