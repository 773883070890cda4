"""Ranking the objects of peer datasets (ASSR, IRSR) and scoring the result (paper Table I).

A *ranker* is a function ``ranker(image: PeerImage, boxes: ndarray) -> ranks`` that ranks the
given boxes ``(K, 4)`` ``[x1, y1, x2, y2]`` of one image (int ``(K,)``, 1 = most salient,
every box ranked). :func:`evaluate_peer_ranking` gives each image's GT objects to the ranker and
compares its ranks with the dataset's GT ranks (converted by :mod:`salrank.data.peers`):

* SRCC and macro F1 over rank classes (the paper's protocol, :func:`salrank.metrics.ranking.evaluate`),
  with ``nan_policy``. Both sides are put on one scale, rank r -> class ``K + 1 - r`` with K the
  number of objects given to the ranker and rank 0 -> class 0, so that rank r means the same
  class in prediction and GT (rescaling each side by its own largest rank would not);
* box-level SA-SOR (:func:`salrank.metrics.peers.mean_sa_sor`, ``sa_sor_variant``, IRSR's by
  default) with the ranked boxes as predictions.
  The ranker sees the GT boxes themselves, so every GT object is matched: this is the
  ranking-only part of SA-SOR, not the detection-plus-ranking figure the peers publish.

``objects="salient"`` (default) ranks the GT objects with rank > 0 (ASSR: the top 5; IRSR: all),
``"all"`` also gives ASSR's non-salient objects to the ranker and keeps their GT rank 0.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from salrank import paper
from salrank.config import Settings, get_settings
from salrank.data.peers import PeerDataset, PeerImage
from salrank.metrics.peers import image_sa_sor, mean_sa_sor
from salrank.metrics.ranking import evaluate, per_image_metrics

__all__ = [
    "Ranker",
    "rank_by_area",
    "fosrnet_ranker",
    "evaluate_peer_ranking",
    "rank_classes",
    "evaluate_peer_rank_maps",
    "peer_roots",
    "paper_table1",
    "TABLE1_DATASETS",
]

Ranker = Callable[[PeerImage, np.ndarray], np.ndarray]

_DATASET_NAMES = {
    "assr": "ASSR (Siris et al., CVPR 2020), test split",
    "irsr": "IRSR (Liu et al., TPAMI 2021), test split",
    "salicon": f"SALICON relabelled with RA-SRGT (gamma = {paper.DEFAULT_GAMMA}), the paper's test split",
}
#: Table I's dataset columns (:data:`salrank.paper.TABLE1_DATASETS`): (column label, what it is).
TABLE1_DATASETS = tuple((label, _DATASET_NAMES[name]) for label, name in paper.TABLE1_DATASETS)


def rank_by_area(image: PeerImage, boxes: np.ndarray) -> np.ndarray:
    """Baseline ranker (no model, no fixations): the larger the box area, the more salient.
    Ranks 1..K (ties: the lower index first)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0]).clip(min=0) * (b[:, 3] - b[:, 1]).clip(min=0)
    order = np.lexsort((np.arange(len(b)), -area))
    ranks = np.empty(len(b), dtype=np.int64)
    ranks[order] = np.arange(1, len(b) + 1)
    return ranks


def fosrnet_ranker(checkpoint: str | os.PathLike, settings: Settings | None = None, *,
                   pretrained: bool = True) -> Ranker:
    """A ranker backed by a trained FOSRNet checkpoint: features of the given boxes (UNISAL +
    appearance CNN, rebuilt as the checkpoint was trained) and ACB ranking, no detector.

    ``pretrained=False`` builds random feature extractors (smoke tests). Missing pretrained files
    raise :class:`salrank.weights.WeightsNotFoundError`.
    """
    from salrank.fosrnet.pipeline import RankingPipeline

    settings = settings or get_settings()
    pipeline = RankingPipeline.from_checkpoint(
        checkpoint, detector=None, pretrained=pretrained, device=settings.torch_device(), log=None
    )

    def rank(image: PeerImage, boxes: np.ndarray) -> np.ndarray:
        return pipeline.rank_boxes(image.image_path, boxes, name=image.stem).ranks

    return rank


def peer_roots(settings: Settings, assr_root: str | os.PathLike | None = None,
               irsr_root: str | os.PathLike | None = None) -> dict[str, Path | None]:
    """Where ASSR and IRSR are: the given roots, else ``data_root/ASSR`` and ``data_root/IRSR``
    when those folders exist; ``None`` for a dataset that is not provided. A root that is given
    but missing raises :class:`FileNotFoundError`."""
    out: dict[str, Path | None] = {}
    for name, given in (("ASSR", assr_root), ("IRSR", irsr_root)):
        if given not in (None, ""):
            path = Path(given).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(f"{name} root not found: {path}")
            out[name] = path
        elif settings.data_root is not None and (settings.data_root / name).is_dir():
            out[name] = settings.data_root / name
        else:
            out[name] = None
    return out


def _check_ranks(ranks, n: int, stem: str) -> np.ndarray:
    r = np.asarray(ranks).reshape(-1)
    if len(r) != n:
        raise ValueError(f"ranker returned {len(r)} ranks for the {n} boxes of image {stem!r}")
    if not np.issubdtype(r.dtype, np.integer) and np.any(r != np.round(r)):
        raise ValueError(f"ranker returned non-integer ranks for image {stem!r}")
    r = r.astype(np.int64)
    if n and (r < 1).any():
        raise ValueError(f"ranker returned a rank < 1 for image {stem!r} (every box must be ranked)")
    return r


def rank_classes(ranks, n_objects: int) -> np.ndarray:
    """Ranks (1 = most salient, 0 = not salient) of an image's ``n_objects`` objects -> classes on
    a scale shared by prediction and GT: rank r -> ``n_objects + 1 - r``, rank 0 -> 0."""
    r = np.asarray(ranks, dtype=np.int64).ravel()
    if (r < 0).any() or (r > n_objects).any():
        raise ValueError(f"ranks must lie in 0..{n_objects}, got {r.tolist()}")
    return np.where(r > 0, n_objects + 1 - r, 0)


def evaluate_peer_ranking(dataset: PeerDataset, ranker: Ranker = rank_by_area, *, objects: str = "salient",
                          nan_policy: str = "exclude", iou_threshold: float = 0.5, sa_sor_variant: str = "irsr",
                          progress: bool = True) -> tuple[dict, pd.DataFrame]:
    """Rank every image's GT objects with ``ranker`` and score them (module docstring).

    Returns ``(summary, per_image)``: ``summary`` has the keys of
    :func:`salrank.metrics.ranking.evaluate` plus ``sa_sor``, ``sa_sor_n_excluded``, ``dataset``,
    ``split``, ``objects``, ``sa_sor_variant``; ``per_image`` one row per image (``image``, ``n_objects``, ``srcc``,
    ``f1``, ``sa_sor``, ...).
    """
    if objects not in ("salient", "all"):
        raise ValueError(f"objects: expected 'salient' or 'all', got {objects!r}")
    preds, gts, stems, sor_inputs = [], [], [], []
    for image in tqdm(dataset, desc=f"{dataset.name}/{dataset.split}", unit="image", disable=not progress):
        keep = image.ranks > 0 if objects == "salient" else np.ones(len(image), dtype=bool)
        boxes, gt = image.boxes[keep], image.ranks[keep]
        pred = _check_ranks(ranker(image, boxes), len(boxes), image.stem)
        stems.append(image.stem)
        preds.append(rank_classes(pred, len(boxes)))
        gts.append(rank_classes(gt, len(boxes)))
        sor_inputs.append({"pred_boxes": boxes, "pred_ranks": pred, "gt_boxes": boxes, "gt_ranks": gt})
    summary = evaluate(preds, gts, nan_policy=nan_policy)
    sor = mean_sa_sor(sor_inputs, iou_threshold, sa_sor_variant)
    summary.update({"sa_sor": sor["sa_sor"], "sa_sor_n_excluded": sor["n_excluded"], "dataset": dataset.name,
                    "split": dataset.split, "objects": objects, "sa_sor_variant": sa_sor_variant})
    table = per_image_metrics(preds, gts)
    table.insert(0, "image", stems)
    table["sa_sor"] = [image_sa_sor(**s, iou_threshold=iou_threshold, variant=sa_sor_variant) for s in sor_inputs]
    return summary, table


def paper_table1() -> pd.DataFrame:
    """The paper's Table I (:data:`salrank.paper.TABLE1`): rows = methods, columns = (dataset, SRCC/F1).

    "ASSR" and "ILRSR" (the paper's name for IRSR) were retrained by the paper's authors on each
    dataset's default training split; "Ours" is FOSRNet.
    """
    columns = pd.MultiIndex.from_product([[d for d, _ in paper.TABLE1_DATASETS], ["SRCC", "F1"]])
    rows = {method: list(values) for method, values in paper.TABLE1.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("method")


def evaluate_peer_rank_maps(dataset: PeerDataset, ranker: Ranker = rank_by_area, *, variant: str = "assr-cvpr",
                            painting: str | None = None, progress: bool = True) -> dict:
    """Mask-level view of a ranker: its ranks of the GT objects (rank > 0) are painted on the GT
    masks (:func:`salrank.metrics.peers.paint_rank_map`, the dataset's own painting unless
    ``painting`` is given) and compared with the GT rank map (the dataset's PNG when present,
    else painted from the GT ranks): SOR (``variant``) and MAE. The ranker sees GT masks, so
    this measures ranking only, not segmentation. Returns the keys of
    :func:`salrank.metrics.peers.mean_sor` plus ``mae``, ``painting``, ``variant``.
    """
    from salrank.metrics.peers import image_mae, image_sor, load_rank_map, mean_sor, paint_rank_map

    painting = painting or dataset.name.lower()
    sors, maes = [], []
    for image in tqdm(dataset, desc=f"{dataset.name}/{dataset.split} maps", unit="image", disable=not progress):
        keep = image.ranks > 0
        masks = image.masks()[keep]
        pred = np.zeros(len(image), dtype=np.int64)
        pred[keep] = _check_ranks(ranker(image, image.boxes[keep]), int(keep.sum()), image.stem)
        pred_map = paint_rank_map(masks, pred[keep], painting)
        if image.gt_map_path is not None:
            gt_map = load_rank_map(image.gt_map_path)
            if gt_map.shape != pred_map.shape:
                raise ValueError(f"{image.gt_map_path}: rank map {gt_map.shape} but masks {pred_map.shape}")
        else:
            gt_map = paint_rank_map(masks, image.ranks[keep], painting)
        sors.append(image_sor(pred_map, masks, image.ranks[keep], variant))
        maes.append(image_mae(pred_map, gt_map))
    out = mean_sor(sors)
    out.update({"mae": float(np.mean(maes)) if maes else float("nan"), "painting": painting, "variant": variant})
    return out
