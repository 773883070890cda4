"""The benchmark suite behind ``salrank bench`` and the Table IV page: every stage's speed, one record.

:func:`run_suite` runs the benchmarks of :data:`BENCHMARKS` (their measurements:
:mod:`salrank.bench.stages`; or those named in ``only``) and returns a JSON-able record:

* ``meta``: what it ran on (:mod:`salrank.provenance` versions and hardware), the device, AMP
  dtype, quick flag, repeats, date, duration and the machine's load average at start and end;
* ``results``: one entry per measured figure: ``name`` (``<benchmark>.<figure>``), ``benchmark``,
  ``metric``, ``unit``, ``better`` (``higher``/``lower``), ``median``, ``spread`` (``q1``, ``q3``,
  ``iqr``, ``min``, ``max`` over the repeats), ``repeats``, ``samples`` and ``details``;
* ``ratios``: the comparisons of :data:`~salrank.bench.targets.RATIOS` (fast path vs loop, ...) between figures measured in
  the same run: ``value`` = ratio of the medians, ``spread`` = min/median/max of the per-repeat
  ratios when both sides have the same number of repeats (the sides alternate or share a run),
  ``best`` = ratio of the fastest runs;
* ``targets``: each target of :data:`~salrank.bench.targets.TARGETS` with its value, threshold and ``status``
  (``pass``, ``fail``, ``not run``, ``n/a`` for the CUDA-only target on another device);
* ``benchmarks``: per benchmark its duration, notes, error (if it failed) and peak memory
  (``resource.getrusage`` resident set size of the process so far; on CUDA
  ``torch.cuda.max_memory_allocated`` during the benchmark).

Repeats: every figure is timed ``repeats`` times (after a warm-up); cheap figures (detectors,
UNISAL, head, ACB) take 2-5 times as many samples so that their medians resist the bursts of load of
a shared machine. Timing (:func:`salrank.bench.core.time_calls`): wall-clock seconds (the device is
synchronised around each timed call on CUDA), except the RA-SRGT relabelling, timed in process CPU
seconds by :func:`salrank.bench.gt.benchmark` (steadier on a shared machine). All models have random weights: a
network costs the same with trained weights; only a detector's post-processing depends on them
(with random weights fewer candidates pass its score threshold).

On CUDA the neural stages (detector, UNISAL, ResNet, FOSRNet forward, training) run under
:func:`torch.autocast` (``amp="auto"``: bfloat16 where supported, else float16; training only with
bfloat16, which needs no gradient scaler) with larger batches. The ranking head's ECS/ACB step runs
in float32 (its assignment reads the logits into NumPy). Every code path also runs on the CPU
(``amp`` is off there unless asked for).

The benchmark functions can be replaced: ``run_suite(benchmarks={name: Benchmark(...)})`` (tests
inject fake timings this way). :mod:`salrank.bench.records` reads and presents stored records.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

import numpy as np

from salrank.bench.core import BenchConfig, Benchmark, Measurement, resolve_amp
from salrank.bench.hardware import bench_flop_bound, bench_host_overhead
from salrank.bench.records import SCHEMA
from salrank.bench.stages import (
    bench_acb,
    bench_detectors,
    bench_end_to_end,
    bench_features,
    bench_fixation_load,
    bench_gt_relabel,
    bench_head,
    bench_training,
    bench_unisal,
)
from salrank.bench.targets import compute_ratios, evaluate_targets

__all__ = ["BENCHMARKS", "run_suite"]


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
    Benchmark("flop_bound", "end to end as a fraction of the FLOP bound, per-image vs batched", bench_flop_bound),
    Benchmark("host_overhead", "host CPU time per image with every network stubbed", bench_host_overhead),
)}


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
