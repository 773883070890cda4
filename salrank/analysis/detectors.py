"""Detector studies for the book: proposal coverage between detectors (Fig. 12) and detector
throughput (Table IV-B).

A detector in a study is a :class:`DetectorSpec` (a label for tables, the registry name,
pretrained or not, the backend options); :func:`build_detector` makes it (random weights are
seeded, and the seed becomes part of the detector's settings), :func:`collect_proposals` runs it
over a :class:`~salrank.data.scenes.SceneSet` with the paper's filtering, cached on disk per
detector settings and image list (through the resumable
:func:`~salrank.proposals.generate_proposals`). :func:`run_coverage_study` does both for several
detectors, skipping (with the reason) those that cannot be built or are too slow for a time
budget, and :func:`coverage_curves` compares each with the reference detector
(:func:`~salrank.proposals.coverage_rate`). :func:`oracle_variants` gives SynthSal oracle
detectors at several noise levels, the stand-ins for real detectors on the sample profile.
:func:`benchmark_detectors` times several detectors (:func:`~salrank.bench.detectors.benchmark_detector`)
and :data:`salrank.paper.TABLE4B_FPS` holds the paper's numbers.

Boxes are ``[x1, y1, x2, y2]`` pixels of the original image.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from salrank.paper import TABLE4B_FPS
from salrank.proposals.coverage import DEFAULT_IOU_THRESHOLDS, coverage_rate
from salrank.proposals.registry import Detections, Detector, create_detector

__all__ = [
    "DetectorSpec",
    "CoverageStudy",
    "ORACLE_NOISE_LEVELS",
    "PAPER_DETECTOR_NAMES",
    "oracle_variants",
    "build_detector",
    "collect_proposals",
    "coverage_curves",
    "run_coverage_study",
    "benchmark_detectors",
    "with_paper_fps",
]

PAPER_DETECTOR_NAMES = {
    "efficientdet_d0": "EfficientDet",
    "fasterrcnn_resnet50_fpn": "Faster RCNN",
    "detr_resnet50": "DETR",
    "yolov5su": "YOLOv5",
}
"""Our registry name -> the paper's Table IV-B column it corresponds to (the paper does not say
which EfficientDet variant it timed; D0 is assumed)."""

ORACLE_NOISE_LEVELS = {
    "oracle (low noise)": {"jitter": 0.05, "miss_rate": 0.05, "false_positives": 0.5},
    "oracle (default noise)": {"jitter": 0.1, "miss_rate": 0.1, "false_positives": 1.0},
    "oracle (high noise)": {"jitter": 0.2, "miss_rate": 0.2, "false_positives": 2.0},
    "oracle (very high noise)": {"jitter": 0.3, "miss_rate": 0.3, "false_positives": 4.0},
}
"""Noise settings of :func:`salrank.data.synthsal.oracle_detections` used as stand-in detectors
(``jitter``: edge shift as a fraction of the box size; ``miss_rate``; mean false positives)."""


@dataclass(frozen=True)
class DetectorSpec:
    """A detector of a study: ``label`` (shown in tables), ``name`` (for
    :func:`~salrank.proposals.create_detector`), ``pretrained`` and backend ``options``
    (e.g. ``min_size``, or the oracle's ``jitter``/``miss_rate``/``false_positives``/``seed``);
    ``max_images``: run it on only the first so many images of the study (slow backends)."""

    label: str
    name: str
    pretrained: bool = True
    options: Mapping = field(default_factory=dict)
    max_images: int | None = None


@dataclass
class CoverageStudy:
    """The result of :func:`run_coverage_study`.

    ``proposals``: ``{label: {stem: Detections}}`` of the detectors that ran; ``curves``: the
    :func:`coverage_curves` table; ``skipped``: ``{label: reason}``; ``seconds``: wall time per
    label (0 when the proposals came from the cache)."""

    reference: str
    proposals: dict[str, dict[str, Detections]]
    curves: pd.DataFrame
    skipped: dict[str, str]
    seconds: dict[str, float]


def oracle_variants(levels: Mapping[str, Mapping] | None = None, seed: int = 0) -> list[DetectorSpec]:
    """SynthSal oracle detectors, one per noise level (default :data:`ORACLE_NOISE_LEVELS`).

    Each level gets its own noise seed (``seed + index``), so that two levels never share their
    random draws (the same noise would make them agree trivially)."""
    levels = ORACLE_NOISE_LEVELS if levels is None else levels
    return [DetectorSpec(label, "oracle", pretrained=False, options={**noise, "seed": seed + i})
            for i, (label, noise) in enumerate(levels.items())]


def build_detector(spec: DetectorSpec, scene_set=None, *, seed: int = 0, device=None) -> Detector:
    """Make ``spec``'s detector. The oracle gets ``scene_set``'s boxes as its true boxes; a
    network with random weights (``pretrained=False``) is initialised under ``torch.manual_seed(seed)``
    and records ``init_seed`` in its settings. Raises what :func:`create_detector` raises
    (``WeightsNotFoundError`` offline, ``ImportError`` for a missing extra, ``KeyError``)."""
    options = dict(spec.options)
    if spec.name in ("oracle", "synthsal_oracle"):
        if scene_set is None:
            raise ValueError(f"{spec.label}: the oracle detector needs the scene set (its true boxes)")
        options.setdefault("seed", seed)
        return create_detector(spec.name, pretrained=False, true_boxes=scene_set.boxes, **options)
    if spec.pretrained:
        return create_detector(spec.name, pretrained=True, device=device, **options)
    return create_detector(spec.name, pretrained=False, device=device, seed=seed, **options)  # seeds, records


def _cache_key(detector: Detector, images: Mapping[str, Path], filter_options) -> str:
    blob = json.dumps({"detector": detector.settings(), "filter": filter_options,
                       "images": sorted((k, str(Path(p).resolve())) for k, p in images.items())},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def collect_proposals(
    detector: Detector,
    scene_set,
    stems: Sequence[str] | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    apply_filter: bool = True,
    filter_options: Mapping | None = None,
    batch_size: int = 4,
    progress: bool = False,
) -> dict[str, Detections]:
    """``{stem: Detections}`` of ``detector`` on ``scene_set``'s images (default: all), in score order.

    With ``apply_filter`` the paper's filtering (:func:`~salrank.proposals.filter_proposals`,
    ``filter_options`` overriding its defaults: at most 10 proposals, none over 60 % of the
    image, NMS at IoU 0.7) is applied. With ``cache_dir`` the result is stored as
    ``<cache_dir>/<detector>-<key>.json`` (COCO results), ``key`` a digest of the detector's
    settings, the filter and the image list, and reused by later calls; an interrupted run
    resumes. Without ``cache_dir`` nothing is kept.
    """
    from salrank.proposals.generate import generate_proposals, read_proposals

    stems = list(scene_set.stems if stems is None else stems)
    missing = [s for s in stems if s not in scene_set.images]
    if missing:
        raise KeyError(f"{scene_set.name}/{scene_set.split}: no image file for {missing[:5]}")
    images = {s: Path(scene_set.images[s]) for s in stems}
    options = dict(filter_options or {}) if apply_filter else None
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="salrank-proposals-") as tmp:
            out = generate_proposals(detector, images, Path(tmp) / "proposals.json", batch_size=batch_size,
                                     filter_options=options, apply_filter=apply_filter, progress=progress)
            return read_proposals(out, image_ids=stems)
    out = Path(cache_dir) / f"{detector.name}-{_cache_key(detector, images, options)}.json"
    if not out.is_file():
        generate_proposals(detector, images, out, batch_size=batch_size, filter_options=options,
                           apply_filter=apply_filter, progress=progress)
    return read_proposals(out, image_ids=stems)


def _boxes(det) -> np.ndarray:
    return np.asarray(det.boxes if isinstance(det, Detections) else det, dtype=np.float64).reshape(-1, 4)


def coverage_curves(
    proposals: Mapping[str, Mapping[str, Detections | np.ndarray]],
    reference: str,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    top_k: int | Sequence[int] = (5, 10),
) -> pd.DataFrame:
    """Coverage of the ``reference`` detector's top-k proposals by every other detector's top-k.

    ``proposals``: ``{detector label: {stem: Detections or (N, 4) boxes in score order}}``. Each
    detector is compared on the images it shares with the reference. Returns
    :func:`~salrank.proposals.coverage_rate`'s columns plus ``detector`` (first) and ``n_images``.
    """
    if reference not in proposals:
        raise KeyError(f"reference detector {reference!r} is not among {sorted(proposals)}")
    ref = proposals[reference]
    frames = []
    for label, dets in proposals.items():
        if label == reference:
            continue
        stems = [s for s in ref if s in dets]
        if not stems:
            raise ValueError(f"{label!r} shares no image with the reference {reference!r}")
        df = coverage_rate([_boxes(ref[s]) for s in stems], [_boxes(dets[s]) for s in stems],
                           iou_thresholds=iou_thresholds, top_k=top_k)
        df.insert(0, "detector", label)
        df["n_images"] = len(stems)
        frames.append(df)
    if not frames:
        raise ValueError("coverage needs at least one detector besides the reference")
    return pd.concat(frames, ignore_index=True)


def run_coverage_study(
    specs: Sequence[DetectorSpec],
    reference: str,
    scene_set,
    stems: Sequence[str] | None = None,
    *,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    top_k: int | Sequence[int] = (5, 10),
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    device=None,
    max_seconds_per_image: float | None = None,
    progress: bool = False,
) -> CoverageStudy:
    """Collect the proposals of every spec on ``scene_set`` and their coverage of the ``reference``'s.

    ``reference``: the label of one of ``specs`` (it must run; its failure raises). Other
    detectors that cannot be built (missing weights or extra) or that take longer than
    ``max_seconds_per_image`` on the first image (a probe before the run: one warm-up call, then
    one timed call) are skipped and listed with the reason in :attr:`CoverageStudy.skipped`.
    """
    from salrank.weights import WeightsNotFoundError

    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"detector labels must be unique, got {labels}")
    if reference not in labels:
        raise KeyError(f"reference {reference!r} is not one of the detectors {labels}")
    stems = list(scene_set.stems if stems is None else stems)
    proposals: dict[str, dict[str, Detections]] = {}
    skipped: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for spec in sorted(specs, key=lambda s: s.label != reference):  # the reference first
        its_stems = stems[: spec.max_images] if spec.max_images else stems
        start = time.perf_counter()
        try:
            detector = build_detector(spec, scene_set, seed=seed, device=device)
        except (WeightsNotFoundError, ImportError) as exc:
            if spec.label == reference:
                raise
            skipped[spec.label] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            continue
        if max_seconds_per_image is not None and spec.label != reference and spec.name != "oracle":
            first = [scene_set.image(its_stems[0])]
            detector.detect(first, keys=its_stems[:1])  # warm-up: one-off costs are not the detector's speed
            probe = time.perf_counter()
            detector.detect(first, keys=its_stems[:1])
            per_image = time.perf_counter() - probe
            if per_image > max_seconds_per_image:
                skipped[spec.label] = (f"too slow here: {per_image:.1f} s per image > {max_seconds_per_image:g} s "
                                       "allowed")
                continue
        proposals[spec.label] = collect_proposals(detector, scene_set, its_stems, cache_dir=cache_dir,
                                                  progress=progress)
        seconds[spec.label] = time.perf_counter() - start
    curves = (coverage_curves(proposals, reference, iou_thresholds, top_k) if len(proposals) > 1
              else pd.DataFrame(columns=["detector", "threshold", "top_k", "coverage", "mean_image_coverage",
                                         "matched", "reference", "n_images"]))
    return CoverageStudy(reference, proposals, curves, skipped, seconds)


# ----------------------------------------------------------------------------- throughput


def benchmark_detectors(
    names: Sequence[str],
    *,
    options: Mapping[str, Mapping] | None = None,
    pretrained: bool = False,
    fallback_random: bool = True,
    image_size: tuple[int, int] = (480, 640),
    repeats: int = 5,
    warmup: int = 1,
    device=None,
    seed: int = 0,
) -> pd.DataFrame:
    """Throughput of several detectors (:func:`~salrank.bench.detectors.benchmark_detector`), one row each.

    ``options``: per-detector keyword arguments for :func:`create_detector`; ``pretrained``: load
    the published weights (missing ones fall back to random weights when ``fallback_random``,
    else the detector is skipped). Detectors that cannot run (a missing extra such as
    ultralytics) get a row with ``images_per_s`` NaN and the reason in ``note``. Columns:
    ``detector, paper_name, weights, device, image_size, images_per_s, images_per_s_min,
    images_per_s_max, seconds_per_batch, repeats, note``.
    """
    import torch

    from salrank.bench.detectors import benchmark_detector
    from salrank.weights import WeightsNotFoundError

    rows = []
    for name in names:
        kwargs = dict((options or {}).get(name, {}))
        row = {"detector": name, "paper_name": PAPER_DETECTOR_NAMES.get(name, ""), "weights": "",
               "images_per_s": float("nan"), "note": ""}
        attempts = [True, False] if pretrained and fallback_random else [pretrained]
        for use_pretrained in attempts:
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    res = benchmark_detector(name, image_size=image_size, repeats=repeats, warmup=warmup,
                                             device=device, pretrained=use_pretrained, seed=seed, **kwargs)
            except WeightsNotFoundError as exc:
                row["note"] = f"no pretrained weights ({str(exc).splitlines()[0]})"
                continue
            except ImportError as exc:
                row["note"] = f"cannot run: {exc}"
                break
            row.update({k: res[k] for k in ("device", "images_per_s", "images_per_s_min", "images_per_s_max",
                                            "seconds_per_batch", "repeats")})
            row["image_size"] = f"{image_size[0]}x{image_size[1]}"
            row["weights"] = "pretrained" if use_pretrained else "random"
            if not use_pretrained and pretrained:
                row["note"] += "; timed with random weights"
            break
        rows.append(row)
    columns = ["detector", "paper_name", "weights", "device", "image_size", "images_per_s", "images_per_s_min",
               "images_per_s_max", "seconds_per_batch", "repeats", "note"]
    return pd.DataFrame(rows).reindex(columns=columns)


def with_paper_fps(bench: pd.DataFrame) -> pd.DataFrame:
    """:func:`benchmark_detectors`' table joined with the paper's Table IV-B: one row per paper
    detector and per measured detector (outer join on the paper's name), ``paper_fps`` beside
    ``images_per_s``, and a ``label`` for plots (``"<paper name> / <detector>"`` when both exist)."""
    paper = pd.DataFrame({"paper_name": list(TABLE4B_FPS), "paper_fps": list(TABLE4B_FPS.values())})
    ours = bench.copy()
    ours["paper_name"] = ours["paper_name"].replace("", np.nan)
    matched = ours.merge(paper, on="paper_name", how="outer")
    order = {n: i for i, n in enumerate(TABLE4B_FPS)}
    matched["_order"] = matched["paper_name"].map(order).fillna(len(order))
    matched["label"] = [" / ".join(str(v) for v in (p, d) if isinstance(v, str) and v)
                        for p, d in zip(matched["paper_name"], matched["detector"], strict=True)]
    return matched.sort_values(["_order", "detector"], na_position="last").drop(columns="_order").reset_index(drop=True)
