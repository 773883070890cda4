"""End-to-end saliency ranking of new images: detector -> filtering -> features -> FOSRNet -> ranks.

:class:`RankingPipeline` holds the four models; :meth:`RankingPipeline.from_checkpoint` rebuilds
the feature extractors a checkpoint was trained with (backbone, feature mode, UNISAL input
size; random-weight extractors are rebuilt with the same seeds, so their features match) and
:meth:`RankingPipeline.rank` returns, per image, the proposals (``[x1, y1, x2, y2]`` pixels,
highest detector score first), their scores and ranks (1 = most salient .. n).
:func:`draw_ranking` saves an overlay with the boxes labelled by rank.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from salrank.errors import check_int
from salrank.fosrnet.features import (
    FeatureConfig,
    ImageProposals,
    decode_image,
    features_of_images,
    image_batches,
)
from salrank.models.backbones import WeightsIdentity, feature_extractors

__all__ = ["RankedImage", "RankingPipeline", "draw_ranking"]


@dataclass(frozen=True)
class RankedImage:
    """One image's result: ``boxes`` (n, 4) pixels, detector ``scores`` (n,), ``ranks`` (n,) 1 = most salient."""

    name: str
    image_size: tuple[int, int]
    boxes: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray

    def to_dict(self) -> dict:
        return {"image": self.name, "image_size": list(self.image_size), "boxes": self.boxes.tolist(),
                "scores": self.scores.tolist(), "ranks": self.ranks.tolist()}


class RankingPipeline:
    """Detector + UNISAL + appearance CNN + FOSRNet; see the module docstring.

    The images go through in batches of ``batch_size``, decoded in ``num_workers`` DataLoader
    worker processes (0: in this process) while the previous batch runs; per batch one detector
    call, the features of all its proposals (:func:`~salrank.fosrnet.features.features_of_images`)
    and one ranking call. ``amp`` (``"bf16"``, ``"fp16"``, ``"auto"``: on CUDA only; default off)
    and ``channels_last`` (default: on CUDA) as there. The ranks do not depend on ``batch_size``.
    """

    def __init__(self, detector, unisal, backbone, model, feature_config: FeatureConfig | None = None,
                 filter_options: Mapping | None = None, apply_filter: bool = True, *, batch_size: int = 32,
                 num_workers: int = 0, amp: str | None = None, channels_last: bool | None = None):
        self.detector = detector
        self.unisal = unisal
        self.backbone = backbone
        self.model = model.eval()
        self.feature_config = feature_config or FeatureConfig()
        self.filter_options = dict(filter_options or {})
        self.apply_filter = apply_filter
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.num_workers = check_int("num_workers", num_workers, 0)
        self.amp = amp
        self.channels_last = channels_last

    @property
    def weights(self) -> WeightsIdentity:
        """Which weights the feature networks carry (``.label`` for logs)."""
        return WeightsIdentity(self.unisal.weights, self.backbone.weights)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike | None = None, *, detector: str | None = "efficientdet_d0",
                        pretrained: bool = True, backbone: str = "resnet101", device=None,
                        detector_kwargs: Mapping | None = None, log=print, seed: int = 0,
                        **run_options) -> RankingPipeline:
        """Build the pipeline; the detector is created first, so missing weights fail fast.

        ``detector=None``: no detector (for :meth:`rank_boxes` on given boxes only).
        ``pretrained=False``: every model random (smoke tests; meaningless ranks), seeded, so that
        every process (e.g. the ranks of a ``torchrun`` job) builds the same models. Without a
        ``checkpoint`` the ranker is an untrained FOSRNet on ``backbone`` features (a warning says so).
        ``seed``: every random initialisation (detector, extractors without pretrained weights,
        the untrained ranker) comes from it, so a random-weight run repeats exactly.
        ``run_options``: ``batch_size``, ``num_workers``, ``amp``, ``channels_last`` (see the class).
        Raises :class:`salrank.weights.WeightsNotFoundError` when a pretrained file is missing.
        """
        from salrank.proposals import create_detector

        log = log or (lambda *_: None)
        kwargs = dict(detector_kwargs or {})
        if not pretrained:
            kwargs.setdefault("score_threshold", 0.0)
        kwargs.setdefault("seed", seed)
        det = None if detector is None else create_detector(detector, pretrained=pretrained, device=device, **kwargs)
        meta: dict = {}
        if checkpoint is not None:
            from salrank.fosrnet.train import load_checkpoint

            model, ckpt = load_checkpoint(checkpoint)
            meta = ckpt.get("feature_meta") or {}
        else:
            model = None
        config = FeatureConfig(**{k: (tuple(v) if isinstance(v, list) else v)
                                  for k, v in (meta.get("config") or {}).items()})
        bb_name = meta.get("backbone", backbone)
        options = {"pretrained": pretrained, "seed": seed}
        if meta.get("weights"):
            trained_on = WeightsIdentity.from_dict(meta["weights"])
            if pretrained:
                options = trained_on.rebuild_options()
                if trained_on.random:
                    log(f"note: the checkpoint was trained on random-weight feature extractors ({trained_on.label}); "
                        "rebuilding them")
        psm, cnn, _ = feature_extractors(backbone=bb_name, device=device, **options)
        if model is None:
            from salrank.fosrnet.model import create_fosrnet

            warnings.warn("no checkpoint: the ranker is an untrained FOSRNet (random ranks)", stacklevel=2)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = create_fosrnet(appearance_dim=cnn.dim)
        else:
            from salrank.fosrnet.features import module_fingerprint

            for name, module in (("unisal", psm), ("backbone", cnn)):
                want = meta.get(f"{name}_fingerprint")
                if want and module_fingerprint(module) != want:
                    log(f"warning: the {name} weights differ from those the checkpoint was trained with")
        model.to(next(cnn.parameters()).device)
        return cls(det, psm, cnn, model, config, **run_options)

    def rank(self, images: Sequence, names: Sequence[str] | None = None) -> list[RankedImage]:
        """Rank the proposals of each image (paths, PIL images or HxWx3 uint8 arrays)."""
        from salrank.proposals import filter_proposals

        if self.detector is None:
            raise ValueError("this pipeline has no detector (built with detector=None): use rank_boxes")
        images = list(images)
        if names is None:
            names = [Path(im).name if isinstance(im, (str, os.PathLike)) else f"image{i}"
                     for i, im in enumerate(images)]
        if len(names) != len(images):
            raise ValueError(f"{len(images)} images but {len(names)} names")
        cuda = next(self.backbone.parameters()).device.type == "cuda"
        decode = functools.partial(decode_image, config=self.feature_config)
        out: list[RankedImage] = []
        for batch in image_batches(images, self.batch_size, decode, self.num_workers,
                                   pin_memory=cuda and self.num_workers > 0):
            batch_names = names[len(out) : len(out) + len(batch)]
            dets = self.detector.detect([d.rgb for d in batch], keys=[Path(n).stem for n in batch_names])
            items = []
            for name, decoded, d in zip(batch_names, batch, dets, strict=True):
                if self.apply_filter:
                    d = d.select(filter_proposals(d.boxes, d.scores, decoded.size, **self.filter_options).keep)
                items.append(ImageProposals(str(name), decoded, d.boxes, d.scores))
            out += self._rank_items(items)
        return out

    def rank_boxes(self, image, boxes, scores=None, name: str = "image") -> RankedImage:
        """Rank given ``[x1, y1, x2, y2]`` boxes of one image (no detector, no filtering); the box
        order is kept, so ``ranks[i]`` belongs to ``boxes[i]``. ``scores``: detector scores or
        ``None`` (the first box is then ACB's centre proposal)."""
        from salrank.models.unisal import to_rgb_image

        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        item = ImageProposals(str(name), to_rgb_image(image), boxes, None if scores is None else np.asarray(scores))
        return self._rank_items([item])[0]

    def _rank_items(self, items: Sequence[ImageProposals]) -> list[RankedImage]:
        if not items:
            return []
        feats = features_of_images(items, self.unisal, self.backbone, self.feature_config, self.batch_size,
                                   amp=self.amp, channels_last=self.channels_last)
        sizes = [f.pop("image_size") for f in feats]
        ranks = self.model.predict_ranks(feats)
        return [RankedImage(it.stem, tuple(int(v) for v in size), np.asarray(f["boxes"], np.float64),
                            np.asarray(f["scores"], np.float64), np.asarray(r, np.int64))
                for it, size, f, r in zip(items, sizes, feats, ranks, strict=True)]


def draw_ranking(image, result: RankedImage, out: str | os.PathLike, dpi: int = 100) -> Path:
    """Save ``image`` (a path, PIL image or array) at its own size with ``result``'s boxes drawn by
    :func:`salrank.viz.plots.draw_ranked_boxes` (``#1`` = most salient) to ``out``; returns ``out``."""
    from matplotlib.figure import Figure

    from salrank.io import atomic_output
    from salrank.models.unisal import to_rgb_image
    from salrank.viz.plots import draw_ranked_boxes

    rgb = to_rgb_image(image)
    fig = Figure(figsize=(rgb.width / dpi, rgb.height / dpi), dpi=dpi)
    fig.subplots_adjust(0, 0, 1, 1)
    draw_ranked_boxes(fig.add_subplot(), rgb, result.boxes, result.ranks)
    out = Path(out)
    with atomic_output(out) as f:  # the format follows the suffix (png by default)
        fig.savefig(f, format=out.suffix[1:].lower() or "png", dpi=dpi)
    return out
