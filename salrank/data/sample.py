"""The embedded sample: ten SALICON example images with their official fixations.

Files live in ``salrank/sample_data/salicon_examples/``: ``images/*.jpg``, ``fixations.json``
(the SALICON 2015 JSON example file), ``boxes.json`` (COCO-style object boxes made by the
project) and ``ATTRIBUTION.md`` (sources and licences).
"""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path

import numpy as np

from salrank.data.salicon import Fixations, load_salicon

__all__ = [
    "salicon_examples_dir",
    "load_salicon_examples",
    "salicon_example_images",
    "load_salicon_example_boxes",
    "load_coco_boxes",
]


def salicon_examples_dir() -> Path:
    """Directory of the embedded SALICON examples."""
    return Path(str(files("salrank") / "sample_data" / "salicon_examples"))


def load_salicon_examples() -> dict[str, Fixations]:
    """Fixations of the ten example images, keyed by file stem (points ``(x, y)`` 0-based)."""
    return load_salicon(salicon_examples_dir() / "fixations.json", cache=False, progress=False)


def salicon_example_images() -> dict[str, Path]:
    """``{file stem: path}`` of the example images, sorted by stem."""
    return {p.stem: p for p in sorted((salicon_examples_dir() / "images").glob("*.jpg"))}


def load_coco_boxes(path: str | os.PathLike, *, skip_crowd: bool = False) -> dict[str, np.ndarray]:
    """Boxes of a COCO-style file as ``{file stem: (K, 4) float64 [x1, y1, x2, y2]}`` (pixels).

    Reads ``images[]`` (``id``, ``file_name``) and ``annotations[]`` (``image_id``, ``bbox`` =
    ``[x, y, w, h]``); boxes keep the file's order; images without boxes map to ``(0, 4)``.
    ``skip_crowd``: leave out annotations with ``iscrowd`` 1 (COCO's boxes around groups).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: malformed file (the message names the file and the field).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COCO boxes file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: field 'images' is missing or not a list")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise ValueError(f"{path}: field 'annotations' must be a list")
    stem_of: dict[str, str] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise ValueError(f"{path}: images[{i}] needs fields 'id' and 'file_name'")
        stem_of[str(img["id"])] = Path(str(img["file_name"])).stem
    boxes: dict[str, list[list[float]]] = {stem: [] for stem in stem_of.values()}
    for j, ann in enumerate(annotations):
        if not isinstance(ann, dict) or "image_id" not in ann or "bbox" not in ann:
            raise ValueError(f"{path}: annotations[{j}] needs fields 'image_id' and 'bbox'")
        stem = stem_of.get(str(ann["image_id"]))
        if stem is None:
            raise ValueError(f"{path}: annotations[{j}].image_id {ann['image_id']!r} is not in images[]")
        bbox = ann["bbox"]
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
            or bbox[2] < 0
            or bbox[3] < 0
        ):
            raise ValueError(
                f"{path}: annotations[{j}].bbox must be [x, y, w, h] with w, h >= 0, got {bbox!r}"
            )
        if skip_crowd and ann.get("iscrowd", 0):
            continue
        x, y, w, h = (float(v) for v in bbox)
        boxes[stem].append([x, y, x + w, y + h])
    return {stem: np.asarray(b, dtype=np.float64).reshape(-1, 4) for stem, b in boxes.items()}


def load_salicon_example_boxes(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Object boxes of the example images: ``{file stem: (K, 4) float64 [x1, y1, x2, y2]}``.

    Reads ``boxes.json`` of the sample directory (or ``path``). Raises ``FileNotFoundError``
    with an explanation when the file has not been generated yet.
    """
    target = Path(path) if path is not None else salicon_examples_dir() / "boxes.json"
    if not target.is_file():
        raise FileNotFoundError(
            f"example boxes not found: {target} (boxes.json is part of the embedded sample; "
            "it is missing from this installation or has not been generated yet)"
        )
    return load_coco_boxes(target)
