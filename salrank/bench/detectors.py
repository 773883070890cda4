"""Detector throughput (the paper's Table IV-B): images per second on random images."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["benchmark_detector"]


def benchmark_detector(
    name: str,
    image_size: tuple[int, int] = (480, 640),
    batch_size: int = 1,
    repeats: int = 5,
    warmup: int = 1,
    device=None,
    pretrained: bool = False,
    seed: int = 0,
    **kwargs,
) -> dict:
    """Time ``create_detector(name)`` on random ``image_size`` (height, width) RGB images.

    The networks cost the same with random weights (``pretrained=False``, the default, needing no
    download) as with trained ones; only the post-processing differs: with random weights fewer
    candidates pass the detector's score threshold before non-maximum suppression (``pretrained=True``
    gives the faithful figure where the weights are available). Each of the ``repeats`` runs times
    one batch of ``batch_size`` images (after ``warmup`` untimed runs; on CUDA the device is
    synchronised around each run). Extra keywords go to :func:`create_detector`.

    Returns:
        ``{"detector", "device", "image_size", "batch_size", "repeats", "images_per_s" (median),
        "images_per_s_min", "images_per_s_max", "seconds_per_batch" (median), "iqr_images_per_s"}``.
    """
    import torch

    from salrank.proposals.registry import create_detector

    if name == "oracle":
        raise ValueError("the oracle detector has no meaningful throughput")
    detector = create_detector(name, pretrained=pretrained, device=device, batch_size=batch_size, **kwargs)
    rng = np.random.default_rng(seed)
    h, w = image_size
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in range(batch_size)]

    def sync() -> None:
        if detector.device.type == "cuda":
            torch.cuda.synchronize(detector.device)

    for _ in range(warmup):
        detector.detect(images)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.detect(images)
        sync()
        times.append(time.perf_counter() - start)
    rates = batch_size / np.asarray(times)
    q1, q3 = np.percentile(rates, [25, 75])
    return {
        "detector": detector.name,
        "device": str(detector.device),
        "image_size": (int(h), int(w)),
        "batch_size": int(batch_size),
        "repeats": int(repeats),
        "images_per_s": float(np.median(rates)),
        "images_per_s_min": float(rates.min()),
        "images_per_s_max": float(rates.max()),
        "iqr_images_per_s": float(q3 - q1),
        "seconds_per_batch": float(np.median(times)),
    }
