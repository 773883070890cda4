"""Data layer: SALICON fixations (2015 JSON / 2017 .mat), fixation maps, splits, images, samples.

Conventions: points ``(x, y)`` 0-based pixels; boxes ``[x1, y1, x2, y2]``; sizes ``(height, width)``.
"""

from __future__ import annotations

from salrank.data.fixation_map import SALICON_SIGMA, binary_fixation_map, fixation_map
from salrank.data.images import ImageReadError, image_size, load_image
from salrank.data.salicon import (
    Fixations,
    SaliconFormatError,
    SaliconPointsDroppedWarning,
    load_salicon,
    save_salicon_json,
    save_salicon_mat,
)
from salrank.data.sample import (
    load_coco_boxes,
    load_salicon_example_boxes,
    load_salicon_examples,
    salicon_example_images,
    salicon_examples_dir,
)
from salrank.data.splits import SplitSizeWarning, paper_splits

__all__ = [
    "Fixations",
    "ImageReadError",
    "SALICON_SIGMA",
    "SaliconFormatError",
    "SaliconPointsDroppedWarning",
    "SplitSizeWarning",
    "binary_fixation_map",
    "fixation_map",
    "image_size",
    "load_coco_boxes",
    "load_image",
    "load_salicon",
    "load_salicon_example_boxes",
    "load_salicon_examples",
    "paper_splits",
    "salicon_example_images",
    "salicon_examples_dir",
    "save_salicon_json",
    "save_salicon_mat",
]
