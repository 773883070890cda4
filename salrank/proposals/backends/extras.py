"""Optional detectors: YOLOv5 (``ultralytics``) and DETR (``transformers``), for Table VI and Fig. 12.

Neither library is a core dependency: install them with ``pip install salrank[extras]``.
Creating one of these detectors without its library raises an ``ImportError`` that names the
extra. Both give COCO category ids as labels (YOLO's 80 contiguous classes are mapped).
"""

from __future__ import annotations

import importlib

import numpy as np

from salrank.proposals.registry import Detections, Detector, detector_info

__all__ = ["YoloDetector", "DetrDetector", "COCO80_TO_COCO91", "require_extra"]

# YOLO's 80 contiguous COCO classes -> COCO category ids (the 10 unused ids of 1..90 are skipped).
_UNUSED_COCO_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
COCO80_TO_COCO91 = np.array([i for i in range(1, 91) if i not in _UNUSED_COCO_IDS], dtype=np.int64)

DETR_HUB_ID = "facebook/detr-resnet-50"


def require_extra(module: str, detector: str, extra: str = "extras"):
    """Import ``module`` or raise an ``ImportError`` telling how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"detector {detector!r} needs the optional package {module!r}: "
            f"pip install 'salrank[{extra}]' (or pip install {module})"
        ) from exc


class YoloDetector(Detector):
    """YOLOv5s-u through ultralytics. ``image_size``: the square inference size (default 640)."""

    def __init__(self, name: str = "yolov5su", pretrained: bool = True, weights=None, device=None,
                 image_size: int = 640, check_hash: bool | None = None, **kwargs) -> None:
        super().__init__(device=device, **kwargs)
        ultralytics = require_extra("ultralytics", name)
        info = detector_info(name)
        self.name = info.name
        if pretrained:
            from salrank.weights import resolve

            source = str(resolve(info.weights, weights, check=check_hash))
        else:
            source = "yolov5s.yaml"  # the architecture only, randomly initialised (no download)
        self.model = ultralytics.YOLO(source, task="detect")
        self.image_size = int(image_size)
        self.options = {"pretrained": bool(pretrained), "image_size": self.image_size}

    def _detect_batch(self, images: list[np.ndarray], keys: list[str] | None) -> list[Detections]:
        results = self.model.predict(
            [np.ascontiguousarray(im[:, :, ::-1]) for im in images],  # ultralytics expects BGR arrays
            imgsz=self.image_size, conf=self.score_threshold, max_det=self.max_detections,
            device=str(self.device), verbose=False,
        )
        out = []
        for res in results:
            cls = res.boxes.cls.cpu().numpy().astype(np.int64)
            out.append(Detections(res.boxes.xyxy.float().cpu().numpy(), res.boxes.conf.float().cpu().numpy(),
                                  COCO80_TO_COCO91[cls.clip(0, 79)]))
        return out


class DetrDetector(Detector):
    """DETR ResNet-50 through transformers.

    Pretrained weights come from the Hugging Face cache (``weights``: a local folder saved with
    ``save_pretrained``, else ``facebook/detr-resnet-50``); offline without a cached copy this raises
    :class:`~salrank.weights.WeightsNotFoundError`. ``min_size``/``max_size``: the processor's resize.
    """

    def __init__(self, name: str = "detr_resnet50", pretrained: bool = True, weights=None, device=None,
                 min_size: int = 800, max_size: int = 1333, **kwargs) -> None:
        kwargs.pop("check_hash", None)
        super().__init__(device=device, **kwargs)
        transformers = require_extra("transformers", name)
        self.name = detector_info(name).name
        processor_kw = {"size": {"shortest_edge": int(min_size), "longest_edge": int(max_size)}}
        if pretrained:
            self.model = self._from_pretrained(transformers, str(weights) if weights else DETR_HUB_ID)
        else:
            config = transformers.DetrConfig(use_pretrained_backbone=False, num_labels=91)
            self.model = transformers.DetrForObjectDetection(config)
        self.processor = transformers.DetrImageProcessor(**processor_kw)
        self.options = {"pretrained": bool(pretrained), "min_size": int(min_size), "max_size": int(max_size)}
        self.model.eval().to(self.device)

    @staticmethod
    def _from_pretrained(transformers, source: str):
        from salrank.weights import WeightsNotFoundError, host_reachable

        cls = transformers.DetrForObjectDetection
        try:
            return cls.from_pretrained(source, local_files_only=True)
        except OSError:
            if source == DETR_HUB_ID and host_reachable("https://huggingface.co"):
                return cls.from_pretrained(source)
            raise WeightsNotFoundError(
                f"DETR weights {source!r} are not in the Hugging Face cache and huggingface.co is not reachable.\n"
                f"  download on a connected machine: DetrForObjectDetection.from_pretrained({DETR_HUB_ID!r})"
                ".save_pretrained(FOLDER)\n  then pass weights=FOLDER."
            ) from None

    def _detect_batch(self, images: list[np.ndarray], keys: list[str] | None) -> list[Detections]:
        inputs = self.processor(images=list(images), return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        sizes = [im.shape[:2] for im in images]
        processed = self.processor.post_process_object_detection(outputs, threshold=self.score_threshold,
                                                                 target_sizes=sizes)
        out = []
        for res, (h, w) in zip(processed, sizes, strict=True):
            boxes = res["boxes"].float().cpu().numpy()
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
            out.append(Detections(boxes, res["scores"].float().cpu().numpy(), res["labels"].cpu().numpy()))
        return out
