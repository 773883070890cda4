"""Object proposals (FOSRNet Part 1): detectors, the paper's filtering, offline generation, coverage.

>>> from salrank.proposals import create_detector, list_detectors, filter_proposals
>>> "efficientdet_d0" in list_detectors()
True

Boxes are ``[x1, y1, x2, y2]`` in pixels of the original image; ``image_size`` is
``(height, width)``. See :func:`create_detector` for the backends (EfficientDet D0-D7, torchvision
detectors, YOLO and DETR as extras, the SynthSal oracle).
"""

from __future__ import annotations

from salrank.proposals.coverage import DEFAULT_IOU_THRESHOLDS, coverage_rate
from salrank.proposals.filtering import DEFAULTS as FILTER_DEFAULTS
from salrank.proposals.filtering import FilterResult, filter_proposals
from salrank.proposals.generate import generate_proposals, images_in_dir, read_proposals, sidecar_path
from salrank.proposals.registry import (
    Detections,
    Detector,
    DetectorInfo,
    create_detector,
    detector_info,
    list_detectors,
    register_detector,
)

__all__ = [
    "Detections",
    "Detector",
    "DetectorInfo",
    "create_detector",
    "detector_info",
    "list_detectors",
    "register_detector",
    "FilterResult",
    "filter_proposals",
    "FILTER_DEFAULTS",
    "coverage_rate",
    "DEFAULT_IOU_THRESHOLDS",
    "generate_proposals",
    "read_proposals",
    "images_in_dir",
    "sidecar_path",
]
