"""Detector throughput (the paper's Table IV-B): images per second on random images."""

from __future__ import annotations

import numpy as np

from salrank.bench.core import device_sync, random_images, summarize, time_calls

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
    synchronised around each run, :func:`~salrank.bench.core.time_calls`). Extra keywords go to
    :func:`create_detector`.

    Returns:
        ``{"detector", "device", "image_size", "batch_size", "repeats", "images_per_s" (median),
        "images_per_s_min", "images_per_s_max", "iqr_images_per_s", "images_per_s_samples" (one per
        run), "seconds_per_batch" (median)}``.
    """
    from salrank.proposals.registry import create_detector

    if name == "oracle":
        raise ValueError("the oracle detector has no meaningful throughput")
    detector = create_detector(name, pretrained=pretrained, device=device, batch_size=batch_size, **kwargs)
    h, w = image_size
    images = random_images(np.random.default_rng(seed), batch_size, (h, w))
    times = time_calls({"detect": lambda: detector.detect(images)}, repeats, warmup=warmup,
                       sync=device_sync(detector.device))["detect"]
    rates = [batch_size / t for t in times]
    s = summarize(rates)
    return {
        "detector": detector.name,
        "device": str(detector.device),
        "image_size": (int(h), int(w)),
        "batch_size": int(batch_size),
        "repeats": int(repeats),
        "images_per_s": s["median"],
        "images_per_s_min": s["min"],
        "images_per_s_max": s["max"],
        "iqr_images_per_s": s["iqr"],
        "images_per_s_samples": rates,
        "seconds_per_batch": float(np.median(times)),
    }
