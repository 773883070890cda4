"""Throughput benchmark for :mod:`salrank.models.unisal` (images per second).

Run ``python -m salrank.bench.unisal [--batch-size 4 --repeats 5 --device cpu]``; it prints
the result of :func:`benchmark` as JSON. Weights are random (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from salrank.models.unisal import UNISAL, network_size_for

__all__ = ["benchmark"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int, device: torch.device):
    """Seconds per call of each function; the functions alternate within every repeat so that
    load from other processes affects them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def _summary(seconds: list[float], n_images: int) -> dict:
    rates = sorted(n_images / s for s in seconds)
    q1, _, q3 = statistics.quantiles(rates, n=4, method="inclusive") if len(rates) > 1 else (rates[0],) * 3
    return {
        "median": statistics.median(rates),
        "min": rates[0],
        "max": rates[-1],
        "iqr": q3 - q1,
        "seconds_per_batch_median": statistics.median(seconds),
    }


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

    Each rate is reported as ``{median, min, max, iqr}`` (images/s). With ``compare_smoothing``
    the predict rate is also measured with the literal 41x41 smoothing, and the speed-up of the
    polyphase smoothing is the ratio of the two medians measured in this run (the variants
    alternate within each repeat).
    """
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError("batch_size and repeats must be >= 1 and warmup >= 0")
    device = torch.device(device)
    rng = np.random.default_rng(seed)
    height, width = (int(s) for s in image_size)
    images = [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(batch_size)]
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
    seconds = _time_interleaved(fns, repeats, warmup, device)
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
        result[f"{name}_images_per_s"] = _summary(secs, batch_size)
    if compare_smoothing:
        result["fast_smoothing_speedup"] = (
            result["predict_images_per_s"]["median"]
            / result["predict_direct_smoothing_images_per_s"]["median"]
        )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    res = benchmark(batch_size=args.batch_size, repeats=args.repeats, device=args.device, warmup=args.warmup)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
