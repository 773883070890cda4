"""Hardware-relative figures of the end-to-end ranking: FLOP-bound fraction and host overhead.

Both are measured in one run, *before* (the per-image path: :meth:`RankingPipeline.rank` called
once per image) and *after* (the batched path: one call for all the images):

* **FLOP-bound fraction** (:func:`bench_flop_bound`): the FLOPs per image of each stage, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add = 2; EfficientDet-D0 on one
  image, UNISAL's ``f_u``, ResNet101 on the image's crops (crop mode) or on the whole image (ROI
  mode), the FOSRNet head on the image's ACB sequences), and the plain matmul FLOP rate of the
  device, timed in the same run. The fraction is end-to-end images/s divided by (matmul rate /
  FLOPs per image): 1.0 means the pipeline runs as fast as its arithmetic allows at the rate of
  a large matmul. Each stage's own fraction = its FLOPs / (its time per image x matmul rate).
* **Host overhead** (:func:`bench_host_overhead`): process CPU time per image of the whole
  pipeline (JPEG decoding, resizing, crops, filtering, ECS/ACB, result assembly) with every network
  (detector, UNISAL, ResNet, the FOSRNet embedding and head) replaced by a stub returning outputs
  of the right shapes at no cost, on a batch of images (64 in full runs).

All models have random weights (a network costs the same with trained weights).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from salrank.bench.core import PROPOSALS_PER_IMAGE, BenchConfig, Measurement, StageClock, time_calls

__all__ = ["bench_flop_bound", "bench_host_overhead", "count_flops", "matmul_rate", "stage_flops"]

MODES = ("crop", "roi")
PATHS = ("per_image", "batched")


def count_flops(fn, *args, **kwargs) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` without gradients (:class:`~torch.utils.flop_counter.FlopCounterMode`)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def matmul_rate(cfg: BenchConfig, n: int | None = None, repeats: int | None = None) -> list[float]:
    """FLOP/s samples of a plain square ``n x n`` matmul on the device (under the run's autocast)."""
    import torch

    n = n or cfg.pick(cpu=(1024, 2048), cuda=(8192, 8192))
    gen = torch.Generator().manual_seed(cfg.seed)
    a = torch.randn(n, n, generator=gen).to(cfg.torch_device)
    b = torch.randn(n, n, generator=gen).to(cfg.torch_device)

    def mm():
        with torch.no_grad(), cfg.autocast():
            torch.matmul(a, b)

    secs = time_calls({"mm": mm}, repeats or cfg.samples(3), sync=cfg.sync)["mm"]
    return [2.0 * n**3 / s for s in secs]


def _detector_flops(detector, rgb) -> int:
    """FLOPs of one image's detection; for a scripted post-processing the counter cannot enter
    (EfficientDet's NMS), the network alone on its input size."""
    import torch

    try:
        return count_flops(detector.detect, [rgb])
    except RuntimeError:
        net = getattr(getattr(detector, "model", None), "model", None)
        size = getattr(detector, "input_size", None)
        if net is None or size is None:
            raise
        param = next(net.parameters())
        return count_flops(net, torch.zeros(1, 3, *size, device=param.device))


def stage_flops(cfg: BenchConfig, detector, psm, cnn, model, image: np.ndarray, mode: str,
                n_proposals: int = PROPOSALS_PER_IMAGE) -> dict[str, int]:
    """FLOPs per image of each network stage (see the module docstring) for one RGB ``image``."""
    import torch

    from salrank.bench.core import random_features
    from salrank.bench.stages import forward_flops
    from salrank.fosrnet.acb import circulative_sequences_batched
    from salrank.fosrnet.features import _image_tensor
    from salrank.models.unisal import to_rgb_image

    dev = cfg.torch_device
    rgb = to_rgb_image(image)
    out = {"detector": _detector_flops(detector, rgb),
           "unisal": count_flops(psm.features_per_image, [rgb])}
    if mode == "crop":
        out["resnet"] = count_flops(cnn.pooled, torch.zeros(n_proposals, 3, 224, 224, device=dev))
    else:
        out["resnet"] = count_flops(cnn, _image_tensor(rgb).to(dev))
    feats = random_features(np.random.default_rng(cfg.seed), n_proposals, cnn.dim)
    geometry = model._image_geometry(feats, 0, n_proposals)
    k = model.config.k
    n_seq = len(circulative_sequences_batched([geometry], k).sequences)
    seq_feats = {key: torch.from_numpy(np.resize(feats[key], (n_seq * k, *feats[key].shape[1:]))
                                       .reshape(n_seq, k, *feats[key].shape[1:])).to(dev)
                 for key in model.config.required_keys}
    out["head_acb"] = forward_flops(model, seq_feats, torch.zeros(n_seq, k, dtype=torch.bool, device=dev))
    return out


def bench_flop_bound(cfg: BenchConfig) -> list[Measurement]:
    """End-to-end images/s as a fraction of the FLOP bound at the matmul rate, crop and ROI mode,
    per-image path and batched path, with each stage's fraction (see the module docstring)."""
    from salrank.bench.stages import STAGES, _pipeline, _sample_images
    from salrank.fosrnet.features import FeatureConfig

    n_images = cfg.pick(cpu=(2, 8), cuda=(64, 256))
    batch = cfg.pick(cpu=(2, 8), cuda=(16, 32))
    repeats = min(cfg.repeats, 2) if cfg.quick and not cfg.cuda else cfg.repeats  # ResNet101 on the CPU is slow
    clock = StageClock(cfg.sync)
    pipe = _pipeline(cfg, clock, batch)
    raw = {"detector": pipe.detector._target, "psm": pipe.unisal._target, "cnn": pipe.backbone._target,
           "model": pipe.model._target}
    images = _sample_images(n_images)
    names = [f"img{i}" for i in range(n_images)]
    pipe.filter_options = {"top_n": 2}  # first-call costs, cheaply
    pipe.rank(images[:1])
    pipe.filter_options = {}

    rate = matmul_rate(cfg)
    out: list[Measurement] = []
    for mode in MODES:
        pipe.feature_config = FeatureConfig(mode=mode)
        flops = stage_flops(cfg, raw["detector"], raw["psm"], raw["cnn"], raw["model"], images[0], mode)
        per_image_flops = sum(flops.values())
        stage_secs: dict[str, dict[str, list[float]]] = {p: defaultdict(list) for p in PATHS}

        def run(path, stage_secs=stage_secs):
            clock.reset()
            if path == "batched":
                pipe.rank(images, names)
            else:
                for im, name in zip(images, names, strict=True):
                    pipe.rank([im], [name])
            for s in STAGES[:-1]:
                stage_secs[path][s].append(clock.seconds[s] / n_images)

        secs = time_calls({p: (lambda p=p: run(p)) for p in PATHS}, repeats, warmup=0, sync=cfg.sync)
        med_rate = float(np.median(rate))
        for path in PATHS:
            ips = [n_images / t for t in secs[path]]
            stage_fraction = {
                s: flops[s] / (float(np.median(stage_secs[path][s])) * med_rate)
                for s in flops if np.median(stage_secs[path][s]) > 0
            }
            details = {"mode": mode, "path": path, "images": n_images, "batch_size": batch,
                       "gflop_per_image": per_image_flops / 1e9,
                       "stage_gflop_per_image": {s: v / 1e9 for s, v in flops.items()},
                       "matmul_gflops": med_rate / 1e9, "images_per_s": float(np.median(ips)),
                       "flop_bound_images_per_s": med_rate / per_image_flops,
                       "stage_fraction": stage_fraction, "amp": cfg.amp}
            out.append(Measurement(f"{mode}_{path}",
                                   f"end to end / FLOP bound at the matmul rate ({mode} mode, {path} path)",
                                   "fraction", [v * per_image_flops / med_rate for v in ips], details=details))
        out.append(Measurement(f"gflop_per_image_{mode}", f"FLOPs per image ({mode} mode, all stages)", "GFLOP",
                               [per_image_flops / 1e9], "lower", {s: v / 1e9 for s, v in flops.items()}))
    out.append(Measurement("matmul_gflops", "plain square matmul FLOP rate (same run)", "GFLOP/s",
                           [r / 1e9 for r in rate], details={"amp": cfg.amp}))
    return out


# --- host overhead: every network a stub -------------------------------------------------------------
class _StubDetector:
    """Fixed random boxes (``n`` per image, scores descending) at no network cost."""

    name = "stub"

    def __init__(self, n: int, seed: int):
        self.n = n
        self.rng = np.random.default_rng(seed)
        self._cache: dict = {}

    def detect(self, images, keys=None, batch_size=None):
        from salrank.bench.core import random_boxes
        from salrank.proposals.registry import Detections

        out = []
        for im in images:
            size = (im.height, im.width) if hasattr(im, "height") else tuple(np.asarray(im).shape[:2])
            if size not in self._cache:
                boxes = random_boxes(self.rng, self.n, size)
                self._cache[size] = Detections(boxes, np.linspace(0.9, 0.5, self.n), np.ones(self.n))
            out.append(self._cache[size])
        return out


class _StubUnisal:
    """``features_per_image``: a zero ``f_u`` (192, H/8, W/8) per image, the consecutive rows of
    one batch tensor like a batched forward's output (kept, so at no cost after the first call)."""

    def __init__(self, device):
        self.device = device
        self._cache: dict = {}

    def features_per_image(self, images, batch_size=8, network_size=None, source="SALICON"):
        import torch

        from salrank.bench.core import UNISAL_DIM
        from salrank.models.unisal import network_size_for

        sizes = [network_size or network_size_for((im.height, im.width)) for im in images]
        out = []
        for i, (h, w) in enumerate(sizes):
            row = sum(s == (h, w) for s in sizes[:i])
            batch = self._cache.get((h, w))
            if batch is None or len(batch) <= row:
                batch = torch.zeros(max(batch_size, len(images)), UNISAL_DIM, h // 8, w // 8, device=self.device)
                self._cache[(h, w)] = batch
            out.append(batch[row])
        return out


def _stub_backbone(dim: int, stride: int, device):
    import torch
    from torch import nn

    class StubBackbone(nn.Module):
        """Zero feature maps / pooled vectors of the right shapes."""

        def __init__(self):
            super().__init__()
            self.dim, self.stride = dim, stride
            self.anchor = nn.Parameter(torch.zeros(1, device=device), requires_grad=False)

        def forward(self, x):
            return x.new_zeros(x.shape[0], dim, x.shape[2] // stride, x.shape[3] // stride)

        def pooled(self, x):
            return x.new_zeros(x.shape[0], dim)

    return StubBackbone()


def _stub_ranker(model):
    """``model`` with its embedding and head replaced by shape-correct stubs (ECS and ACB stay real)."""
    import torch
    from torch import nn

    in_dim = model.config.in_dim
    probe = torch.zeros(2, model.config.k, in_dim)
    with torch.no_grad():
        logits = model.head.eval()(probe, torch.zeros(2, model.config.k, dtype=torch.bool))
    tail = tuple(logits.shape[2:])
    noise = torch.randn(4096, model.config.k, *tail, generator=torch.Generator().manual_seed(0))

    class StubHead(nn.Module):
        def forward(self, x, mask=None):
            return noise[: x.shape[0]].to(x.device)

    model.head = StubHead()
    model.embed = lambda feats, where="features": torch.zeros(len(feats["boxes"]), in_dim)
    return model


def bench_host_overhead(cfg: BenchConfig, n_images: int | None = None) -> list[Measurement]:
    """Host CPU time per image of the whole pipeline with every network a stub (see the module
    docstring): per-image path and batched path (``n_images`` images, 64 in full runs)."""
    import torch

    from salrank.data.sample import salicon_example_images
    from salrank.fosrnet.features import FeatureConfig
    from salrank.fosrnet.model import create_fosrnet
    from salrank.fosrnet.pipeline import RankingPipeline

    n_images = n_images or cfg.pick(cpu=(16, 64), cuda=(64, 64))
    dev = cfg.torch_device
    torch.manual_seed(cfg.seed)
    model = _stub_ranker(create_fosrnet(appearance_dim=2048).to(dev))
    paths = sorted(str(p) for p in salicon_example_images().values())
    images = [paths[i % len(paths)] for i in range(n_images)]
    names = [f"img{i}" for i in range(n_images)]
    out: list[Measurement] = []
    for mode in MODES:
        pipe = RankingPipeline(_StubDetector(PROPOSALS_PER_IMAGE, cfg.seed), _StubUnisal(dev),
                               _stub_backbone(2048, 32, dev), model, FeatureConfig(mode=mode))
        pipe.rank(images[:1])  # first-call costs

        def run(path, pipe=pipe):
            if path == "batched":
                pipe.rank(images, names)
            else:
                for im, name in zip(images, names, strict=True):
                    pipe.rank([im], [name])

        secs = time_calls({p: (lambda p=p: run(p)) for p in PATHS}, cfg.repeats, warmup=0, clock="cpu")
        cpu = {p: [1000 * t / n_images for t in secs[p]] for p in PATHS}
        for path in PATHS:
            out.append(Measurement(f"{mode}_{path}_ms",
                                   f"host CPU time per image, networks stubbed ({mode} mode, {path} path)",
                                   "ms/image", cpu[path], "lower",
                                   {"mode": mode, "path": path, "images": n_images,
                                    "proposals_per_image": PROPOSALS_PER_IMAGE,
                                    "timer": "process CPU time (all threads)"}))
    return out
