"""Throughput of :mod:`salrank.models.unisal` (images per second); the suite's ``unisal`` benchmark
(``salrank bench --only unisal``). Weights are random (speed does not depend on them).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import numpy as np
import torch

from salrank.bench.core import device_sync, random_images, summarize, time_calls
from salrank.models.unisal import UNISAL, network_size_for

__all__ = ["benchmark"]


def benchmark(
    batch_size: int = 4,
    repeats: int = 5,
    device: str | torch.device = "cpu",
    image_size: Sequence[int] = (480, 640),
    network_size: Sequence[int] | None = None,
    warmup: int = 1,
    compare_smoothing: bool = True,
    seed: int = 0,
) -> dict:
    """Images per second of ``UNISAL.predict`` (uint8 image -> saliency maps at the image size,
    preprocessing included) and ``UNISAL.features`` (uint8 image -> ``f_u``) on ``batch_size``
    random ``image_size`` images, over ``repeats`` timed runs after ``warmup`` runs.

    Each rate is reported as :func:`~salrank.bench.core.summarize` gives it (``median``, ``q1``,
    ``q3``, ``iqr``, ``min``, ``max``, images/s) with its per-run ``samples`` and
    ``seconds_per_batch_median``. With ``compare_smoothing``
    the predict rate is also measured with the literal 41x41 smoothing, and the speed-up of the
    polyphase smoothing is the ratio of the two medians measured in this run (the variants
    alternate within each repeat).
    """
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError("batch_size and repeats must be >= 1 and warmup >= 0")
    device = torch.device(device)
    height, width = (int(s) for s in image_size)
    images = random_images(np.random.default_rng(seed), batch_size, (height, width))
    torch.manual_seed(seed)
    model = UNISAL().to(device).eval()
    kwargs = {"batch_size": batch_size, "network_size": network_size}

    def run_predict(fast: bool) -> Callable[[], object]:
        def fn():
            model.fast_smoothing = fast
            return model.predict(images, **kwargs)

        return fn

    fns = {"predict": run_predict(True), "features": lambda: model.features(images, **kwargs)}
    if compare_smoothing:
        fns["predict_direct_smoothing"] = run_predict(False)
    seconds = time_calls(fns, repeats, warmup=warmup, sync=device_sync(device))
    model.fast_smoothing = True
    result = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "repeats": repeats,
        "image_size": (height, width),
        "network_size": tuple(network_size) if network_size else network_size_for((height, width)),
    }
    for name, secs in seconds.items():
        rates = [batch_size / s for s in secs]
        result[f"{name}_images_per_s"] = {**summarize(rates), "samples": rates,
                                          "seconds_per_batch_median": statistics.median(secs)}
    if compare_smoothing:
        result["fast_smoothing_speedup"] = (
            result["predict_images_per_s"]["median"]
            / result["predict_direct_smoothing_images_per_s"]["median"]
        )
    return result
