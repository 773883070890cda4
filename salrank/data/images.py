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

__all__ = ["ImageReadError", "load_image", "load_image_bounded", "image_size", "MAX_IMAGE_PIXELS", "DEFAULT_MAX_SIDE"]

#: images with more pixels than this are refused before decoding (decompression-bomb guard; PIL's
#: own limit, about 89.5 megapixels, e.g. 9460 x 9460)
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
#: :func:`load_image_bounded`'s default: a longer side above this many pixels is scaled down to it
DEFAULT_MAX_SIDE = 2048


class ImageReadError(OSError, UserFacingError):
    """An image file is missing, unreadable or not an image; the message names the file."""


def _open(path: Path, max_pixels: int | None = None) -> Image.Image:
    """The opened (not decoded) image; refuses more than ``max_pixels`` (default
    :data:`MAX_IMAGE_PIXELS`) pixels from the header alone."""
    if not path.exists():
        raise ImageReadError(f"image not found: {path}")
    if not path.is_file():
        raise ImageReadError(f"not a file: {path}")
    limit = MAX_IMAGE_PIXELS if max_pixels is None else int(max_pixels)
    try:
        img = Image.open(path)
    except Image.DecompressionBombError:
        img = None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from None
    if img is None or img.width * img.height > limit:
        size = "" if img is None else f" ({img.width} x {img.height} pixels)"
        if img is not None:
            img.close()
        raise ImageReadError(f"refusing image {path}{size}: more than {limit:,} pixels "
                             "(a decompression bomb?); scale it down first")
    return img


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


def load_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> Image.Image:
    """Read an image file as a fully decoded RGB :class:`PIL.Image.Image`.

    Grayscale, 16-bit, RGBA/LA (alpha dropped), palette and CMYK images are converted to RGB.

    Raises:
        ImageReadError: the file is missing, truncated or not an image, or has more than
            ``max_pixels`` pixels (default :data:`MAX_IMAGE_PIXELS`).
    """
    return load_image_bounded(path, max_side=None, max_pixels=max_pixels)[0]


def load_image_bounded(path: str | os.PathLike, max_side: int | None = DEFAULT_MAX_SIDE, *,
                       max_pixels: int | None = None) -> tuple[Image.Image, tuple[float, float]]:
    """``(rgb image, (sx, sy))``: the image scaled down so that its longer side is at most
    ``max_side`` pixels (``None`` or 0: never), and the factors mapping its pixels back to the
    file's (``x_file = x * sx``, ``y_file = y * sy``; ``(1.0, 1.0)`` when not scaled). JPEGs
    are decoded at a reduced scale (``Image.draft``), so a huge photo never takes full-size memory.

    Raises:
        ImageReadError: as :func:`load_image`.
    """
    path = Path(path)
    img = _open(path, max_pixels)
    try:
        with img:
            width, height = img.size
            target = _bounded_size(width, height, max_side)
            if target != (width, height) and img.format == "JPEG":
                img.draft("RGB", target)  # decode at 1/2, 1/4 or 1/8 scale, still >= target
            img.load()
            rgb = _to_rgb(img)
        if rgb.size != target:
            rgb = rgb.resize(target, Image.Resampling.LANCZOS)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"cannot decode image {path}: {exc}") from None
    return rgb, (width / target[0], height / target[1])


def _bounded_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return (width, height)
    scale = max_side / max(width, height)
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header without decoding the pixels.

    Raises:
        ImageReadError: the file is missing or not an image.
    """
    path = Path(path)
    with _open(path, max_pixels=2**62) as img:  # the header only: no limit needed
        width, height = img.size
    return (int(height), int(width))
