"""Comparisons and speed targets judged on a suite record's figures.

:data:`RATIOS`: pairs of figures measured in the same run (fast path vs loop, ...), whose ratio
holds on a loaded machine where absolute times do not. :data:`TARGETS`: the project's speed
targets, each on a ratio or on a figure's median. Both work on the ``results`` entries of a record
(:mod:`salrank.bench.suite`), so they can be recomputed from a stored record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RATIOS", "TARGETS", "Ratio", "Target", "compute_ratios", "evaluate_targets"]


@dataclass(frozen=True)
class Ratio:
    """``numerator`` / ``denominator`` (result names) measured in the same run."""

    name: str
    numerator: str
    denominator: str
    description: str


RATIOS: tuple[Ratio, ...] = (
    Ratio("gt_relabel.speedup", "gt_relabel.loop", "gt_relabel.fast", "RA-SRGT relabel: fast path vs loop"),
    Ratio("fixation_load.cache_speedup", "fixation_load.parse", "fixation_load.cached",
          "fixation loading: cache vs JSON parse"),
    Ratio("features.roi_vs_crop", "features.total_roi", "features.total_crop",
          "features: ROI mode vs crop mode (all features)"),
    Ratio("features.resnet_roi_vs_crop", "features.resnet101_roi", "features.resnet101_crop",
          "features: ResNet101 stage, ROI vs crop"),
    Ratio("head.flop_ratio", "head.model_gflops", "head.matmul_gflops", "head FLOP rate / plain matmul FLOP rate"),
    Ratio("acb.speedup", "acb.loop", "acb.batched", "ACB at n = 20: batched vs loop"),
    Ratio("unisal.predict_vs_features", "unisal.predict", "unisal.features",
          "UNISAL: saliency maps vs features only"),
)


@dataclass(frozen=True)
class Target:
    """A speed target: ``source`` (a ratio or result name) ``op`` (``>=``, ``>``, ``<``, ``<=``)
    ``threshold`` in ``unit``; ``requires_cuda``: judged only on a CUDA run."""

    name: str
    description: str
    source: str
    op: str
    threshold: float
    unit: str
    requires_cuda: bool = False


TARGETS: tuple[Target, ...] = (
    Target("gt_relabel_speedup", "RA-SRGT relabel >= 30x the per-point loop", "gt_relabel.speedup", ">=", 30.0, "x"),
    Target("gt_relabel_15k", "RA-SRGT relabel of 15,000 images < 10 s", "gt_relabel.salicon_15k", "<", 10.0, "s"),
    Target("head_flop_ratio", "head FLOP rate >= 40% of the matmul rate", "head.flop_ratio", ">=", 0.40, "ratio"),
    Target("acb_speedup", "batched ACB >= 5x the loop at n = 20", "acb.speedup", ">=", 5.0, "x"),
    Target("train_fast_epoch", "fast-preset epoch on 10,000 images < 10 min", "training.fast_epoch_10k", "<",
           600.0, "s"),
    Target("end_to_end_flop_bound", "end to end (batched, crop mode) >= 85% of its FLOP bound at the matmul rate",
           "flop_bound.crop_batched", ">=", 0.85, "fraction"),
    Target("host_overhead_ms", "host CPU time per image, networks stubbed, batched (crop mode) <= 5 ms",
           "host_overhead.crop_batched_ms", "<=", 5.0, "ms/image"),
    Target("end_to_end_gpu", "end to end >= 1,000 images/s on GPU (EfficientDet-D0 + UNISAL + ResNet101)",
           "end_to_end.images_per_s", ">=", 1000.0, "images/s", requires_cuda=True),
)
_OPS = {">=": lambda v, t: v >= t, ">": lambda v, t: v > t, "<": lambda v, t: v < t, "<=": lambda v, t: v <= t}


def compute_ratios(results: Sequence[Mapping], ratios: Iterable[Ratio] = RATIOS) -> list[dict]:
    """The ratios whose two sides are both in ``results`` (record entries): ``value`` = ratio of the
    medians; ``spread`` = median/min/max of the per-repeat ratios when both sides have samples of
    equal length (else ``None``); ``best`` = ratio of the best runs (fastest of each side: load on a
    shared machine only ever slows a run down)."""
    by_name = {r["name"]: r for r in results}
    out = []
    for ratio in ratios:
        num, den = by_name.get(ratio.numerator), by_name.get(ratio.denominator)
        if num is None or den is None:
            continue
        value = num["median"] / den["median"] if den["median"] else math.inf
        spread = None
        a, b = num.get("samples"), den.get("samples")
        if a and b and len(a) == len(b) and all(x != 0 for x in b):
            paired = [x / y for x, y in zip(a, b, strict=True)]
            spread = {"median": float(np.median(paired)), "min": min(paired), "max": max(paired)}
        best_num = num["spread"]["min" if num.get("better") == "lower" else "max"]
        best_den = den["spread"]["min" if den.get("better") == "lower" else "max"]
        best = best_num / best_den if best_num is not None and best_den else None
        out.append({"name": ratio.name, "description": ratio.description, "numerator": ratio.numerator,
                    "denominator": ratio.denominator, "value": float(value), "spread": spread, "best": best})
    return out


def evaluate_targets(results: Sequence[Mapping], ratios: Sequence[Mapping], device: str,
                     targets: Iterable[Target] = TARGETS) -> list[dict]:
    """Each target's ``value`` (the ratio, or the result's median), ``threshold`` and ``status``:
    ``pass``/``fail``; ``not run`` when its figure is missing; ``n/a`` for a CUDA target on another
    ``device``. ``passed`` is True/False, or None when not judged."""
    import torch

    values = {r["name"]: r["median"] for r in results}
    values.update({r["name"]: r["value"] for r in ratios})
    on_cuda = torch.device(device).type == "cuda"
    out = []
    for t in targets:
        if t.op not in _OPS:
            raise ValueError(f"target {t.name}: unknown operator {t.op!r}")
        value = values.get(t.source)
        row = {"name": t.name, "description": t.description, "source": t.source, "op": t.op,
               "threshold": t.threshold, "unit": t.unit, "value": value, "requires_cuda": t.requires_cuda}
        if t.requires_cuda and not on_cuda:
            row.update(status="n/a", passed=None, note="judged on a CUDA run only")
        elif value is None:
            row.update(status="not run", passed=None)
        else:
            ok = bool(math.isfinite(value) and _OPS[t.op](value, t.threshold))
            row.update(status="pass" if ok else "fail", passed=ok)
        out.append(row)
    return out
