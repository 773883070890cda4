"""Speed of the SALICON fixation reader: cold parse vs cached load (:func:`benchmark_load`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from salrank.bench.core import stopwatch
from salrank.data.salicon import Fixations, load_salicon, save_salicon_json

__all__ = ["benchmark_load"]


def benchmark_load(
    n_images: int = 1000,
    points_per_image: int = 9000,
    *,
    observers: int = 60,
    seed: int = 0,
    workdir: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Time :func:`load_salicon` on a SALICON-like 2015 JSON: cold parse vs cached load.

    Writes ``n_images`` images of 640 x 480 with ``points_per_image`` integer points spread over
    ``observers`` workers (the full SALICON is ~15,000 images of ~9,000 points), then loads it
    once without the cache, once to fill the cache and once from the cache.

    Returns:
        ``n_images``, ``n_points``, ``json_mb``, ``write_s``, ``parse_s`` (no cache),
        ``cache_fill_s`` (parse + write cache), ``cached_s`` (cache hit), ``speedup``
        (``parse_s / cached_s``), ``parse_cpu_s`` / ``cached_cpu_s`` (process CPU time, steadier
        than wall time on a shared machine), ``cache_mb``.
    """
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp_path = Path(tmp)
        data = {}
        for i in range(n_images):
            pts = np.stack(
                [rng.integers(0, 640, points_per_image), rng.integers(0, 480, points_per_image)], axis=1
            ).astype(np.float64)
            obs = np.sort(rng.integers(0, observers, points_per_image))
            data[f"COCO_val2014_{i + 1:012d}"] = Fixations(pts, obs, 480, 640)
        source = tmp_path / "fixations_bench.json"
        with stopwatch() as write:
            save_salicon_json(source, data)
        del data

        def timed(**kwargs) -> tuple[float, float, dict[str, Fixations]]:
            with stopwatch() as t:
                result = load_salicon(source, progress=False, **kwargs)
            return t.wall, t.cpu, result

        cache_root = tmp_path / "cache"
        parse_s, parse_cpu_s, _ = timed(cache=False)
        fill_s, _, _ = timed(cache=cache_root)
        cached_s, cached_cpu_s, loaded = timed(cache=cache_root)
        n_points = sum(len(fx) for fx in loaded.values())
        cache_mb = sum(f.stat().st_size for f in cache_root.iterdir()) / 2**20
        return {
            "n_images": float(n_images),
            "n_points": float(n_points),
            "json_mb": source.stat().st_size / 2**20,
            "write_s": write.wall,
            "parse_s": parse_s,
            "cache_fill_s": fill_s,
            "cached_s": cached_s,
            "parse_cpu_s": parse_cpu_s,
            "cached_cpu_s": cached_cpu_s,
            "speedup": parse_s / cached_s if cached_s > 0 else float("inf"),
            "cache_mb": cache_mb,
        }
