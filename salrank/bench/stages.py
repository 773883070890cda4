"""The measurements of the suite: one ``bench_<name>(cfg) -> list[Measurement]`` per benchmark.

Each takes a :class:`~salrank.bench.core.BenchConfig` (sizes from ``cfg.quick`` and the device,
``cfg.repeats`` timed runs) and returns its figures; keyword arguments after ``cfg`` shrink the
problem for tests. The lower-level stage timers they call live beside them:
:mod:`salrank.bench.gt`, :mod:`salrank.bench.fixations`, :mod:`salrank.bench.detectors`,
:mod:`salrank.bench.unisal`. All models have random weights (a network costs the same with trained
weights). On CUDA the neural stages run under ``cfg.autocast()``; the ranking head's ECS/ACB step
runs in float32 (its assignment reads the logits into NumPy).
"""

from __future__ import annotations

import importlib.util
import math
from collections import defaultdict

import numpy as np

from salrank.bench.core import (
    PROPOSALS_PER_IMAGE,
    BenchConfig,
    Measurement,
    StageClock,
    random_boxes,
    random_features,
    random_ranking_split,
    time_calls,
)

__all__ = [
    "SALICON_TRAIN_IMAGES",
    "STAGES",
    "STAGE_LABELS",
    "bench_acb",
    "bench_detectors",
    "bench_end_to_end",
    "bench_features",
    "bench_fixation_load",
    "bench_gt_relabel",
    "bench_head",
    "bench_training",
    "bench_unisal",
    "forward_flops",
]

SALICON_TRAIN_IMAGES = 10_000
#: The end-to-end stages, in pipeline order (``other``: preprocessing, ROIAlign, filtering).
STAGES = ("detector", "unisal", "resnet", "head_acb", "other")
STAGE_LABELS = {"detector": "EfficientDet-D0 (proposals)", "unisal": "UNISAL (f_u)", "resnet": "ResNet101 (crops)",
                "head_acb": "FOSRNet head + ECS + ACB", "other": "other (preprocessing, ROIAlign, filtering)"}


def _sample_images(n: int) -> list[np.ndarray]:
    """``n`` RGB uint8 arrays: the embedded SALICON examples (640 x 480), cycled."""
    from PIL import Image

    from salrank.data.sample import salicon_example_images

    paths = sorted(salicon_example_images().values())
    loaded = [np.asarray(Image.open(p).convert("RGB")) for p in paths[: min(n, len(paths))]]
    return [loaded[i % len(loaded)] for i in range(n)]


def _extractors(cfg: BenchConfig):
    """UNISAL and ResNet101 with random weights on the device (built once per suite run)."""
    from salrank.models.backbones import load_backbone, load_psm

    dev = cfg.torch_device
    psm = cfg.model("unisal", lambda: load_psm(pretrained=False, device=dev, seed=cfg.seed))
    cnn = cfg.model("resnet101", lambda: load_backbone("resnet101", pretrained=False, device=dev, seed=cfg.seed))
    return psm, cnn


def bench_gt_relabel(cfg: BenchConfig) -> list[Measurement]:
    """RA-SRGT relabelling: fast path vs per-point loop (:func:`salrank.bench.gt.benchmark`, CPU time)."""
    from salrank.bench.gt import SALICON_IMAGES, benchmark

    n_images, loop_images = cfg.pick(cpu=(300, 2000)), 20
    benchmark(n_images=2, loop_images=1, seed=cfg.seed)  # warm-up: first-call costs
    runs = [benchmark(n_images=n_images, loop_images=loop_images, seed=cfg.seed) for _ in range(cfg.repeats)]
    equal = all(r["counts_equal"] for r in runs)
    if not equal:
        cfg.note("the fast path's counts or ranks differ from the loop's")
    details = {"n_images": n_images, "loop_images": loop_images, "points_per_image": runs[0]["points_per_image"],
               "boxes_per_image": runs[0]["boxes_per_image"], "clock": "process CPU time",
               "counts_equal": equal, "wall_speedup_median": float(np.median([r["speedup_wall"] for r in runs]))}
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
    """Detector throughput per backend (:func:`salrank.bench.detectors.benchmark_detector`), random
    weights, random 640 x 480 images; quick: EfficientDet-D0 and SSDlite, full: every built-in
    backend (EfficientDet D0/D2/D4)."""
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
        out.append(Measurement(name, f"{name} detection throughput", "images/s", r["images_per_s_samples"],
                               details={"batch_size": batch, "image_size": list(r["image_size"])}))
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
    return [Measurement(key, f"UNISAL {label}", "images/s", r[f"{key}_images_per_s"]["samples"], details=details)
            for key, label in (("predict", "saliency maps (preprocessing included)"), ("features", "f_u features"))]


def bench_features(cfg: BenchConfig) -> list[Measurement]:
    """Per-proposal features (:func:`salrank.fosrnet.features.features_of_images`) with UNISAL +
    ResNet101, crop vs ROI mode, 10 random proposals per SALICON example image; per repeat both
    modes run (alternating) and the UNISAL and ResNet stages are timed inside them."""
    from salrank.fosrnet.features import FeatureConfig, ImageProposals, features_of_images

    n_images = cfg.pick(cpu=(1, 8), cuda=(32, 128))
    batch = cfg.pick(cpu=(32, 32), cuda=(128, 256))
    rng = np.random.default_rng(cfg.seed)
    images = _sample_images(n_images)
    items = [ImageProposals(f"img{i}", im, random_boxes(rng, PROPOSALS_PER_IMAGE, im.shape[:2]))
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
    total = time_calls({"crop": run("crop"), "roi": run("roi")}, cfg.repeats, warmup=0, sync=cfg.sync)
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


def forward_flops(model, *args) -> int:
    """Floating-point operations of ``model(*args)`` counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts 2), without gradients.
    The model is counted in training mode, so that the same maths is seen through PyTorch's
    non-fused paths (its fused inference kernels hide from the counter); its mode is restored."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*args)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def bench_head(cfg: BenchConfig, *, head: str = "vit", appearance_dim: int = 2048, n_sequences: int | None = None,
               n_images: int | None = None) -> list[Measurement]:
    """FOSRNet on cached features: FLOP rate of its forward on ``n_sequences`` random sequences of
    k = 5 proposals (FLOPs from :func:`forward_flops`) vs a plain matmul of its first layer's
    shape, (n_sequences * k, in_dim) @ (in_dim, 384), timed alternately; and images/s of
    :meth:`~salrank.fosrnet.model.FOSRNet.predict_ranks` (forward + ECS + ACB, float32) on
    ``n_images`` images of 10 random proposals (:func:`~salrank.bench.core.random_features`)."""
    import torch

    from salrank.fosrnet.model import create_fosrnet

    dev = cfg.torch_device
    k = 5
    n_seq = n_sequences or cfg.pick(cpu=(512, 2048), cuda=(8192, 32768))
    n_images = n_images or cfg.pick(cpu=(32, 256), cuda=(1024, 4096))
    torch.manual_seed(cfg.seed)
    model = create_fosrnet(appearance_dim=appearance_dim, head=head, k=k, num_classes=k).to(dev).eval()
    rng = np.random.default_rng(cfg.seed)
    flat = random_features(rng, n_seq * k, appearance_dim)
    feats = {key: torch.from_numpy(flat[key].reshape(n_seq, k, -1)).to(dev) for key in model.config.required_keys}
    mask = torch.zeros(n_seq, k, dtype=torch.bool, device=dev)
    flops = forward_flops(model, feats, mask)
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

    secs = time_calls({"model": forward, "matmul": matmul}, cfg.samples(3), sync=cfg.sync)
    details = {"sequences": n_seq, "k": k, "head": head, "in_dim": in_dim, "model_flops": flops,
               "model_gflop": flops / 1e9, "matmul_gflop": mm_flops / 1e9, "amp": cfg.amp}
    images = [random_features(rng, PROPOSALS_PER_IMAGE, appearance_dim) for _ in range(n_images)]
    ranks = time_calls({"predict": lambda: model.predict_ranks(images)}, cfg.samples(3), sync=cfg.sync)
    return [
        Measurement("model_gflops", "FOSRNet forward FLOP rate", "GFLOP/s",
                    [flops / s / 1e9 for s in secs["model"]], details=details),
        Measurement("matmul_gflops", f"plain matmul ({n_seq * k} x {in_dim}) @ ({in_dim} x 384)", "GFLOP/s",
                    [mm_flops / s / 1e9 for s in secs["matmul"]], details=details),
        Measurement("predict_ranks", "ranking on cached features (forward + ECS + ACB, float32)", "images/s",
                    [n_images / s for s in ranks["predict"]],
                    details={"images": n_images, "proposals_per_image": PROPOSALS_PER_IMAGE}),
    ]


def bench_acb(cfg: BenchConfig, *, n: int = 20, head: str = "vit", in_dim: int = 576 + 2048) -> list[Measurement]:
    """ACB ranking of one image of ``n`` random proposals on the CPU: per-sequence loop
    (:func:`salrank.fosrnet.acb.rank_sequences_loop`: per sequence one head forward on (1, k, D) +
    a Hungarian assignment) vs batched (:func:`salrank.fosrnet.acb.rank_sequences_batched`: one
    forward on all sequences + vectorised exact assignment + vote aggregation), with the same freshly
    initialised ``head`` (eval mode) and random tokens of the paper's F_p width ``in_dim``; the two
    alternate, one warm-up, ``5 * repeats`` samples. ``details["same_ranks"]``: both gave the same
    ranks in every run."""
    import torch

    from salrank.fosrnet.acb import circulative_sequences_batched, rank_sequences_batched, rank_sequences_loop
    from salrank.fosrnet.heads import create_head

    k = 5
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = create_head(head, in_dim=in_dim, k=k, num_classes=k).eval()
        tokens = torch.randn(n, in_dim)
    boxes = random_boxes(np.random.default_rng(cfg.seed), n, (480, 640))
    batch = circulative_sequences_batched([boxes], k)
    same: list[bool] = []
    ranks = {}

    def loop():
        ranks["loop"] = rank_sequences_loop(model, tokens, boxes, k)[1]

    def batched():
        ranks["batched"] = rank_sequences_batched(model, tokens, batch)[1]
        same.append(bool(np.array_equal(ranks["loop"], ranks["batched"])))

    secs = time_calls({"loop": loop, "batched": batched}, cfg.samples(5))
    if not all(same):
        cfg.note("the batched ACB ranks differ from the loop's")
    details = {"n": n, "k": k, "sequences": len(batch.sequences), "in_dim": in_dim, "head": head,
               "device": "cpu", "same_ranks": all(same)}
    return [
        Measurement("loop", f"ACB ranking of one image of {n} proposals, per-sequence loop", "s", secs["loop"],
                    "lower", details),
        Measurement("batched", f"ACB ranking of one image of {n} proposals, batched", "s", secs["batched"],
                    "lower", details),
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
        FeatureConfig(mode="crop"), batch_size=batch,
    )


def bench_end_to_end(cfg: BenchConfig) -> list[Measurement]:
    """Images/s of :meth:`salrank.fosrnet.pipeline.RankingPipeline.rank` (EfficientDet-D0 proposals +
    the paper's filtering + UNISAL + ResNet101 crop features + FOSRNet with ECS and ACB) on the
    SALICON example images, and each stage's time per image (``other`` = preprocessing, ROIAlign,
    filtering)."""
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
    secs = time_calls({"rank": run}, cfg.repeats, warmup=0, sync=cfg.sync)["rank"]
    stage["other"] = [t - sum(stage[s][i] for s in STAGES[:-1]) for i, t in enumerate(secs)]
    shares = {s: float(np.median([stage[s][i] / t for i, t in enumerate(secs)])) for s in STAGES}
    details = {"images": n_images, "batch_size": batch, "detector": "efficientdet_d0", "psm": "unisal",
               "backbone": "resnet101", "feature_mode": "crop", "amp": cfg.amp,
               "proposals_per_image": float(np.median(kept)), "stage_share": shares}
    out = [Measurement("images_per_s", "end-to-end ranking throughput", "images/s",
                       [n_images / t for t in secs], details=details)]
    for s in STAGES:
        out.append(Measurement(f"{s}_ms", f"stage: {STAGE_LABELS[s]}", "ms/image",
                               [1000 * t / n_images for t in stage[s]], "lower", {"share": shares[s]}))
    return out


def bench_training(cfg: BenchConfig, *, n_images: int | None = None, n_paper: int | None = None,
                   appearance_dim: int = 2048) -> list[Measurement]:
    """Training speed on random SALICON-scale cached features (:class:`salrank.fosrnet.train.Trainer`
    on :func:`~salrank.bench.core.random_ranking_split`): the ``fast`` preset's epoch time on 10,000
    images x 10 proposals (quick and on the CPU: an epoch over ``n_images`` images, scaled by the
    number of sequences) and the ``paper`` preset's steps/s (one sequence per step, an epoch over
    ``n_paper`` images). Training runs under autocast only with bfloat16."""
    import tempfile

    from salrank.fosrnet.model import FOSRNetConfig
    from salrank.fosrnet.train import Trainer, train_config

    dev = cfg.torch_device
    amp_ok = cfg.amp == "bf16"
    if cfg.amp and not amp_ok:
        cfg.note("training runs in float32: float16 autocast would need a gradient scaler")
    # 25 images = 250 sequences = one near-full step; 256 images = 2,560 = exactly 10 steps of 256
    n_images = n_images or cfg.pick(cpu=(25, 256), cuda=(2000, SALICON_TRAIN_IMAGES))
    n_paper = n_paper or cfg.pick(cpu=(1, 10), cuda=(10, 50))
    model_config = FOSRNetConfig(appearance_dim=appearance_dim)

    def trainer(preset: str, n: int, out_dir: str):
        split = random_ranking_split(n, appearance_dim=appearance_dim, seed=cfg.seed)
        return Trainer(model_config, train_config(preset, seed=cfg.seed), split, out_dir=out_dir, progress=False,
                       device=dev, log=None)

    with tempfile.TemporaryDirectory(prefix="salrank-bench-") as tmp, cfg.autocast(amp_ok):
        fast = trainer("fast", n_images, tmp)
        paper = trainer("paper", n_paper, tmp)
        secs = time_calls({"fast": fast.train_epoch, "paper": paper.train_epoch}, cfg.repeats, sync=cfg.sync)
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
