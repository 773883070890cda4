"""Proposal sources for the detector-swap study (the paper's Table VI).

The paper swaps FOSRNet's detector (EfficientDet) for Faster R-CNN, YOLOv5, DETR and Sparse R-CNN
and finds the final ranking changes little (:data:`PAPER_TABLE6`). A *proposal source* is what
:func:`salrank.fosrnet.data.dataset_proposals` accepts as ``detector``: ``"true"``, ``"oracle"``, a
detector name (its files ``$SALRANK_DATA/proposals/<name>_<train|val>.json``) or a COCO
detection-results JSON path.

* Full profile: :func:`full_profile_sources`, the detectors whose proposal files exist.
* Sample profile: real detectors without weights give meaningless boxes, so
  :func:`synthsal_sources` gives SynthSal stand-ins of graded quality: the true boxes, the
  oracle at its default noise, and noisier oracles (:data:`STANDIN_NOISE`), written once as
  COCO results files by :func:`oracle_proposal_file`.

:func:`proposal_quality` measures a proposal set against reference boxes (recall, precision at
an IoU threshold); :func:`detector_swap_table` lays out the study. Boxes are ``[x1, y1, x2, y2]``
pixels of the original image.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from salrank import paper

__all__ = [
    "PAPER_TABLE6",
    "PAPER_TABLE6_DETECTORS",
    "STANDIN_NOISE",
    "ProposalSource",
    "detector_swap_table",
    "full_profile_sources",
    "oracle_proposal_file",
    "proposal_quality",
    "synthsal_sources",
]

PAPER_TABLE6 = pd.DataFrame({detector: list(values) for detector, values in paper.TABLE6.items()},
                            index=pd.Index(["SRCC", "F1"], name="metric"))
""":data:`salrank.paper.TABLE6` as a table: FOSRNet's final ranking on SALICON with proposals of five
detectors (columns), rows SRCC and F1."""

PAPER_TABLE6_DETECTORS = {
    "EfficientDet": "efficientdet_d0",
    "Faster RCNN": "fasterrcnn_resnet50_fpn",
    "YOLOv5": "yolov5su",
    "DETR": "detr_resnet50",
    "Sparse RCNN": None,
}
"""The paper's Table VI detectors -> salrank registry names (``None``: salrank has no Sparse R-CNN;
its proposals can still be given as a file). The EfficientDet variant is not stated; D0 is assumed."""

STANDIN_NOISE = {
    "oracle: more jitter": {"jitter": 0.25},
    "oracle: more misses": {"miss_rate": 0.3},
    "oracle: more false positives": {"false_positives": 4.0},
    "oracle: all three": {"jitter": 0.25, "miss_rate": 0.3, "false_positives": 4.0},
}
"""Noisier SynthSal oracles (overrides of :func:`salrank.data.synthsal.oracle_detections`'s defaults
``jitter=0.1``, ``miss_rate=0.1``, ``false_positives=1.0``): one kind of error at a time, then all."""


@dataclass(frozen=True)
class ProposalSource:
    """One proposal source: ``label`` (tables), ``detector`` (the string given to
    :class:`salrank.analysis.experiments.Experiment` / :func:`salrank.fosrnet.data.dataset_proposals`),
    ``description`` and the ``paper_name`` of the Table VI column it stands for (or ``None``)."""

    label: str
    detector: str
    description: str = ""
    paper_name: str | None = None


def _boxes_digest(scene_sets: Sequence) -> str:
    h = hashlib.sha256()
    for ss in scene_sets:
        for stem in ss.stems:
            fx = ss.fixations[stem]
            h.update(f"{stem}:{fx.height}x{fx.width}:".encode())
            h.update(np.ascontiguousarray(ss.boxes_of(stem), dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def oracle_proposal_file(scene_sets: Sequence, noise: Mapping | None = None, *, seed: int = 0,
                         directory: str | os.PathLike) -> Path:
    """Write the SynthSal oracle's detections of every image of ``scene_sets`` (their reference boxes
    made noisy by :func:`salrank.data.synthsal.oracle_for_dataset` with ``noise`` and ``seed``) as
    one COCO detection-results JSON under ``directory``; return its path.

    The file name is a digest of the noise, the seed and the images' boxes and sizes, so an
    existing file is reused and a changed input gets a new file. With the default noise the
    records equal the built-in ``"oracle"`` source's at the same seed. Stems must be unique
    across ``scene_sets``.
    """
    from salrank.data.synthsal import oracle_for_dataset
    from salrank.io import atomic_write_json

    noise = dict(noise or {})
    allowed = {"jitter", "miss_rate", "false_positives", "tp_score", "fp_score", "fp_size"}
    unknown = set(noise) - allowed
    if unknown:
        raise ValueError(f"oracle noise: unknown option(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
    boxes: dict[str, np.ndarray] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for ss in scene_sets:
        for stem in ss.stems:
            if stem in boxes:
                raise ValueError(f"oracle_proposal_file: image {stem!r} appears in more than one scene set")
            fx = ss.fixations[stem]
            boxes[stem] = ss.boxes_of(stem)
            sizes[stem] = (fx.height, fx.width)
    spec = json.dumps({"noise": {k: list(v) if isinstance(v, tuple) else v for k, v in noise.items()},
                       "seed": int(seed), "boxes": _boxes_digest(scene_sets)}, sort_keys=True)
    key = hashlib.sha256(spec.encode()).hexdigest()[:16]
    path = Path(directory) / f"oracle-{key}.json"
    if not path.is_file():
        records = oracle_for_dataset(boxes, image_size=sizes, seed=int(seed), **noise)
        atomic_write_json(path, records)
    return path


def synthsal_sources(settings=None, *, seed: int = 0, noise_levels: Mapping[str, Mapping] | None = None,
                     splits: Sequence[str] = ("train", "val", "test")) -> list[ProposalSource]:
    """The sample profile's stand-in "detectors", best first: ``"true"`` (the planted boxes),
    ``"oracle"`` (default noise, ``seed``) and one oracle file per ``noise_levels`` entry
    (default :data:`STANDIN_NOISE`), written under ``$SALRANK_CACHE/proposals/oracle`` for the
    SynthSal ``splits``."""
    from salrank.config import cache_dir
    from salrank.data.scenes import open_dataset

    levels = STANDIN_NOISE if noise_levels is None else noise_levels
    sources = [
        ProposalSource("true boxes", "true", "the planted objects' exact boxes (a perfect detector)"),
        ProposalSource("oracle (default noise)", "oracle",
                       "jitter 0.1, miss rate 0.1, 1 false positive per image on average"),
    ]
    if levels:
        sets = [open_dataset("synthsal", s, settings) for s in splits]
        directory = cache_dir("proposals", "oracle", settings=settings)
        for label, noise in levels.items():
            path = oracle_proposal_file(sets, noise, seed=seed, directory=directory)
            desc = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in noise.items())
            sources.append(ProposalSource(label, str(path), desc))
    return sources


def full_profile_sources(settings=None, *, detectors: Mapping[str, str | None] | None = None) -> list[ProposalSource]:
    """The Table VI detectors (default :data:`PAPER_TABLE6_DETECTORS`, paper name -> registry name)
    whose files ``$SALRANK_DATA/proposals/<name>_train.json`` and ``<name>_val.json`` both exist
    (``salrank proposals`` writes them). Raises ``FileNotFoundError`` without ``SALRANK_DATA``."""
    from salrank.config import get_settings

    settings = settings or get_settings()
    if settings.data_root is None:
        raise FileNotFoundError("the detectors' proposal files need SALRANK_DATA (data_root=)")
    folder = settings.proposals_dir
    out = []
    for paper_name, name in (PAPER_TABLE6_DETECTORS if detectors is None else detectors).items():
        if name and all((folder / f"{name}_{part}.json").is_file() for part in ("train", "val")):
            out.append(ProposalSource(paper_name, name, f"{name} proposals from {folder}", paper_name))
    return out


def proposal_quality(proposals: Mapping, reference: Mapping, iou_threshold: float = 0.5) -> dict:
    """How well proposal boxes ``{stem: (N, 4) boxes or Detections}`` find the ``reference`` objects
    ``{stem: (K, 4) boxes}`` (over ``reference``'s stems; a stem missing from ``proposals`` has none).

    Boxes are matched one-to-one by the Hungarian assignment on IoU
    (:func:`salrank.analysis.proposal_comparison.match_one_to_one`, a pair counts at IoU >= ``iou_threshold``).
    Returns ``recall`` (matched reference objects / reference objects), ``precision`` (matched
    proposals / proposals), ``proposals_per_image``, ``n_images``, ``n_reference``, ``n_proposals``.
    """
    from salrank.analysis.proposal_comparison import match_one_to_one

    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    matched = n_ref = n_prop = 0
    for stem, ref in reference.items():
        ref = np.asarray(ref, np.float64).reshape(-1, 4)
        prop = proposals.get(stem, np.zeros((0, 4)))
        prop = np.asarray(getattr(prop, "boxes", prop), np.float64).reshape(-1, 4)
        matched += len(match_one_to_one(prop, ref, iou_threshold))
        n_ref += len(ref)
        n_prop += len(prop)
    n = len(reference)
    return {
        "recall": matched / n_ref if n_ref else float("nan"),
        "precision": matched / n_prop if n_prop else float("nan"),
        "proposals_per_image": n_prop / n if n else float("nan"),
        "n_images": n,
        "n_reference": n_ref,
        "n_proposals": n_prop,
    }


def detector_swap_table(sources: Sequence[ProposalSource], once: Mapping[str, Mapping] | None = None,
                        retrained: Mapping[str, Mapping] | None = None, *, proposals: Mapping[str, Mapping] | None = None,
                        reference: Mapping | None = None, iou_threshold: float = 0.5,
                        once_label: str = "trained once", retrained_label: str = "retrained per source") -> pd.DataFrame:
    """The Table VI layout, one row per source (index = ``label``), columns in groups:

    * ``("proposals", ...)``: ``recall``, ``precision``, ``per image`` (:func:`proposal_quality` of
      ``proposals[label]`` against ``reference``; only when both are given);
    * ``(once_label, "SRCC"/"F1")``: test metrics (dicts with ``srcc``, ``f1``) of the model trained on
      the default source and fed each source's proposals, ``once[label]``;
    * ``(retrained_label, "SRCC"/"F1")``: metrics of a model trained on each source, ``retrained[label]``;
    * ``("paper", "SRCC"/"F1")``: :data:`PAPER_TABLE6` for sources with a ``paper_name``.

    A source missing from a mapping gets NaN in that group; empty groups are left out.
    """
    sources = list(sources)
    labels = [s.label for s in sources]
    if len(set(labels)) != len(labels):
        raise ValueError("detector_swap_table: duplicate source labels")
    columns: dict[tuple[str, str], list] = {}
    if proposals is not None and reference is not None:
        q = {s.label: proposal_quality(proposals[s.label], reference, iou_threshold) if s.label in proposals else None
             for s in sources}
        for key, name in (("recall", "recall"), ("precision", "precision"), ("proposals_per_image", "per image")):
            columns[("proposals", name)] = [q[label][key] if q[label] else np.nan for label in labels]
    for group, metrics in ((once_label, once), (retrained_label, retrained)):
        if metrics:
            for key, name in (("srcc", "SRCC"), ("f1", "F1")):
                columns[(group, name)] = [metrics[label][key] if label in metrics else np.nan for label in labels]
    if any(s.paper_name for s in sources):
        for metric in ("SRCC", "F1"):
            columns[("paper", metric)] = [PAPER_TABLE6.loc[metric, s.paper_name] if s.paper_name in PAPER_TABLE6
                                          else np.nan for s in sources]
    table = pd.DataFrame(columns, index=pd.Index(labels, name="proposal source"))
    table.columns = pd.MultiIndex.from_tuples(table.columns) if columns else table.columns
    return table
