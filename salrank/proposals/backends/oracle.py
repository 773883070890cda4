"""The SynthSal oracle "detector": the true boxes of a synthetic scene, made noisy.

It needs no weights: it is built with a mapping ``image key -> true boxes`` (``[x1, y1, x2, y2]``
pixels; the keys are image file stems) and :meth:`~salrank.proposals.Detector.detect` is called
with ``keys=``. The noise (jitter, misses, false positives, scores) is that of
:func:`salrank.data.synthsal.oracle_detections`, seeded per image from ``seed`` and the key exactly
as :func:`salrank.data.synthsal.oracle_for_dataset` does, so the result for an image does not
depend on which batch it is in and matches that function's records.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from salrank.proposals.registry import Detections, Detector, detector_info

__all__ = ["OracleDetector"]


class OracleDetector(Detector):
    """Noisy true boxes. ``true_boxes``: ``{key: (N, 4) boxes}``; ``seed``: the base seed;
    further keywords (``jitter``, ``miss_rate``, ``false_positives``) go to
    :func:`salrank.data.synthsal.oracle_detections`.
    """

    def __init__(self, name: str = "oracle", pretrained: bool = True, weights=None, device=None,
                 true_boxes: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                 score_threshold: float = 0.0, **kwargs) -> None:
        detector_kw = {k: kwargs.pop(k) for k in ("max_detections", "batch_size") if k in kwargs}
        super().__init__(device="cpu", score_threshold=score_threshold, **detector_kw)
        self.name = detector_info(name).name
        if true_boxes is None:
            raise ValueError("the oracle detector needs true_boxes={image key: (N, 4) boxes}")
        self.true_boxes = {str(k): np.asarray(v, np.float64).reshape(-1, 4) for k, v in true_boxes.items()}
        self.seed = int(seed)
        self.noise = dict(kwargs)  # jitter, miss_rate, false_positives, ...
        self.options = {"seed": self.seed, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.noise.items()}}

    def image_seed(self, key: str) -> np.random.SeedSequence:
        """The seed of image ``key`` (a function of the base seed and the key only)."""
        return np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(key.encode()),))

    def _detect_batch(self, images: list[np.ndarray], keys: list[str] | None) -> list[Detections]:
        from salrank.data.synthsal import oracle_detections

        if keys is None:
            raise ValueError("the oracle detector needs keys= (the image stems) to look up the true boxes")
        out = []
        for image, key in zip(images, keys, strict=True):
            if key not in self.true_boxes:
                raise KeyError(f"oracle detector: no true boxes for image {key!r}")
            size = image.shape[:2]
            rng = np.random.default_rng(self.image_seed(key))
            boxes, scores, labels = oracle_detections(self.true_boxes[key], size, rng, **self.noise)
            out.append(Detections(boxes, scores, labels))
        return out
