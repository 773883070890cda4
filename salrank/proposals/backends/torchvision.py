"""torchvision's COCO detectors: Faster R-CNN (v1, v2, MobileNetV3), RetinaNet (v1, v2), FCOS, SSD300, SSDlite320.

The models are built with ``weights=None, weights_backbone=None`` (no network). With
``pretrained=True`` the published COCO file is loaded through :mod:`salrank.weights` (so an offline
machine gets our :class:`~salrank.weights.WeightsNotFoundError`, not a torch.hub error); before
loading, the backbone's batch norms are frozen exactly as torchvision's builders do for trained
models (``FrozenBatchNorm2d``, ``eps = 0`` for the v1 Faster R-CNN and RetinaNet files).
torchvision resizes internally and returns boxes in original-image pixels; labels are COCO
category ids (1..90).
"""

from __future__ import annotations

import numpy as np

from salrank.proposals.registry import Detections, Detector, detector_info

__all__ = ["TorchvisionDetector", "build_torchvision_model", "freeze_batchnorm"]

# name -> (eps of the frozen backbone batch norms when pretrained, or None: torchvision keeps BatchNorm2d;
#          the keyword names of the score threshold and detections-per-image options)
_MODELS: dict[str, tuple[float | None, str, str]] = {
    "fasterrcnn_resnet50_fpn": (0.0, "box_score_thresh", "box_detections_per_img"),
    "fasterrcnn_resnet50_fpn_v2": (None, "box_score_thresh", "box_detections_per_img"),
    "fasterrcnn_mobilenet_v3_large_fpn": (1e-5, "box_score_thresh", "box_detections_per_img"),
    "retinanet_resnet50_fpn": (0.0, "score_thresh", "detections_per_img"),
    "retinanet_resnet50_fpn_v2": (None, "score_thresh", "detections_per_img"),
    "fcos_resnet50_fpn": (1e-5, "score_thresh", "detections_per_img"),
    "ssd300_vgg16": (None, "score_thresh", "detections_per_img"),
    "ssdlite320_mobilenet_v3_large": (None, "score_thresh", "detections_per_img"),
}


def freeze_batchnorm(module, eps: float):
    """Replace every ``BatchNorm2d`` under ``module`` by a ``FrozenBatchNorm2d`` with ``eps`` (in place).

    Matches the layout of torchvision's trained detectors, whose backbones use frozen batch norms.
    """
    import torch.nn as nn
    from torchvision.ops import FrozenBatchNorm2d

    for child_name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, child_name, frozen)
        else:
            freeze_batchnorm(child, eps)
    return module


def build_torchvision_model(name: str, pretrained_layout: bool = False, **options):
    """torchvision's detector ``name`` with random weights, built without touching the network.

    ``pretrained_layout``: freeze the backbone's batch norms as torchvision does for its trained
    models, so that the published state dict loads with ``strict=True``. ``options`` go to the
    model's constructor (``min_size``, ``box_score_thresh``, ...).
    """
    import torchvision

    if name not in _MODELS:
        raise KeyError(f"unknown torchvision detector {name!r}; known: {', '.join(_MODELS)}")
    model = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=91, **options)
    frozen_eps = _MODELS[name][0]
    if pretrained_layout and frozen_eps is not None:
        freeze_batchnorm(model.backbone.body, frozen_eps)
    return model


class TorchvisionDetector(Detector):
    """One of torchvision's detectors (``name`` as in :func:`torchvision.models.get_model`).

    ``min_size``/``max_size`` (R-CNN, RetinaNet and FCOS only): torchvision's internal resize
    (defaults 800/1333; small values make tests fast); ``model_options``: further keyword
    arguments of the torchvision model (e.g. ``rpn_post_nms_top_n_test`` of the R-CNNs).
    """

    def __init__(self, name: str = "fasterrcnn_resnet50_fpn", pretrained: bool = True, weights=None,
                 device=None, min_size: int | None = None, max_size: int | None = None,
                 model_options: dict | None = None, check_hash: bool | None = None, **kwargs) -> None:
        super().__init__(device=device, **kwargs)
        info = detector_info(name)
        self.name = info.name
        _, thresh_kw, count_kw = _MODELS[info.name]
        options = {thresh_kw: self.score_threshold, count_kw: self.max_detections}
        if min_size is not None or max_size is not None:
            if info.name.startswith("ssd"):
                raise ValueError(f"{name}: min_size/max_size do not apply (fixed input {info.image_size})")
            options.update({k: v for k, v in (("min_size", min_size), ("max_size", max_size)) if v is not None})
        options.update(model_options or {})
        if pretrained:
            from salrank.weights import load_state_dict

            state = load_state_dict(info.weights, weights, check=check_hash)  # first: fail fast when missing
            model = build_torchvision_model(info.name, pretrained_layout=True, **options)
            from salrank.weights import load_into

            load_into(model, info.weights, weights, state=state)
        else:
            model = build_torchvision_model(info.name, **options)
        self.model = model.eval().to(self.device)
        self.options = {"pretrained": bool(pretrained), "min_size": min_size, "max_size": max_size,
                        **{k: v for k, v in (model_options or {}).items() if isinstance(v, (int, float, str))}}

    def _to_tensor(self, image: np.ndarray):
        import torch

        return torch.from_numpy(image).to(self.device).permute(2, 0, 1).float().div_(255.0)

    def _detect_batch(self, images: list[np.ndarray], keys: list[str] | None) -> list[Detections]:
        outputs = self.model([self._to_tensor(im) for im in images])
        results = []
        for out, im in zip(outputs, images, strict=True):
            boxes = out["boxes"].float().cpu().numpy()
            h, w = im.shape[:2]
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
            results.append(Detections(boxes, out["scores"].float().cpu().numpy(), out["labels"].cpu().numpy()))
        return results
