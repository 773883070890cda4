"""EfficientDet D0-D7 through ``effdet`` (the detector family the paper uses for its proposals).

The models are effdet's ``tf_efficientdet_d*`` (Google's COCO weights ported to PyTorch). Each
image is resized, keeping its aspect ratio, to fit the model's square input (512 px for D0 ...
1536 px for D7), pasted at the top-left of a canvas filled with the ImageNet mean (effdet's
evaluation transform), normalised, and the predicted boxes are mapped back to the original
image's pixels and clipped to it. Labels are COCO category ids (1..90).
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from salrank.proposals.registry import Detections, Detector, detector_info

__all__ = ["EfficientDetDetector", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _import_effdet():
    with warnings.catch_warnings():  # effdet scripts a function with the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        import effdet
    return effdet


class EfficientDetDetector(Detector):
    """EfficientDet-D0 ... D7 (``name`` = ``efficientdet_d<k>``).

    ``image_size``: override the square input size (pixels, a multiple of 128); the default is
    the model's own (512 for D0).
    """

    def __init__(self, name: str = "efficientdet_d0", pretrained: bool = True, weights=None, device=None,
                 image_size: int | None = None, check_hash: bool | None = None, **kwargs) -> None:
        super().__init__(device=device, **kwargs)
        info = detector_info(name)
        self.name = info.name
        model_name = "tf_" + info.name
        effdet = _import_effdet()
        config = effdet.get_efficientdet_config(model_name)
        if image_size is not None:
            if image_size % 128:
                raise ValueError(f"{name}: image_size must be a multiple of 128, got {image_size}")
            config.image_size = (image_size, image_size)
        config.max_det_per_image = max(self.max_detections, 1)
        state = None
        if pretrained:  # resolve first: an offline machine fails at once, before the model is built
            from salrank.weights import load_state_dict

            state = load_state_dict(info.weights, weights, check=check_hash)
        net = effdet.EfficientDet(config, pretrained_backbone=False)  # never touches the network
        if state is not None:
            from salrank.weights import load_into

            load_into(net, info.weights, weights, state=state)
        self.model = effdet.DetBenchPredict(net).eval().to(self.device)
        self.input_size: tuple[int, int] = tuple(config.image_size)  # (height, width)
        self.options = {"pretrained": bool(pretrained), "input_size": list(self.input_size)}
        self._mean = np.asarray(IMAGENET_MEAN, np.float32)
        self._std = np.asarray(IMAGENET_STD, np.float32)

    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Resize-and-pad one image; returns the normalised CHW array and the scale applied."""
        th, tw = self.input_size
        h, w = image.shape[:2]
        scale = min(th / h, tw / w)
        sh, sw = max(1, int(h * scale)), max(1, int(w * scale))
        resized = np.asarray(Image.fromarray(image).resize((sw, sh), Image.BICUBIC), np.float32) / 255.0
        canvas = np.zeros((th, tw, 3), np.float32)  # zero after normalisation = the ImageNet mean
        canvas[:sh, :sw] = (resized - self._mean) / self._std
        return canvas.transpose(2, 0, 1), scale

    def _detect_batch(self, images: list[np.ndarray], keys: list[str] | None) -> list[Detections]:
        import torch

        prepared = [self._prepare(im) for im in images]
        x = torch.from_numpy(np.stack([p[0] for p in prepared])).to(self.device)
        img_info = {
            "img_scale": torch.tensor([1.0 / p[1] for p in prepared], dtype=torch.float32, device=self.device),
            # (width, height) of the original images: effdet clips to img_size / img_scale in input pixels
            "img_size": torch.tensor([[im.shape[1], im.shape[0]] for im in images], dtype=torch.float32,
                                     device=self.device),
        }
        out = self.model(x, img_info=img_info).float().cpu().numpy()  # (B, max_det, 6)
        results = []
        for det, im in zip(out, images, strict=True):
            det = det[det[:, 4] > 0]  # effdet pads with all-zero rows
            boxes = det[:, :4].copy()
            h, w = im.shape[:2]
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
            results.append(Detections(boxes, det[:, 4], det[:, 5].astype(np.int64)))
        return results
