"""A split ready for FOSRNet: proposals, cached features and RA-SRGT labels of every image.

The proposals are the objects to rank (the paper relabels SALICON on its detector's
proposals): per image, the detector's boxes after :func:`salrank.proposals.filter_proposals`
(the paper's rules; at most ``top_n`` = 10, highest score first), or the reference boxes of
the dataset (``detector="true"``). Ground truth per image: RA-SRGT scores and ranks of those
proposals from the image's fixations (:func:`salrank.gt.rank_objects`, ``gamma``, ``beta``).

Proposal sources (``detector``):

* ``"true"``: the dataset's reference boxes (SynthSal's planted objects; no detector scores);
* ``"oracle"``: SynthSal's noisy oracle (:func:`salrank.data.synthsal.oracle_for_dataset`, seeded
  per image), no images read;
* a file path: a COCO detection-results JSON (:func:`salrank.proposals.read_proposals`);
* any other name: ``<proposals_dir>/<name>_<train|val>.json`` (``salrank proposals`` writes them
  to ``$SALRANK_DATA/proposals``; the caller passes the folder).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salrank.fosrnet.features import FeatureConfig, FeatureStore, extract_features
from salrank.paper import DEFAULT_BETA, DEFAULT_GAMMA

__all__ = ["RankingSplit", "dataset_proposals", "ground_truth", "prepare_split"]


@dataclass
class RankingSplit:
    """Features and labels of one split, image order = ``features.stems``.

    ``gt_scores``/``gt_ranks``: per image (n,) RA-SRGT scores and ranks of the proposals (rank 1
    = most salient, 0 = no fixation); ``ref_boxes``/``ref_ranks``: per image reference object
    boxes and their GT ranks (for SA-SOR), or ``None``.
    """

    features: FeatureStore
    gt_scores: list[np.ndarray]
    gt_ranks: list[np.ndarray]
    ref_boxes: list[np.ndarray] | None = None
    ref_ranks: list[np.ndarray] | None = None
    name: str = ""

    def __post_init__(self):
        counts = self.features.counts
        if len(self.gt_scores) != len(counts):
            raise ValueError(f"{len(self.gt_scores)} GT score arrays for {len(counts)} images")
        for i, (s, n) in enumerate(zip(self.gt_scores, counts, strict=True)):
            if len(s) != n:
                raise ValueError(f"image {self.features.stems[i]}: {len(s)} GT scores for {n} proposals")

    def __len__(self) -> int:
        return len(self.features)

    def images(self) -> list[dict[str, np.ndarray]]:
        """Per-image feature dicts (for :meth:`salrank.fosrnet.model.FOSRNet.predict_ranks`)."""
        return self.features.images()

    def subset(self, n: int) -> RankingSplit:
        """The first ``n`` images."""
        stems = self.features.stems[:n]
        return RankingSplit(self.features.subset(stems), self.gt_scores[:n], self.gt_ranks[:n],
                            None if self.ref_boxes is None else self.ref_boxes[:n],
                            None if self.ref_ranks is None else self.ref_ranks[:n], self.name)


def _detections(boxes, scores=None):
    from salrank.proposals import Detections

    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    s = np.ones(len(b)) if scores is None else np.asarray(scores, np.float64)
    return Detections(b, s, np.ones(len(b), np.int64))


def dataset_proposals(scene_set, detector: str | os.PathLike = "oracle", *, seed: int = 0,
                      apply_filter: bool = True, top_n: int | None = 10,
                      proposals_dir: str | os.PathLike | None = None) -> dict:
    """``{stem: Detections}`` (boxes in pixels, highest score first) for every image of ``scene_set``.

    See the module docstring for ``detector``. ``apply_filter``: the paper's filtering with
    ``top_n`` kept (without it, the first ``top_n`` in score order are kept). Reference boxes
    (``"true"``) keep their order (Q_0 = the first box) and are not filtered. ``proposals_dir``: the
    folder of the named detectors' files (e.g. ``$SALRANK_DATA/proposals``).
    """
    from salrank.proposals import filter_proposals, read_proposals

    stems = scene_set.stems
    sizes = {s: (scene_set.fixations[s].height, scene_set.fixations[s].width) for s in stems}
    det = str(detector)
    if det == "true":
        return {s: _detections(scene_set.boxes_of(s)) for s in stems}
    if det == "oracle":
        from salrank.data.synthsal import oracle_for_dataset

        records = oracle_for_dataset({s: scene_set.boxes_of(s) for s in stems}, image_size=sizes, seed=seed)
        grouped: dict[str, list] = {s: [] for s in stems}
        for r in records:
            x, y, w, h = r["bbox"]
            grouped[r["image_id"]].append(([x, y, x + w, y + h], r["score"]))
        raw = {s: _detections([b for b, _ in g], [c for _, c in g]) for s, g in grouped.items()}
    else:
        path = Path(det)
        if not path.suffix == ".json":
            if proposals_dir is None:
                raise FileNotFoundError(f"proposals of {det!r} need a proposals folder (SALRANK_DATA) or a .json path")
            source = "train" if scene_set.split == "train" else "val"
            path = Path(proposals_dir) / f"{det}_{source}.json"
        raw = read_proposals(path, image_ids=stems)
    out = {}
    for s in stems:
        d = raw[s]
        if apply_filter:
            d = d.select(filter_proposals(d.boxes, d.scores, sizes[s], top_n=top_n).keep)
        elif top_n is not None:
            d = d.select(slice(0, top_n))
        out[s] = d
    return out


def ground_truth(fixations, boxes, image_size, gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA) -> tuple[np.ndarray, np.ndarray]:
    """RA-SRGT ``(scores, ranks)`` of ``boxes`` (K, 4) pixels from a :class:`~salrank.data.Fixations`."""
    from salrank.gt import rank_objects

    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    return rank_objects(fixations.points, b, image_size, method="ra-srgt", gamma=gamma, beta=beta)


def prepare_split(scene_set, *, unisal, backbone, detector: str = "oracle", config: FeatureConfig | None = None,
                  gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA, top_n: int | None = 10, seed: int = 0,
                  limit: int | None = None, cache: bool | str | os.PathLike = True, batch_size: int = 32,
                  progress: bool = True, proposals: Mapping | None = None,
                  proposals_dir: str | os.PathLike | None = None) -> RankingSplit:
    """Proposals (:func:`dataset_proposals`), features (:func:`salrank.fosrnet.features.extract_features`,
    cached) and RA-SRGT labels of ``scene_set`` (its first ``limit`` images when given)."""
    if limit is not None:
        scene_set = scene_set.subset(scene_set.stems[:limit])
    if proposals is None:
        proposals = dataset_proposals(scene_set, detector, seed=seed, top_n=top_n, proposals_dir=proposals_dir)
    label = f"{scene_set.name}_{scene_set.split}"
    store = extract_features(scene_set, unisal=unisal, backbone=backbone, proposals=proposals, config=config,
                             cache=cache, batch_size=batch_size, progress=progress, name=label)
    scores, ranks, ref_boxes, ref_ranks = [], [], [], []
    has_ref = bool(scene_set.boxes)
    for i, stem in enumerate(store.stems):
        fx = scene_set.fixations[stem]
        size = (fx.height, fx.width)
        s, r = ground_truth(fx, store.image(i)["boxes"], size, gamma, beta)
        scores.append(s)
        ranks.append(r)
        if has_ref:
            rb = scene_set.boxes_of(stem)
            ref_boxes.append(rb)
            ref_ranks.append(ground_truth(fx, rb, size, gamma, beta)[1])
    return RankingSplit(store, scores, ranks, ref_boxes if has_ref else None, ref_ranks if has_ref else None,
                        name=label)
