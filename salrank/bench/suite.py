"""The benchmark suite behind ``salrank bench`` and the Table IV page: every stage's speed, one record.

:func:`run_suite` runs the benchmarks of :data:`BENCHMARKS` (or those named in ``only``) and returns
a JSON-able record:

* ``meta``: what it ran on (:mod:`salrank.provenance` versions and hardware), the device, AMP
  dtype, quick flag, repeats, date, duration and the machine's load average at start and end;
* ``results``: one entry per measured figure: ``name`` (``<benchmark>.<figure>``), ``benchmark``,
  ``metric``, ``unit``, ``better`` (``higher``/``lower``), ``median``, ``spread`` (``q1``, ``q3``,
  ``iqr``, ``min``, ``max`` over the repeats), ``repeats``, ``samples`` and ``details``;
* ``ratios``: the comparisons of :data:`RATIOS` (fast path vs loop, ...) between figures measured in
  the same run: ``value`` = ratio of the medians, ``spread`` = min/median/max of the per-repeat
  ratios when both sides have the same number of repeats (the sides alternate or share a run),
  ``best`` = ratio of the fastest runs;
* ``targets``: each target of :data:`TARGETS` with its value, threshold and ``status``
  (``pass``, ``fail``, ``not run``, ``n/a`` for the CUDA-only target on another device);
* ``benchmarks``: per benchmark its duration, notes, error (if it failed) and peak memory
  (``resource.getrusage`` resident set size of the process so far; on CUDA
  ``torch.cuda.max_memory_allocated`` during the benchmark).

Repeats: every figure is timed ``repeats`` times (after a warm-up); cheap figures (detectors,
UNISAL, head, ACB) take 2-5 times as many samples so that their medians resist the bursts of load of
a shared machine. Timing: wall-clock seconds (:func:`time.perf_counter`; the device is synchronised around each
timed call on CUDA), except the RA-SRGT relabelling, timed in process CPU seconds by
:func:`salrank.bench.gt` (steadier on a shared machine). All models have random weights: a
network costs the same with trained weights; only a detector's post-processing depends on them
(with random weights fewer candidates pass its score threshold).

On CUDA the neural stages (detector, UNISAL, ResNet, FOSRNet forward, training) run under
:func:`torch.autocast` (``amp="auto"``: bfloat16 where supported, else float16; training only with
bfloat16, which needs no gradient scaler) with larger batches. The ranking head's ECS/ACB step runs
in float32 (its assignment reads the logits into NumPy). Every code path also runs on the CPU
(``amp`` is off there unless asked for).

The benchmark functions can be replaced: ``run_suite(benchmarks={name: Benchmark(...)})`` (tests
inject fake timings this way).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

__all__ = [
    "BENCHMARKS",
    "RATIOS",
    "SCHEMA",
    "TARGETS",
    "BenchConfig",
    "Benchmark",
    "Measurement",
    "Ratio",
    "StageClock",
    "Target",
    "compute_ratios",
    "evaluate_targets",
    "format_summary",
    "PAPER_TABLE4A",
    "load_records",
    "ratios_frame",
    "record_label",
    "runs_frame",
    "stage_frame",
    "table4_frame",
    "targets_frame",
    "random_ranking_split",
    "resolve_amp",
    "run_suite",
    "summarize",
]

SCHEMA = "salrank-bench/1"
SALICON_TRAIN_IMAGES = 10_000
PROPOSALS_PER_IMAGE = 10  # the paper's filtering keeps at most 10 proposals
STAGES = ("detector", "unisal", "resnet", "head_acb", "other")


# --- measurements ----------------------------------------------------------------------------------
def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median and spread of ``samples``: ``median``, ``q1``, ``q3``, ``iqr`` (linear percentiles),
    ``min``, ``max``.

    >>> summarize([1.0, 2.0, 3.0, 4.0, 100.0])["median"]
    3.0
    """
    x = np.asarray(list(samples), dtype=np.float64)
    if x.size == 0:
        raise ValueError("summarize: no samples")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"summarize: non-finite samples {x.tolist()}")
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
            "min": float(x.min()), "max": float(x.max())}


@dataclass
class Measurement:
    """One figure of a benchmark: ``samples`` (one per repeat) in ``unit``.

    ``name`` is ``<benchmark>.<figure>`` (the benchmark part is added by :func:`run_suite` when
    missing); ``better`` says which direction is faster. Benchmarks that only report a summary
    (median, IQR, min, max) give ``summary`` instead of ``samples`` (see :meth:`from_summary`).
    """

    name: str
    metric: str
    unit: str
    samples: list[float] | None = None
    better: str = "higher"
    details: dict = field(default_factory=dict)
    summary: dict | None = None
    repeats: int | None = None

    def __post_init__(self):
        if self.better not in ("higher", "lower"):
            raise ValueError(f"Measurement {self.name}: better must be 'higher' or 'lower', got {self.better!r}")
        if self.samples is None and self.summary is None:
            raise ValueError(f"Measurement {self.name}: give samples or a summary")
        if self.samples is not None:
            self.samples = [float(s) for s in self.samples]
            self.summary = summarize(self.samples)
            self.repeats = len(self.samples)

    @classmethod
    def from_summary(cls, name: str, metric: str, unit: str, *, median: float, minimum: float, maximum: float,
                     iqr: float | None, repeats: int, better: str = "higher", details: dict | None = None
                     ) -> Measurement:
        """A figure known only by its median, IQR and range over ``repeats`` runs."""
        summary = {"median": float(median), "q1": None, "q3": None,
                   "iqr": None if iqr is None else float(iqr), "min": float(minimum), "max": float(maximum)}
        return cls(name, metric, unit, None, better, dict(details or {}), summary, int(repeats))

    @property
    def median(self) -> float:
        return float(self.summary["median"])

    def to_dict(self, benchmark: str) -> dict:
        spread = {k: self.summary[k] for k in ("q1", "q3", "iqr", "min", "max")}
        return {"name": self.name, "benchmark": benchmark, "metric": self.metric, "unit": self.unit,
                "better": self.better, "median": self.median, "spread": spread, "repeats": self.repeats,
                "samples": self.samples, "details": self.details}


# --- configuration ---------------------------------------------------------------------------------
def resolve_amp(amp: str | None, device) -> str | None:
    """The autocast dtype name (``"bf16"``, ``"fp16"``) or ``None`` for ``amp`` on ``device``.

    ``"auto"``: on CUDA bfloat16 where the GPU supports it, else float16; elsewhere off.
    ``None``/``"off"``: off. ``"bf16"``/``"fp16"``: that dtype (also on the CPU, where it is slow but
    exercises the same code paths).
    """
    import torch

    name = "off" if amp is None else str(amp).lower()
    if name in ("off", "none", "false", "no", "0"):
        return None
    dev = torch.device(device)
    if name == "auto":
        if dev.type != "cuda":
            return None
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name in ("bf16", "bfloat16"):
        return "bf16"
    if name in ("fp16", "float16", "half"):
        return "fp16"
    raise ValueError(f"amp: expected auto, off, bf16 or fp16, got {amp!r}")


@dataclass(frozen=True)
class BenchConfig:
    """How a benchmark runs: ``quick`` sizes, ``device``, ``repeats`` per figure, ``amp`` dtype name
    (see :func:`resolve_amp`), ``seed``. ``notes`` collects remarks of the running benchmark;
    ``shared`` holds models built once per suite run (:meth:`model`)."""

    quick: bool = True
    device: str = "cpu"
    repeats: int = 3
    amp: str | None = None
    seed: int = 0
    notes: list = field(default_factory=list, compare=False)
    shared: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def torch_device(self):
        import torch

        return torch.device(self.device)

    @property
    def cuda(self) -> bool:
        return self.torch_device.type == "cuda"

    @property
    def amp_dtype(self):
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[self.amp]

    def pick(self, cpu: tuple, cuda: tuple | None = None):
        """``(quick, full)`` value of ``cpu``, or of ``cuda`` on a CUDA device when given."""
        quick, full = cuda if (self.cuda and cuda is not None) else cpu
        return quick if self.quick else full

    def autocast(self, enabled: bool = True):
        """``torch.autocast`` on this device with the AMP dtype (a no-op without AMP)."""
        import torch

        if self.amp is None or not enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.torch_device.type, dtype=self.amp_dtype)

    def no_autocast(self):
        """Autocast switched off (for float32-only steps run inside an autocast region)."""
        import torch

        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.torch_device.type, enabled=False)

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.torch_device)

    def samples(self, factor: int = 1) -> int:
        """Timed runs of a figure: ``repeats`` times ``factor`` (cheap figures take more, so that
        their median resists the bursts of load of a shared machine)."""
        return self.repeats * max(1, int(factor))

    def note(self, text: str) -> None:
        self.notes.append(str(text))

    def model(self, key: str, build: Callable[[], object]):
        """The model ``key`` built once per suite run (frozen feature extractors are shared)."""
        if key not in self.shared:
            self.shared[key] = build()
        return self.shared[key]


# --- stage timing ----------------------------------------------------------------------------------
def _to_float32(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float32(o) for o in out)
    return out


class _StageProxy:
    """Stands in for a model: the listed methods are timed (and run in ``context``); anything else is
    passed through to the model."""

    def __init__(self, target, clock: StageClock, stage: str, methods: Iterable[str],
                 context: Callable[[], contextlib.AbstractContextManager], float_outputs: bool):
        self._target = target
        self._clock = clock
        self._stage = stage
        self._context = context
        self._float = float_outputs
        self._methods = frozenset(methods)
        for name in self._methods - {"__call__"}:
            setattr(self, name, self._timed(getattr(target, name)))

    def _timed(self, fn):
        def call(*args, **kwargs):
            with self._context():
                self._clock.sync()
                start = time.perf_counter()
                out = fn(*args, **kwargs)
                if self._float:
                    out = _to_float32(out)
                self._clock.sync()
                self._clock.seconds[self._stage] += time.perf_counter() - start
            return out

        return call

    def __call__(self, *args, **kwargs):
        if "__call__" not in self._methods:
            raise TypeError(f"the {self._stage} stage is not timed as a call")
        return self._timed(self._target)(*args, **kwargs)

    def eval(self):
        self._target.eval()
        return self

    def __getattr__(self, name):
        return getattr(self._target, name)


class StageClock:
    """Seconds spent per named stage, accumulated by proxies (:meth:`wrap`) around models.

    ``sync`` is called before and after each timed call (``torch.cuda.synchronize`` on CUDA).
    """

    def __init__(self, sync: Callable[[], None] | None = None):
        self.seconds: dict[str, float] = defaultdict(float)
        self.sync = sync or (lambda: None)

    def reset(self) -> None:
        self.seconds.clear()

    def wrap(self, target, stage: str, methods: Iterable[str], *,
             context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             float_outputs: bool = False):
        """A proxy of ``target`` whose ``methods`` (``"__call__"`` for calls) add to ``stage``;
        they run inside ``context()`` and, with ``float_outputs``, return float32 tensors."""
        return _StageProxy(target, self, stage, methods, context, float_outputs)


# --- shared inputs ---------------------------------------------------------------------------------
def _sample_images(n: int) -> list[np.ndarray]:
    """``n`` RGB uint8 arrays: the embedded SALICON examples (640 x 480), cycled."""
    from PIL import Image

    from salrank.data.sample import salicon_example_images

    paths = sorted(salicon_example_images().values())
    loaded = [np.asarray(Image.open(p).convert("RGB")) for p in paths[: min(n, len(paths))]]
    return [loaded[i % len(loaded)] for i in range(n)]


def _random_boxes(rng: np.random.Generator, n: int, image_size: tuple[int, int]) -> np.ndarray:
    """``n`` random ``[x1, y1, x2, y2]`` pixel boxes of 32..320 px sides inside ``(height, width)``."""
    h, w = image_size
    wh = rng.uniform(32, [min(320, w), min(320, h)], size=(n, 2))
    xy = rng.uniform(0, 1, size=(n, 2)) * (np.array([w, h]) - wh)
    return np.concatenate([xy, xy + wh], axis=1)


def random_ranking_split(n_images: int, n_proposals: int = PROPOSALS_PER_IMAGE, appearance_dim: int = 2048,
                         seed: int = 0):
    """A :class:`~salrank.fosrnet.data.RankingSplit` of random cached features (640 x 480 images,
    ``n_proposals`` random boxes each, random RA-SRGT-like scores): training-speed input."""
    from salrank.fosrnet.data import RankingSplit
    from salrank.fosrnet.features import FeatureStore
    from salrank.gt.ranking import ranks_from_scores

    rng = np.random.default_rng(seed)
    n = n_images * n_proposals
    boxes = np.concatenate([_random_boxes(rng, n_proposals, (480, 640)) for _ in range(n_images)]).astype(np.float32)
    arrays = {
        "local": rng.standard_normal((n, 192), dtype=np.float32),
        "global": rng.standard_normal((n, 192), dtype=np.float32),
        "appearance": rng.standard_normal((n, appearance_dim), dtype=np.float32),
        "centers": rng.random((n, 2), dtype=np.float32),
        "boxes": boxes,
        "scores": rng.random(n, dtype=np.float32),
        "geometry": rng.random((n, 3), dtype=np.float32),
    }
    offsets = np.arange(n_images + 1) * n_proposals
    store = FeatureStore(arrays, offsets, [f"bench_{i:06d}" for i in range(n_images)], [(480, 640)] * n_images)
    scores = [rng.random(n_proposals) for _ in range(n_images)]
    return RankingSplit(store, scores, [ranks_from_scores(s) for s in scores], name="bench_random")


def _extractors(cfg: BenchConfig):
    """UNISAL and ResNet101 with random weights on the device (built once per suite run)."""
    from salrank.fosrnet.features import load_backbone, load_psm

    dev = cfg.torch_device
    psm = cfg.model("unisal", lambda: load_psm(pretrained=False, device=dev, seed=cfg.seed))
    cnn = cfg.model("resnet101", lambda: load_backbone("resnet101", pretrained=False, device=dev, seed=cfg.seed))
    return psm, cnn


def _time_calls(fns: Mapping[str, Callable[[], object]], repeats: int, cfg: BenchConfig, warmup: int = 1
                ) -> dict[str, list[float]]:
    """Seconds per call of each function; they alternate within each repeat (load affects all alike)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            cfg.sync()
            start = time.perf_counter()
            fn()
            cfg.sync()
            out[name].append(time.perf_counter() - start)
    return out


# --- the benchmarks --------------------------------------------------------------------------------
def bench_gt_relabel(cfg: BenchConfig) -> list[Measurement]:
    """RA-SRGT relabelling: fast path vs per-point loop (:func:`salrank.bench.gt`, CPU time)."""
    from salrank.bench.gt import SALICON_IMAGES, benchmark

    n_images, loop_images = cfg.pick(cpu=(300, 2000)), 20
    benchmark(n_images=2, loop_images=1, seed=cfg.seed)  # warm-up: first-call costs
    runs = [benchmark(n_images=n_images, loop_images=loop_images, seed=cfg.seed) for _ in range(cfg.repeats)]
    if not all(r["counts_equal"] for r in runs):
        cfg.note("the fast path's counts or ranks differ from the loop's")
    details = {"n_images": n_images, "loop_images": loop_images, "points_per_image": runs[0]["points_per_image"],
               "boxes_per_image": runs[0]["boxes_per_image"], "clock": "process CPU time",
               "counts_equal": all(r["counts_equal"] for r in runs),
               "wall_speedup_median": float(np.median([r["speedup_wall"] for r in runs]))}
    return [
        Measurement("fast", "relabel time per image, fast path", "s/image",
                    [r["fast_s_per_image"] for r in runs], "lower", details),
        Measurement("loop", "relabel time per image, per-point loop", "s/image",
                    [r["loop_s_per_image"] for r in runs], "lower", {"loop_images": loop_images}),
        Measurement("salicon_15k", f"fast relabel of {SALICON_IMAGES:,} images", "s",
                    [r["salicon_s"] for r in runs], "lower",
                    {"extrapolated_from_images": n_images, "measured": n_images >= SALICON_IMAGES}),
    ]


def bench_fixation_load(cfg: BenchConfig) -> list[Measurement]:
    """SALICON 2015 JSON: cold parse vs cached load (:func:`salrank.bench.fixations.benchmark_load`)."""
    from salrank.bench.fixations import benchmark_load

    n_images = cfg.pick(cpu=(50, 1000))
    runs = [benchmark_load(n_images=n_images, seed=cfg.seed) for _ in range(cfg.repeats)]
    details = {"n_images": n_images, "points": int(runs[0]["n_points"]), "json_mb": runs[0]["json_mb"],
               "cache_mb": runs[0]["cache_mb"]}
    return [
        Measurement("parse", f"load {n_images} images' fixations, JSON parse (no cache)", "s",
                    [r["parse_s"] for r in runs], "lower", details),
        Measurement("cached", f"load {n_images} images' fixations from the cache", "s",
                    [r["cached_s"] for r in runs], "lower", {"n_images": n_images}),
    ]


def _available_detectors(cfg: BenchConfig) -> list[str]:
    from salrank.proposals import detector_info, list_detectors

    if cfg.quick:
        return ["efficientdet_d0", "ssdlite320_mobilenet_v3_large"]
    names = []
    for name in list_detectors():
        info = detector_info(name)
        if name == "oracle" or (name.startswith("efficientdet_d") and name[-1] not in "024"):
            continue  # EfficientDet: D0, D2, D4 stand for the family (D7 at 1536 px is slow)
        if info.extra and not (importlib.util.find_spec("ultralytics") if name.startswith("yolo")
                               else importlib.util.find_spec("transformers")):
            cfg.note(f"{name}: skipped (needs the '{info.extra}' extra)")
            continue
        names.append(name)
    return names


def bench_detectors(cfg: BenchConfig) -> list[Measurement]:
    """Detector throughput per backend (:func:`salrank.bench.detectors.benchmark_detector`), random weights,
    random 640 x 480 images; quick: EfficientDet-D0 and SSDlite, full: every built-in backend
    (EfficientDet D0/D2/D4)."""
    from salrank.bench.detectors import benchmark_detector

    batch = cfg.pick(cpu=(1, 1), cuda=(8, 16))
    out = []
    for name in _available_detectors(cfg):
        try:
            with cfg.autocast():
                r = benchmark_detector(name, batch_size=batch, repeats=cfg.samples(2), warmup=1,
                                       device=cfg.torch_device, seed=cfg.seed)
        except Exception as exc:  # one backend failing (e.g. an extra's own download) skips it
            cfg.note(f"{name}: failed ({type(exc).__name__}: {exc})")
            continue
        out.append(Measurement.from_summary(
            name, f"{name} detection throughput", "images/s", median=r["images_per_s"],
            minimum=r["images_per_s_min"], maximum=r["images_per_s_max"], iqr=r["iqr_images_per_s"],
            repeats=r["repeats"], details={"batch_size": batch, "image_size": list(r["image_size"])}))
    if not out:
        raise RuntimeError("no detector could be timed: " + "; ".join(cfg.notes))
    return out


def bench_unisal(cfg: BenchConfig) -> list[Measurement]:
    """UNISAL saliency prediction and f_u features (:func:`salrank.bench.unisal.benchmark`)."""
    from salrank.bench.unisal import benchmark

    batch = cfg.pick(cpu=(1, 4), cuda=(16, 32))
    with cfg.autocast():
        r = benchmark(batch_size=batch, repeats=cfg.samples(3), device=cfg.torch_device, warmup=1,
                      compare_smoothing=not cfg.quick, seed=cfg.seed)
    details = {"batch_size": batch, "image_size": list(r["image_size"]), "network_size": list(r["network_size"])}
    if "fast_smoothing_speedup" in r:
        details["fast_smoothing_speedup"] = r["fast_smoothing_speedup"]
    out = []
    for key, label in (("predict", "saliency maps (preprocessing included)"), ("features", "f_u features")):
        s = r[f"{key}_images_per_s"]
        out.append(Measurement.from_summary(key, f"UNISAL {label}", "images/s", median=s["median"],
                                            minimum=s["min"], maximum=s["max"], iqr=s["iqr"],
                                            repeats=r["repeats"], details=details))
    return out


def bench_features(cfg: BenchConfig) -> list[Measurement]:
    """Per-proposal features (:func:`salrank.fosrnet.features.features_of_images`) with UNISAL + ResNet101,
    crop vs ROI mode, 10 random proposals per SALICON example image; per repeat both modes run
    (alternating) and the UNISAL and ResNet stages are timed inside them."""
    from salrank.fosrnet.features import FeatureConfig, ImageProposals, features_of_images

    n_images = cfg.pick(cpu=(1, 8), cuda=(32, 128))
    batch = cfg.pick(cpu=(32, 32), cuda=(128, 256))
    rng = np.random.default_rng(cfg.seed)
    images = _sample_images(n_images)
    items = [ImageProposals(f"img{i}", im, _random_boxes(rng, PROPOSALS_PER_IMAGE, im.shape[:2]))
             for i, im in enumerate(images)]
    clock = StageClock(cfg.sync)
    unisal, resnet = _extractors(cfg)
    psm = clock.wrap(unisal, "unisal", ["features_per_image"], context=cfg.autocast)
    cnn = clock.wrap(resnet, "resnet", ["__call__", "pooled"], context=cfg.autocast, float_outputs=True)
    stage: dict[str, list[float]] = defaultdict(list)

    def run(mode: str, batch_items=items):
        def fn():
            clock.reset()
            features_of_images(batch_items, psm, cnn, FeatureConfig(mode=mode), batch_size=batch)
            stage[f"unisal_{mode}"].append(clock.seconds["unisal"])
            stage[f"resnet_{mode}"].append(clock.seconds["resnet"])

        return fn

    # warm-up: first-call costs (cheaply on the CPU; on CUDA the full input, for cuDNN's autotuner)
    warm = items if cfg.cuda else [ImageProposals("warm", images[0], items[0].boxes[:2])]
    for mode in ("crop", "roi"):
        run(mode, warm)()
    total = _time_calls({"crop": run("crop"), "roi": run("roi")}, cfg.repeats, cfg, warmup=0)
    stage = {key: values[-cfg.repeats:] for key, values in stage.items()}  # drop the warm-up runs

    def rate(seconds: list[float]) -> list[float]:
        return [n_images / s for s in seconds]

    details = {"images": n_images, "proposals_per_image": PROPOSALS_PER_IMAGE, "batch_size": batch,
               "backbone": "resnet101", "crop_size": 224}
    return [
        Measurement("unisal", "UNISAL f_u stage", "images/s", rate(stage["unisal_crop"] + stage["unisal_roi"]),
                    details=details),
        Measurement("resnet101_crop", "ResNet101 appearance stage, crop mode", "images/s",
                    rate(stage["resnet_crop"]), details=details),
        Measurement("resnet101_roi", "ResNet101 appearance stage, ROI mode", "images/s",
                    rate(stage["resnet_roi"]), details=details),
        Measurement("total_crop", "all per-proposal features, crop mode", "images/s", rate(total["crop"]),
                    details=details),
        Measurement("total_roi", "all per-proposal features, ROI mode", "images/s", rate(total["roi"]),
                    details=details),
    ]


def _head_inputs(n: int, k: int, appearance_dim: int, device):
    import torch

    g = torch.Generator().manual_seed(0)
    feats = {"local": torch.randn(n, k, 192, generator=g), "global": torch.randn(n, k, 192, generator=g),
             "appearance": torch.randn(n, k, appearance_dim, generator=g), "centers": torch.rand(n, k, 2, generator=g)}
    return {key: v.to(device) for key, v in feats.items()}, torch.zeros(n, k, dtype=torch.bool, device=device)


def bench_head(cfg: BenchConfig) -> list[Measurement]:
    """FOSRNet on cached features: FLOP rate of its forward vs a plain matmul of its first layer's
    shape (the method of :func:`salrank.fosrnet.train.benchmark_head`, on any device, one sample per repeat),
    and images/s of :meth:`~salrank.fosrnet.model.FOSRNet.predict_ranks` (forward + ECS + ACB) on random
    cached features of 10 proposals per image."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from salrank.fosrnet.model import create_fosrnet

    dev = cfg.torch_device
    k, appearance_dim = 5, 2048
    n_seq = cfg.pick(cpu=(512, 2048), cuda=(8192, 32768))
    torch.manual_seed(cfg.seed)
    model = create_fosrnet(appearance_dim=appearance_dim, head="vit", k=k, num_classes=k).to(dev)
    feats, mask = _head_inputs(n_seq, k, appearance_dim, dev)
    model.train()  # count through the non-fused path, as benchmark_head does
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(feats, mask)
    flops = counter.get_total_flops()
    model.eval()
    in_dim = model.config.in_dim
    a = torch.randn(n_seq * k, in_dim, device=dev)
    b = torch.randn(in_dim, 384, device=dev)
    mm_flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]

    def forward():
        with torch.no_grad(), cfg.autocast():
            model(feats, mask)

    def matmul():
        with torch.no_grad(), cfg.autocast():
            torch.matmul(a, b)

    secs = _time_calls({"model": forward, "matmul": matmul}, cfg.samples(3), cfg, warmup=1)
    details = {"sequences": n_seq, "k": k, "in_dim": in_dim, "model_gflop": flops / 1e9,
               "matmul_gflop": mm_flops / 1e9, "amp": cfg.amp}

    n_images = cfg.pick(cpu=(32, 256), cuda=(1024, 4096))
    rng = np.random.default_rng(cfg.seed)
    images = []
    for _ in range(n_images):
        boxes = _random_boxes(rng, PROPOSALS_PER_IMAGE, (480, 640)).astype(np.float32)
        images.append({"local": rng.standard_normal((PROPOSALS_PER_IMAGE, 192), dtype=np.float32),
                       "global": rng.standard_normal((PROPOSALS_PER_IMAGE, 192), dtype=np.float32),
                       "appearance": rng.standard_normal((PROPOSALS_PER_IMAGE, appearance_dim), dtype=np.float32),
                       "centers": ((boxes[:, :2] + boxes[:, 2:]) / 2 / [640, 480]).astype(np.float32),
                       "boxes": boxes})
    ranks = _time_calls({"predict": lambda: model.predict_ranks(images)}, cfg.samples(3), cfg, warmup=1)
    return [
        Measurement("model_gflops", "FOSRNet forward FLOP rate", "GFLOP/s",
                    [flops / s / 1e9 for s in secs["model"]], details=details),
        Measurement("matmul_gflops", f"plain matmul ({n_seq * k} x {in_dim}) @ ({in_dim} x 384)", "GFLOP/s",
                    [mm_flops / s / 1e9 for s in secs["matmul"]], details=details),
        Measurement("predict_ranks", "ranking on cached features (forward + ECS + ACB, float32)", "images/s",
                    [n_images / s for s in ranks["predict"]],
                    details={"images": n_images, "proposals_per_image": PROPOSALS_PER_IMAGE}),
    ]


def bench_acb(cfg: BenchConfig) -> list[Measurement]:
    """ACB ranking of one image of n = 20 proposals: per-sequence loop
    (:func:`salrank.fosrnet.acb.rank_sequences_loop`) vs batched (:func:`salrank.fosrnet.acb.rank_sequences_batched`),
    as :func:`salrank.fosrnet.acb.benchmark_acb` times them (same head, CPU, random tokens), with the paper's
    2624-d F_p, one warm-up and one sample per repeat (the two alternate)."""
    import torch

    from salrank.fosrnet.acb import circulative_sequences_batched, rank_sequences_batched, rank_sequences_loop
    from salrank.fosrnet.heads import create_head

    n, k, in_dim = 20, 5, 576 + 2048
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        head = create_head("vit", in_dim=in_dim, k=k, num_classes=k).eval()
        tokens = torch.randn(n, in_dim)
    boxes = _random_boxes(np.random.default_rng(cfg.seed), n, (480, 640))
    batch = circulative_sequences_batched([boxes], k)
    ranks = {}

    def loop():
        ranks["loop"] = rank_sequences_loop(head, tokens, boxes, k)[1]

    def batched():
        ranks["batched"] = rank_sequences_batched(head, tokens, batch)[1]

    secs = _time_calls({"loop": loop, "batched": batched}, cfg.samples(5), cfg, warmup=1)
    same = bool(np.array_equal(ranks["loop"], ranks["batched"]))
    if not same:
        cfg.note("the batched ACB ranks differ from the loop's")
    details = {"n": n, "k": k, "sequences": len(batch.sequences), "in_dim": in_dim, "head": "vit",
               "device": "cpu", "same_ranks": same}
    return [
        Measurement("loop", "ACB ranking of one image, per-sequence loop", "s", secs["loop"], "lower", details),
        Measurement("batched", "ACB ranking of one image, batched", "s", secs["batched"], "lower", details),
    ]


def _pipeline(cfg: BenchConfig, clock: StageClock, batch: int):
    """RankingPipeline (EfficientDet-D0 + UNISAL + ResNet101 + FOSRNet, random weights) whose
    models are stage-timing proxies."""
    import torch

    from salrank.fosrnet.features import FeatureConfig
    from salrank.fosrnet.model import create_fosrnet
    from salrank.fosrnet.pipeline import RankingPipeline
    from salrank.proposals import create_detector

    dev = cfg.torch_device
    detector = create_detector("efficientdet_d0", pretrained=False, device=dev, score_threshold=0.0,
                               batch_size=batch)
    psm, cnn = _extractors(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = create_fosrnet(appearance_dim=cnn.dim).to(dev)
    return RankingPipeline(
        clock.wrap(detector, "detector", ["detect"], context=cfg.autocast),
        clock.wrap(psm, "unisal", ["features_per_image"], context=cfg.autocast),
        clock.wrap(cnn, "resnet", ["__call__", "pooled"], context=cfg.autocast, float_outputs=True),
        clock.wrap(model, "head_acb", ["predict_ranks"], context=cfg.no_autocast),
        FeatureConfig(mode="crop"),
    )


def bench_end_to_end(cfg: BenchConfig) -> list[Measurement]:
    """Images/s of :meth:`salrank.fosrnet.pipeline.RankingPipeline.rank` (EfficientDet-D0 proposals + the
    paper's filtering + UNISAL + ResNet101 crop features + FOSRNet with ECS and ACB) on the SALICON
    example images, and each stage's time per image (``other`` = preprocessing, ROIAlign, filtering)."""
    n_images = cfg.pick(cpu=(1, 8), cuda=(64, 256))
    batch = cfg.pick(cpu=(1, 2), cuda=(16, 32))
    clock = StageClock(cfg.sync)
    pipe = _pipeline(cfg, clock, batch)
    images = _sample_images(n_images)
    names = [f"img{i}" for i in range(n_images)]
    stage: dict[str, list[float]] = defaultdict(list)
    kept: list[float] = []

    def run():
        clock.reset()
        out = pipe.rank(images, names)
        kept.append(float(np.mean([len(r.ranks) for r in out])))
        for s in STAGES[:-1]:
            stage[s].append(clock.seconds[s])

    if cfg.cuda:  # warm-up on the full input (cuDNN's autotuner sees every shape)
        pipe.rank(images, names)
    else:  # first-call costs, cheaply: one image, two proposals
        pipe.filter_options = {"top_n": 2}
        pipe.rank(images[:1])
        pipe.filter_options = {}
    secs = _time_calls({"rank": run}, cfg.repeats, cfg, warmup=0)["rank"]
    stage["other"] = [t - sum(stage[s][i] for s in STAGES[:-1]) for i, t in enumerate(secs)]
    shares = {s: float(np.median([stage[s][i] / t for i, t in enumerate(secs)])) for s in STAGES}
    details = {"images": n_images, "batch_size": batch, "detector": "efficientdet_d0", "psm": "unisal",
               "backbone": "resnet101", "feature_mode": "crop", "amp": cfg.amp,
               "proposals_per_image": float(np.median(kept)), "stage_share": shares}
    out = [Measurement("images_per_s", "end-to-end ranking throughput", "images/s",
                       [n_images / t for t in secs], details=details)]
    labels = {"detector": "EfficientDet-D0 proposals", "unisal": "UNISAL f_u", "resnet": "ResNet101 crops",
              "head_acb": "FOSRNet head + ECS + ACB", "other": "preprocessing, ROIAlign, filtering"}
    for s in STAGES:
        out.append(Measurement(f"{s}_ms", f"stage: {labels[s]}", "ms/image",
                               [1000 * t / n_images for t in stage[s]], "lower", {"share": shares[s]}))
    return out


def bench_training(cfg: BenchConfig) -> list[Measurement]:
    """Training speed on random SALICON-scale cached features (:class:`salrank.fosrnet.train.Trainer`):
    the ``fast`` preset's epoch time on 10,000 images x 10 proposals (quick and on the CPU: an epoch
    over fewer images, scaled by the number of sequences) and the ``paper`` preset's steps/s (one sequence
    per step). Training runs under autocast only with bfloat16."""
    import tempfile

    from salrank.fosrnet.model import FOSRNetConfig
    from salrank.fosrnet.train import Trainer, train_config

    dev = cfg.torch_device
    amp_ok = cfg.amp == "bf16"
    if cfg.amp and not amp_ok:
        cfg.note("training runs in float32: float16 autocast would need a gradient scaler")
    # 25 images = 250 sequences = one near-full step; 256 images = 2,560 = exactly 10 steps of 256
    n_images = cfg.pick(cpu=(25, 256), cuda=(2000, SALICON_TRAIN_IMAGES))
    n_paper = cfg.pick(cpu=(1, 10), cuda=(10, 50))
    model_config = FOSRNetConfig(appearance_dim=2048)

    def trainer(preset: str, n: int, out_dir: str):
        split = random_ranking_split(n, seed=cfg.seed)
        return Trainer(model_config, train_config(preset, seed=cfg.seed), split, out_dir=out_dir, progress=False,
                       device=dev, log=None)

    with tempfile.TemporaryDirectory(prefix="salrank-bench-") as tmp, cfg.autocast(amp_ok):
        fast = trainer("fast", n_images, tmp)
        paper = trainer("paper", n_paper, tmp)
        secs = _time_calls({"fast": fast.train_epoch, "paper": paper.train_epoch}, cfg.repeats, cfg, warmup=1)
    # sequences per image as ACB makes them (10 proposals -> 10 sequences); time scales with sequences
    seqs_full = len(fast.data) / n_images * SALICON_TRAIN_IMAGES
    scale = seqs_full / len(fast.data)
    details = {"images_timed": n_images, "sequences_timed": len(fast.data), "proposals_per_image": PROPOSALS_PER_IMAGE,
               "batch_size": fast.config.batch_size, "steps_per_epoch_10k": math.ceil(seqs_full / fast.config.batch_size),
               "measured": n_images >= SALICON_TRAIN_IMAGES, "amp": cfg.amp if amp_ok else None}
    return [
        Measurement("fast_epoch_10k", f"fast preset: one epoch on {SALICON_TRAIN_IMAGES:,} images", "s",
                    [s * scale for s in secs["fast"]], "lower", details),
        Measurement("paper_steps_per_s", "paper preset: one-sequence SGD steps", "steps/s",
                    [len(paper.data) / s for s in secs["paper"]],
                    details={"steps_timed": len(paper.data), "amp": cfg.amp if amp_ok else None}),
    ]


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: ``run(config)`` returns its :class:`Measurement` list."""

    name: str
    description: str
    run: Callable[[BenchConfig], list[Measurement]]


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("gt_relabel", "RA-SRGT relabelling, fast path vs per-point loop (CPU time)", bench_gt_relabel),
    Benchmark("fixation_load", "SALICON JSON fixations: cold parse vs cached load", bench_fixation_load),
    Benchmark("detectors", "detector throughput per backend", bench_detectors),
    Benchmark("unisal", "UNISAL saliency maps and f_u features", bench_unisal),
    Benchmark("features", "UNISAL + ResNet101 per-proposal features, crop vs ROI mode", bench_features),
    Benchmark("head", "FOSRNet head on cached features: FLOP rate vs matmul, ranking images/s", bench_head),
    Benchmark("acb", "ACB ranking at n = 20: batched vs per-sequence loop", bench_acb),
    Benchmark("end_to_end", "EfficientDet-D0 + UNISAL + ResNet101 + FOSRNet, per-stage times", bench_end_to_end),
    Benchmark("training", "training on SALICON-scale cached features", bench_training),
)}


# --- ratios and targets ----------------------------------------------------------------------------
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
    """A speed target of the issue: ``source`` (a ratio or result name) ``op`` (``>=`` or ``<``)
    ``threshold``; ``requires_cuda``: judged only on a CUDA run."""

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
    Target("end_to_end_gpu", "end to end >= 100 images/s on GPU (EfficientDet-D0 + UNISAL + ResNet101)",
           "end_to_end.images_per_s", ">=", 100.0, "images/s", requires_cuda=True),
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
    ``pass``/``fail``; ``not run`` when its figure is missing; ``n/a`` for a CUDA target elsewhere.
    ``passed`` is True/False, or None when not judged."""
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


# --- the suite -------------------------------------------------------------------------------------
def _rss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other processes competing for the CPU), if known."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):  # pragma: no cover - not on Windows
        return None


def _finite(obj):
    """``obj`` with non-finite floats replaced by ``None`` and NumPy scalars by Python ones (JSON)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _select(only: str | Iterable[str] | None, available: Mapping[str, Benchmark]) -> list[str]:
    if only is None:
        return list(available)
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(available)}")
    if not names:
        raise ValueError(f"no benchmark named; known: {', '.join(available)}")
    return [n for n in available if n in names]


def _run_one(benchmark: Benchmark, cfg: BenchConfig, progress: bool) -> tuple[list[Measurement], dict]:
    """Run one benchmark: its measurements and its run info (duration, notes, error, peak memory)."""
    import torch
    from tqdm.auto import tqdm

    if cfg.cuda:
        torch.cuda.reset_peak_memory_stats(cfg.torch_device)
    info: dict = {"description": benchmark.description}
    t0 = time.perf_counter()
    try:
        measured = list(benchmark.run(cfg))
    except Exception as exc:  # recorded; the other benchmarks still run
        info["error"] = f"{type(exc).__name__}: {exc}"
        measured = []
        if progress:
            tqdm.write(f"salrank bench: {benchmark.name} failed: {info['error']}", file=sys.stderr)
    info["duration_s"] = time.perf_counter() - t0
    info["notes"] = list(cfg.notes)
    info["peak_rss_mib"] = _rss_mib()
    if cfg.cuda:
        info["cuda_peak_mib"] = torch.cuda.max_memory_allocated(cfg.torch_device) / 2**20
    return measured, info


def run_suite(quick: bool = False, device: str = "cpu", only: str | Iterable[str] | None = None,
              repeats: int | None = None, progress: bool = True, *, amp: str | None = "auto", seed: int = 0,
              benchmarks: Mapping[str, Benchmark] | None = None) -> dict:
    """Run the benchmarks (all, or those in ``only``) and return the record (see the module doc).

    ``quick``: small sizes (about 2-4 minutes on a 2-core CPU); ``repeats``: timed runs per figure
    (default 3 quick, 5 full); ``amp``: see :func:`resolve_amp`; ``benchmarks``: replaces
    :data:`BENCHMARKS`. A benchmark that raises is recorded with its error and the others still run.
    Raises ``ValueError`` for unknown names in ``only`` or ``repeats < 1``.
    """
    import torch
    from tqdm.auto import tqdm

    from salrank.config import resolve_device
    from salrank.provenance import hardware, package_versions

    available = dict(BENCHMARKS if benchmarks is None else benchmarks)
    names = _select(only, available)
    repeats = (3 if quick else 5) if repeats is None else int(repeats)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    dev = resolve_device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    amp_name = resolve_amp(amp, dev)
    hw = hardware()
    meta = {
        "schema": SCHEMA, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": bool(quick),
        "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else
        f"CPU ({hw.get('cpu_count')} cores, {torch.get_num_threads()} torch threads)",
        "amp": amp_name, "repeats": repeats, "seed": seed, "benchmarks": names,
        "weights": "random (a network costs the same with trained weights)",
        "versions": package_versions(), "hardware": hw, "load_average": {"start": _load_average()},
    }
    results: list[dict] = []
    runs: dict[str, dict] = {}
    start_all = time.perf_counter()
    cudnn_benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = dev.type == "cuda"  # fixed input sizes: let cuDNN pick kernels
    shared: dict = {}  # models built once per run
    try:
        bar = tqdm(names, desc="salrank bench", unit="benchmark", disable=not progress, file=sys.stderr)
        for name in bar:
            bar.set_postfix_str(name)
            cfg = BenchConfig(quick=bool(quick), device=str(dev), repeats=repeats, amp=amp_name, seed=seed,
                              shared=shared)
            measured, runs[name] = _run_one(available[name], cfg, progress)
            for m in measured:
                entry = m.to_dict(name)
                if not entry["name"].startswith(f"{name}."):
                    entry["name"] = f"{name}.{entry['name']}"
                results.append(entry)
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark
        shared.clear()
    meta["duration_s"] = time.perf_counter() - start_all
    meta["load_average"]["end"] = _load_average()
    ratios = compute_ratios(results)
    record = {"meta": meta, "results": results, "ratios": ratios,
              "targets": evaluate_targets(results, ratios, str(dev)), "benchmarks": runs,
              "memory": {"peak_rss_mib": _rss_mib(),
                         "cuda_peak_mib": max((r.get("cuda_peak_mib", 0.0) for r in runs.values()), default=None)
                         if dev.type == "cuda" else None}}
    return _finite(record)


# --- presentation ----------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_summary(record: Mapping) -> str:
    """A readable summary of a record: results, ratios, targets (PASS/FAIL) and failed benchmarks."""
    meta = record["meta"]
    lines = [f"salrank bench on {meta['device']} ({meta.get('device_name', '')}), "
             f"{'quick' if meta['quick'] else 'full'}, {meta['repeats']} repeats, AMP {meta.get('amp') or 'off'}, "
             f"{meta['date']}, {_fmt(meta.get('duration_s'))} s", ""]
    rows = [("result", "median", "IQR", "min", "max", "unit", "n")]
    for r in record["results"]:
        s = r["spread"]
        rows.append((r["name"], _fmt(r["median"]), _fmt(s["iqr"]), _fmt(s["min"]), _fmt(s["max"]), r["unit"],
                     str(r["repeats"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    if record["ratios"]:
        lines += ["", "ratios (measured in this run)"]
        for r in record["ratios"]:
            sp = r["spread"]
            extra = f"; per repeat {_fmt(sp['min'])} .. {_fmt(sp['max'])}" if sp else ""
            lines.append(f"  {r['name']:30s} {_fmt(r['value']):>8s}  {r['description']} "
                         f"(best runs {_fmt(r.get('best'))}{extra})")
    lines += ["", "targets"]
    for t in record["targets"]:
        value = f"{_fmt(t['value'])} {t['op']} {_fmt(t['threshold'])} {t['unit']}" if t["value"] is not None else ""
        lines.append(f"  {t['status'].upper():8s} {t['description']:72s} {value}")
    failed = {n: i["error"] for n, i in record.get("benchmarks", {}).items() if i.get("error")}
    notes = [(n, x) for n, i in record.get("benchmarks", {}).items() for x in i.get("notes", [])]
    if failed or notes:
        lines += ["", "notes"]
        lines += [f"  {n}: FAILED: {e}" for n, e in failed.items()]
        lines += [f"  {n}: {x}" for n, x in notes]
    mem = record.get("memory") or {}
    lines += ["", f"peak memory: {_fmt(mem.get('peak_rss_mib'))} MiB resident"
              + (f", {_fmt(mem['cuda_peak_mib'])} MiB CUDA" if mem.get("cuda_peak_mib") else "")]
    return "\n".join(lines)


#: The paper's Table IV-A: SRCC, F1 and FPS of saliency-ranking methods, with the platform timed on
#: ("-": not stated). "Ours" is FOSRNet, proposals included.
PAPER_TABLE4A: dict[str, dict] = {
    "ASSR": {"SRCC": 0.714, "F1": 0.523, "FPS": 2.2, "Platform": "1080Ti"},
    "ILRSR": {"SRCC": 0.806, "F1": 0.609, "FPS": 15.4, "Platform": "-"},
    "PPA": {"SRCC": 0.818, "F1": 0.642, "FPS": 17.1, "Platform": "TITAN RTX"},
    "RSDNet": {"SRCC": 0.705, "F1": 0.518, "FPS": 4.6, "Platform": "-"},
    "Bi-OCPL": {"SRCC": 0.834, "F1": 0.684, "FPS": 13.8, "Platform": "Tesla GPU"},
    "Ours": {"SRCC": 0.882, "F1": 0.701, "FPS": 20.5, "Platform": "2080Ti"},
}
STAGE_LABELS = {"detector": "EfficientDet-D0 (proposals)", "unisal": "UNISAL (f_u)", "resnet": "ResNet101 (crops)",
                "head_acb": "FOSRNet head + ECS + ACB", "other": "other (preprocessing, ROIAlign, filtering)"}


def _result(record: Mapping, name: str) -> Mapping | None:
    return next((r for r in record["results"] if r["name"] == name), None)


def record_label(record: Mapping) -> str:
    """A short label of a record: ``CPU (2 cores, 2 torch threads) quick``, ``NVIDIA H100 full, bf16`` ..."""
    meta = record["meta"]
    device = meta.get("device_name") or meta["device"]
    amp = f", {meta['amp']}" if meta.get("amp") else ""
    return f"{device} {'quick' if meta['quick'] else 'full'}{amp}"


def runs_frame(records: Mapping[str, Mapping]):
    """One row per record: device, hardware, AMP, quick, repeats, date, duration, load average."""
    import pandas as pd

    rows = []
    for name, rec in records.items():
        m = rec["meta"]
        load = (m.get("load_average") or {}).get("start")
        rows.append({"record": name, "device": m["device"], "hardware": m.get("device_name"), "AMP": m.get("amp") or "off",
                     "quick": m["quick"], "repeats": m["repeats"], "date": m["date"][:10],
                     "duration (s)": m.get("duration_s"), "load average at start": load[0] if load else None,
                     "torch": m["versions"].get("torch")})
    return pd.DataFrame(rows)


def table4_frame(records: Mapping[str, Mapping]):
    """The paper's Table IV-A (rows SRCC, F1, FPS, Platform; a column per method) with a column per
    record: its end-to-end images/s (median) and platform; SRCC/F1 are not speed figures (blank)."""
    import pandas as pd

    table = pd.DataFrame(PAPER_TABLE4A).astype(object)
    table.columns = [f"{c} (paper)" for c in table.columns]
    for name, rec in records.items():
        e2e = _result(rec, "end_to_end.images_per_s")
        table[f"salrank: {name}"] = [None, None, None if e2e is None else e2e["median"], record_label(rec)]
    table.index.name = "metric"
    return table


def stage_frame(records: Mapping[str, Mapping]):
    """Long table of the end-to-end stages per record: ``record``, ``stage`` (label), ``ms/image``
    (median), ``share`` (median share of the whole call), ``FPS`` (1000 / ms) and ``paper FPS``
    (RTX 2080Ti: the whole pipeline, Table IV-A, and EfficientDet alone, Table IV-B). A row
    ``EfficientDet-D0 alone`` gives the ``detectors`` benchmark's figure when the record has it."""
    import pandas as pd

    from salrank.analysis.detectors import PAPER_PIPELINE_FPS, PAPER_TABLE4B_FPS

    rows = []
    for name, rec in records.items():
        e2e = _result(rec, "end_to_end.images_per_s")
        if e2e is not None:
            shares = e2e["details"]["stage_share"]
            for stage in STAGES:
                r = _result(rec, f"end_to_end.{stage}_ms")
                ms = r["median"] if r else None
                rows.append({"record": name, "stage": STAGE_LABELS[stage], "ms/image": ms,
                             "share": shares.get(stage), "FPS": 1000.0 / ms if ms else None, "paper FPS": None})
            rows.append({"record": name, "stage": "whole pipeline", "ms/image": 1000.0 / e2e["median"],
                         "share": 1.0, "FPS": e2e["median"], "paper FPS": PAPER_PIPELINE_FPS})
        det = _result(rec, "detectors.efficientdet_d0")
        if det is not None:
            rows.append({"record": name, "stage": "EfficientDet-D0 alone (detectors benchmark)",
                         "ms/image": 1000.0 / det["median"], "share": None, "FPS": det["median"],
                         "paper FPS": PAPER_TABLE4B_FPS["EfficientDet"]})
    return pd.DataFrame(rows, columns=["record", "stage", "ms/image", "share", "FPS", "paper FPS"])


def targets_frame(records: Mapping[str, Mapping]):
    """Targets (rows) x records (columns): ``PASS 97.9`` / ``FAIL 742`` / ``n/a`` / ``not run``."""
    import pandas as pd

    table = {}
    for name, rec in records.items():
        col = {}
        for t in rec["targets"]:
            value = "" if t["value"] is None else f" ({_fmt(t['value'])})"
            col[t["description"]] = t["status"].upper() + value if t["status"] in ("pass", "fail") else t["status"]
        table[name] = col
    return pd.DataFrame(table).rename_axis("target")


def ratios_frame(records: Mapping[str, Mapping]):
    """Ratios (rows) x records (columns): the ratio of the medians measured in that run."""
    import pandas as pd

    return pd.DataFrame({name: {r["description"]: r["value"] for r in rec["ratios"]}
                         for name, rec in records.items()}).rename_axis("ratio (same run)")


def load_records(directory: str | os.PathLike | None = None) -> dict[str, dict]:
    """``{file stem: record}`` of the ``*.json`` records in ``directory`` (default: the first of
    ``./benchmarks``, ``../benchmarks`` and the source checkout's ``benchmarks/`` that exists),
    sorted by name. Files that are not bench records (no ``meta.schema``) are skipped."""
    if directory is None:
        candidates = [Path.cwd() / "benchmarks", Path.cwd().parent / "benchmarks",
                      Path(__file__).resolve().parents[1] / "benchmarks"]
        directory = next((c for c in candidates if c.is_dir()), candidates[-1])
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no benchmark records folder")
    out = {}
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if isinstance(record, dict) and str(record.get("meta", {}).get("schema", "")).startswith("salrank-bench/"):
            out[path.stem] = record
    return out


def _main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - python -m salrank.bench.suite
    from salrank.cli import main

    raise SystemExit(main(["bench", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":  # pragma: no cover
    _main()
