"""End-to-end saliency ranking of new images: detector -> filtering -> features -> FOSRNet -> ranks.

:class:`RankingPipeline` holds the four models; :meth:`RankingPipeline.from_checkpoint` rebuilds
the feature extractors a checkpoint was trained with (backbone, feature mode, UNISAL input
size; random-weight extractors are rebuilt with the same seeds, so their features match) and
:meth:`RankingPipeline.rank` returns, per image, the proposals (``[x1, y1, x2, y2]`` pixels,
highest detector score first), their scores and ranks (1 = most salient .. n).
:func:`draw_ranking` saves an overlay with the boxes labelled by rank.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from salrank.fosrnet.features import (
    FeatureConfig,
    ImageProposals,
    features_of_images,
    load_backbone,
    load_psm,
)

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


def _weights_seed(weights_id: str | None) -> int | None:
    """The seed of a ``random-seed<N>`` weights id, else ``None`` (pretrained)."""
    if weights_id and weights_id.startswith("random-seed"):
        return int(weights_id[len("random-seed"):])
    return None


class RankingPipeline:
    """Detector + UNISAL + appearance CNN + FOSRNet; see the module docstring."""

    def __init__(self, detector, unisal, backbone, model, feature_config: FeatureConfig | None = None,
                 filter_options: Mapping | None = None, apply_filter: bool = True):
        self.detector = detector
        self.unisal = unisal
        self.backbone = backbone
        self.model = model.eval()
        self.feature_config = feature_config or FeatureConfig()
        self.filter_options = dict(filter_options or {})
        self.apply_filter = apply_filter

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike | None = None, *, detector: str | None = "efficientdet_d0",
                        pretrained: bool = True, backbone: str = "resnet101", device=None,
                        detector_kwargs: Mapping | None = None, log=print) -> RankingPipeline:
        """Build the pipeline; the detector is created first, so missing weights fail fast.

        ``detector=None``: no detector (for :meth:`rank_boxes` on given boxes only).
        ``pretrained=False``: every model random (smoke tests; meaningless ranks), seeded, so that
        every process (e.g. the ranks of a ``torchrun`` job) builds the same models. Without a
        ``checkpoint`` the ranker is an untrained FOSRNet on ``backbone`` features (a warning says so).
        Raises :class:`salrank.weights.WeightsNotFoundError` when a pretrained file is missing.
        """
        from salrank.proposals import create_detector

        log = log or (lambda *_: None)
        kwargs = dict(detector_kwargs or {})
        if not pretrained:
            kwargs.setdefault("score_threshold", 0.0)
        det = None
        if detector is not None:
            with torch.random.fork_rng(devices=[]):  # a random-weight detector is the same in every process
                torch.manual_seed(0)
                det = create_detector(detector, pretrained=pretrained, device=device, **kwargs)
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
        bb_seed, psm_seed = _weights_seed(meta.get("backbone_weights")), _weights_seed(meta.get("unisal_weights"))
        if pretrained and (bb_seed is not None or psm_seed is not None):
            log("note: the checkpoint was trained on random-weight feature extractors; rebuilding them")
        cnn = load_backbone(bb_name, pretrained=pretrained and bb_seed is None, device=device, seed=bb_seed or 0)
        psm = load_psm(pretrained=pretrained and psm_seed is None, device=device, seed=psm_seed or 0)
        if model is None:
            from salrank.fosrnet.model import create_fosrnet

            warnings.warn("no checkpoint: the ranker is an untrained FOSRNet (random ranks)", stacklevel=2)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = create_fosrnet(appearance_dim=cnn.dim)
        else:
            from salrank.fosrnet.features import module_fingerprint

            for name, module in (("unisal", psm), ("backbone", cnn)):
                want = meta.get(f"{name}_fingerprint")
                if want and module_fingerprint(module) != want:
                    log(f"warning: the {name} weights differ from those the checkpoint was trained with")
        model.to(next(cnn.parameters()).device)
        return cls(det, psm, cnn, model, config)

    def rank(self, images: Sequence, names: Sequence[str] | None = None) -> list[RankedImage]:
        """Rank the proposals of each image (paths, PIL images or HxWx3 uint8 arrays)."""
        from salrank.models.unisal import to_rgb_image
        from salrank.proposals import filter_proposals

        if self.detector is None:
            raise ValueError("this pipeline has no detector (built with detector=None): use rank_boxes")
        images = list(images)
        if names is None:
            names = [Path(im).name if isinstance(im, (str, os.PathLike)) else f"image{i}"
                     for i, im in enumerate(images)]
        rgbs = [to_rgb_image(im) for im in images]
        dets = self.detector.detect(rgbs, keys=[Path(n).stem for n in names])
        items = []
        for name, rgb, d in zip(names, rgbs, dets, strict=True):
            if self.apply_filter:
                d = d.select(filter_proposals(d.boxes, d.scores, (rgb.height, rgb.width), **self.filter_options).keep)
            items.append(ImageProposals(str(name), rgb, d.boxes, d.scores))
        return self._rank_items(items)

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
        feats = features_of_images(items, self.unisal, self.backbone, self.feature_config)
        sizes = [f.pop("image_size") for f in feats]
        ranks = self.model.predict_ranks(feats)
        return [RankedImage(it.stem, tuple(int(v) for v in size), np.asarray(f["boxes"], np.float64),
                            np.asarray(f["scores"], np.float64), np.asarray(r, np.int64))
                for it, size, f, r in zip(items, sizes, feats, ranks, strict=True)]


def draw_ranking(image, result: RankedImage, out: str | os.PathLike, dpi: int = 100) -> Path:
    """Save ``image`` with the ranked boxes (label ``#rank``, colours by :func:`salrank.viz.plots.rank_colors`)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from salrank.models.unisal import to_rgb_image
    from salrank.viz.plots import draw_boxes, rank_colors

    rgb = to_rgb_image(image)
    fig, ax = plt.subplots(figsize=(rgb.width / dpi, rgb.height / dpi), dpi=dpi)
    fig.subplots_adjust(0, 0, 1, 1)
    ax.imshow(np.asarray(rgb))
    order = np.argsort(-result.ranks, kind="stable")  # draw the most salient last (on top)
    draw_boxes(ax, result.boxes[order], [f"#{r}" for r in result.ranks[order]],
               [rank_colors(result.ranks)[i] for i in order])
    ax.set_axis_off()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
