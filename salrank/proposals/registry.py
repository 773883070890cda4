"""The detector interface and its registry (timm-like: :func:`create_detector`, :func:`list_detectors`).

A detector takes a batch of RGB images (PIL images or ``H x W x 3`` ``uint8`` arrays) and gives,
per image, a :class:`Detections`: boxes ``[x1, y1, x2, y2]`` in pixels of the *original* image,
scores in ``[0, 1]`` and integer labels, sorted by descending score. Backends register
themselves with :func:`register_detector`; they are imported lazily, so listing the detectors
never imports a deep-learning framework it does not need.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Detections",
    "Detector",
    "ImageLike",
    "DetectorInfo",
    "register_detector",
    "create_detector",
    "list_detectors",
    "detector_info",
    "as_rgb_array",
]

try:  # PIL is a hard dependency, but keep the type alias importable without it
    from PIL import Image as _PILImage

    ImageLike = np.ndarray | _PILImage.Image
except ImportError:  # pragma: no cover
    ImageLike = np.ndarray  # type: ignore[misc]


@dataclass(frozen=True)
class Detections:
    """Detections of one image, sorted by descending score.

    ``boxes``: ``(N, 4)`` float32, ``[x1, y1, x2, y2]`` pixels of the original image;
    ``scores``: ``(N,)`` float32 in ``[0, 1]``; ``labels``: ``(N,)`` int64 (COCO category ids for
    the COCO-trained detectors, 1..90).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        labels = np.asarray(self.labels).reshape(-1).astype(np.int64)
        if not (len(boxes) == len(scores) == len(labels)):
            raise ValueError(
                f"Detections: {len(boxes)} boxes, {len(scores)} scores and {len(labels)} labels differ in length"
            )
        order = np.argsort(-scores, kind="stable")
        object.__setattr__(self, "boxes", boxes[order])
        object.__setattr__(self, "scores", scores[order])
        object.__setattr__(self, "labels", labels[order])

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def select(self, index) -> Detections:
        """The detections at ``index`` (an index array or a boolean mask)."""
        return Detections(self.boxes[index], self.scores[index], self.labels[index])


def as_rgb_array(image: ImageLike, what: str = "image") -> np.ndarray:
    """``image`` as a contiguous ``H x W x 3`` ``uint8`` RGB array (PIL images are converted to RGB).

    Raises ``TypeError``/``ValueError`` naming ``what`` for anything else.
    """
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        return np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{what}: expected a PIL image or an HxWx3 uint8 array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what}: expected an HxWx3 array, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what}: expected dtype uint8, got {image.dtype}")
    return np.ascontiguousarray(image)


class Detector(abc.ABC):
    """Base class of the backends.

    Subclasses implement :meth:`_detect_batch` on a list of ``uint8`` RGB arrays and return raw
    detections; this class converts the inputs, splits them into batches, runs under
    ``torch.inference_mode``, drops detections below ``score_threshold`` and keeps at most
    ``max_detections`` per image (highest scores first).
    """

    name: str = ""

    def __init__(self, *, device=None, score_threshold: float = 0.05, max_detections: int = 100,
                 batch_size: int = 8) -> None:
        from salrank.config import resolve_device
        from salrank.errors import check_int, check_number

        check_number("score_threshold", score_threshold, 0.0, 1.0)
        check_int("max_detections", max_detections, 1)
        check_int("batch_size", batch_size, 1)
        self.device = resolve_device(device or _default_device())
        self.score_threshold = float(score_threshold)
        self.max_detections = int(max_detections)
        self.batch_size = int(batch_size)
        self.options: dict = {}  # what else determines the output (weights, input size, seed, ...)

    def settings(self) -> dict:
        """JSON-able description of everything that determines this detector's output."""
        return {"name": self.name, "score_threshold": self.score_threshold,
                "max_detections": self.max_detections, **self.options}

    @abc.abstractmethod
    def _detect_batch(self, images: list[np.ndarray], keys: list[str] | None) -> list[Detections]:
        """Detections for one batch of ``H x W x 3`` uint8 RGB arrays (any sizes)."""

    def detect(self, images: ImageLike | Sequence[ImageLike], keys: Sequence[str] | None = None,
               batch_size: int | None = None) -> list[Detections]:
        """Detections for each image (one :class:`Detections` per image, in input order).

        ``images``: one image or a sequence of them (PIL or ``H x W x 3`` uint8 RGB arrays, any
        sizes); ``keys`` name the images (e.g. file stems), only some backends need them
        (``oracle``); ``batch_size``: images per forward pass (default: the detector's).
        """
        import torch

        single = isinstance(images, np.ndarray) and images.ndim == 3 or hasattr(images, "convert")
        if single:
            images = [images]  # type: ignore[list-item]
        arrays = [as_rgb_array(im, what=f"image {i}") for i, im in enumerate(images)]  # type: ignore[union-attr]
        if keys is not None:
            keys = [str(k) for k in keys]
            if len(keys) != len(arrays):
                raise ValueError(f"{len(keys)} keys for {len(arrays)} images")
        step = int(batch_size or self.batch_size)
        out: list[Detections] = []
        with torch.inference_mode():
            for start in range(0, len(arrays), step):
                batch_keys = None if keys is None else keys[start : start + step]
                for det in self._detect_batch(arrays[start : start + step], batch_keys):
                    det = det.select(det.scores >= self.score_threshold)
                    out.append(det.select(slice(0, self.max_detections)))
        return out

    __call__ = detect

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={str(self.device)!r})"


def _default_device() -> str:
    from salrank.config import get_settings

    return get_settings().device


@dataclass(frozen=True)
class DetectorInfo:
    """A registered detector: its name, the module defining it and a one-line description."""

    name: str
    module: str
    factory: str
    description: str = ""
    weights: str | None = None  # the salrank.weights name of its pretrained file, if any
    extra: str | None = None  # the pip extra it needs, if optional
    image_size: tuple[int, int] | None = None  # the native input size (height, width), if fixed


_REGISTRY: dict[str, DetectorInfo] = {}
_ALIASES: dict[str, str] = {}


def register_detector(info: DetectorInfo, *aliases: str) -> DetectorInfo:
    """Register a detector (``module:factory`` is imported only when the detector is created)."""
    if info.name in _REGISTRY and _REGISTRY[info.name] != info:
        raise ValueError(f"detector {info.name!r} is already registered")
    _REGISTRY[info.name] = info
    for alias in aliases:
        _ALIASES[alias] = info.name
    return info


def _canonical(name: str) -> str:
    name = name.strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    if name not in _REGISTRY:
        known = ", ".join(list_detectors())
        raise KeyError(f"unknown detector {name!r}; known: {known}")
    return name


def detector_info(name: str) -> DetectorInfo:
    """The registration of ``name`` (aliases accepted)."""
    return _REGISTRY[_canonical(name)]


def list_detectors(pattern: str | None = None) -> list[str]:
    """Names of the registered detectors, sorted (``pattern``: an ``fnmatch`` filter)."""
    import fnmatch

    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def create_detector(name: str, pretrained: bool = True, weights=None, device=None, seed: int = 0,
                    **kwargs: Any) -> Detector:
    """Build the detector ``name``; its randomly initialised layers (every layer with
    ``pretrained=False``) come from ``seed``, recorded in ``settings()["init_seed"]`` when random.

    ``pretrained``: load its published weights through :mod:`salrank.weights` (raising
    :class:`salrank.weights.WeightsNotFoundError` with the file name and URL when offline);
    ``weights``: an explicit weight file (or a folder holding it); ``device``: ``None`` for the
    settings' default. Other keyword arguments go to the backend (``score_threshold``,
    ``max_detections``, ``batch_size``, and backend-specific ones such as ``min_size``).
    """
    info = _REGISTRY[_canonical(name)]
    module = importlib.import_module(info.module)
    factory: Callable[..., Detector] = getattr(module, info.factory)
    if "seed" in inspect.signature(factory).parameters:  # the backend uses the seed itself (oracle)
        return factory(info.name, pretrained=pretrained, weights=weights, device=device, seed=seed, **kwargs)
    import torch

    from salrank.errors import check_int

    check_int("seed", seed, 0)
    with torch.random.fork_rng(devices=[]):  # random layers (all of them with pretrained=False) from the seed
        torch.manual_seed(seed)
        detector = factory(info.name, pretrained=pretrained, weights=weights, device=device, **kwargs)
    if not pretrained:
        detector.options["init_seed"] = int(seed)
    return detector


# --- the built-in detectors ----------------------------------------------------------------------
_EFFDET_SIZES = {0: 512, 1: 640, 2: 768, 3: 896, 4: 1024, 5: 1280, 6: 1280, 7: 1536}
for _d, _size in _EFFDET_SIZES.items():
    register_detector(
        DetectorInfo(
            name=f"efficientdet_d{_d}",
            module="salrank.proposals.backends.effdet",
            factory="EfficientDetDetector",
            description=f"EfficientDet-D{_d} (effdet tf_efficientdet_d{_d}, COCO; the paper's detector family)",
            weights=f"tf_efficientdet_d{_d}.coco",
            image_size=(_size, _size),
        ),
        *((["efficientdet"] if _d == 0 else []) + [f"tf_efficientdet_d{_d}"]),
    )

_TORCHVISION = {
    "fasterrcnn_resnet50_fpn": "Faster R-CNN ResNet50-FPN (torchvision v1, COCO)",
    "fasterrcnn_resnet50_fpn_v2": "Faster R-CNN ResNet50-FPN v2 (torchvision, COCO)",
    "fasterrcnn_mobilenet_v3_large_fpn": "Faster R-CNN MobileNetV3-Large FPN (torchvision, COCO)",
    "retinanet_resnet50_fpn": "RetinaNet ResNet50-FPN (torchvision v1, COCO)",
    "retinanet_resnet50_fpn_v2": "RetinaNet ResNet50-FPN v2 (torchvision, COCO)",
    "fcos_resnet50_fpn": "FCOS ResNet50-FPN (torchvision, COCO)",
    "ssd300_vgg16": "SSD300 VGG16 (torchvision, COCO)",
    "ssdlite320_mobilenet_v3_large": "SSDlite320 MobileNetV3-Large (torchvision, COCO)",
}
_TV_ALIASES = {"fasterrcnn_resnet50_fpn": ["faster_rcnn", "fasterrcnn"], "retinanet_resnet50_fpn": ["retinanet"],
               "fcos_resnet50_fpn": ["fcos"], "ssd300_vgg16": ["ssd"], "ssdlite320_mobilenet_v3_large": ["ssdlite"]}
for _name, _desc in _TORCHVISION.items():
    register_detector(
        DetectorInfo(
            name=_name,
            module="salrank.proposals.backends.torchvision",
            factory="TorchvisionDetector",
            description=_desc,
            weights=f"{_name}.tv_coco",
            image_size=(300, 300) if _name == "ssd300_vgg16" else (320, 320) if _name.startswith("ssdlite") else None,
        ),
        *_TV_ALIASES.get(_name, []),
    )

register_detector(
    DetectorInfo(
        name="yolov5su",
        module="salrank.proposals.backends.extras",
        factory="YoloDetector",
        description="YOLOv5s (ultralytics 'u' variant, COCO); needs the 'extras' extra (ultralytics)",
        weights="yolov5su.ultralytics",
        extra="extras",
    ),
    "yolov5",
    "yolo",
)
register_detector(
    DetectorInfo(
        name="detr_resnet50",
        module="salrank.proposals.backends.extras",
        factory="DetrDetector",
        description="DETR ResNet-50 (facebook/detr-resnet-50, COCO); needs the 'extras' extra (transformers)",
        extra="extras",
    ),
    "detr",
)
register_detector(
    DetectorInfo(
        name="oracle",
        module="salrank.proposals.backends.oracle",
        factory="OracleDetector",
        description="SynthSal noisy oracle: true boxes with jitter, misses and false positives (no weights)",
    ),
    "synthsal_oracle",
)
