"""Per-image views of a ranker's results: predicted vs GT panels (the paper's Fig. 10), the best and
worst images by per-image SRCC, and the failure analysis (Fig. 14).

An :class:`ImageRanking` is one image's proposals with the model's final ranks and the RA-SRGT
ground truth. :func:`image_table` gives one row per image: the per-image metrics exactly as the
dataset figures are computed (:func:`salrank.fosrnet.evaluate.pred_values` / :func:`~salrank.fosrnet.evaluate.gt_values`
into :func:`salrank.metrics.ranking.per_image_metrics`) and descriptors of the image that may explain a
failure. :func:`failure_flags` turns the descriptors into failure types (:data:`FAILURE_TYPES`),
:func:`failure_summary` compares how often each occurs among the worst images and overall.
:func:`select_images` picks the best / worst / a spread of images, :func:`prediction_panels` draws
them (image, GT ranks, predicted ranks side by side).

Conventions: boxes ``[x1, y1, x2, y2]`` pixels of the original image; ``image_size`` is
``(height, width)``; rank 1 = most salient, 0 = not salient (GT boxes without fixations).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from salrank.paper import DEFAULT_BETA, DEFAULT_GAMMA

__all__ = [
    "FAILURE_TYPES",
    "ImageRanking",
    "describe_failures",
    "failure_flags",
    "failure_summary",
    "image_table",
    "prediction_panels",
    "reference_objects",
    "select_images",
]

FAILURE_TYPES = {
    "missed salient object": "a reference object that observers looked at (RA-SRGT rank > 0) has no proposal "
                             "at IoU >= the threshold (the detector missed it: the paper's Fig. 14, line 2)",
    "false positive ranked first": "the proposal the model ranks first matches no reference object",
    "near-tied GT": "the two most salient proposals' RA-SRGT scores differ by less than `tie_gap` of the "
                    "larger (objects of comparable saliency: the paper's Fig. 14, line 1)",
    "small objects": "the smallest proposal covers less than `small_area` of the image",
    "many proposals": "at least `many` proposals to rank",
}
"""Failure types of :func:`failure_flags` and their rules (thresholds are its keyword arguments).
The first two need reference object boxes (SynthSal's planted objects, SALICON examples' boxes)."""


@dataclass(frozen=True)
class ImageRanking:
    """One image: ``boxes`` (n, 4) proposals in pixels (detector-score order), ``pred_ranks`` (n,) the
    model's final ranks 1..n, ``gt_scores`` (n,) RA-SRGT scores, ``gt_ranks`` (n,) RA-SRGT ranks
    (0 = no fixation), ``image_size`` ``(height, width)``."""

    stem: str
    boxes: np.ndarray
    pred_ranks: np.ndarray
    gt_scores: np.ndarray
    gt_ranks: np.ndarray
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        n = len(boxes)
        arrays = {}
        for name, dtype in (("pred_ranks", np.int64), ("gt_scores", np.float64), ("gt_ranks", np.int64)):
            a = np.asarray(getattr(self, name), dtype).reshape(-1)
            if len(a) != n:
                raise ValueError(f"image {self.stem!r}: {name} has {len(a)} values for {n} boxes")
            arrays[name] = a
        h, w = (int(v) for v in self.image_size)
        if h <= 0 or w <= 0:
            raise ValueError(f"image {self.stem!r}: image_size must be positive (height, width), got {self.image_size}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "image_size", (h, w))
        for name, a in arrays.items():
            object.__setattr__(self, name, a)


def _area_fractions(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    h, w = image_size
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None) / (h * w)


def _top_gap(scores: np.ndarray) -> float:
    """(s1 - s2) / s1 of the two largest positive scores; NaN with fewer than two."""
    pos = np.sort(scores[scores > 0])[::-1]
    return float((pos[0] - pos[1]) / pos[0]) if len(pos) >= 2 else float("nan")


def image_table(rankings: Sequence[ImageRanking], reference: Mapping[str, np.ndarray] | None = None,
                reference_ranks: Mapping[str, np.ndarray] | None = None, *, iou_threshold: float = 0.5) -> pd.DataFrame:
    """One row per image (index = stem).

    Metric columns (:func:`salrank.metrics.ranking.per_image_metrics`): ``srcc``, ``f1``, ``acc_top1``,
    ``constant_gt`` (SRCC undefined). Descriptors: ``n_proposals``; ``n_salient`` (proposals with
    fixations); ``smallest_area`` and ``top_gt_area`` (area / image area of the smallest proposal and
    of the GT rank-1 proposal); ``top_gap`` (relative gap of the two largest RA-SRGT scores, NaN with
    fewer than two salient proposals). With ``reference`` object boxes ``{stem: (K, 4)}``, matched
    one-to-one to the proposals (:func:`salrank.analysis.proposal_comparison.match_one_to_one`, IoU >=
    ``iou_threshold``): ``n_reference``, ``n_missed`` (reference objects without a proposal),
    ``n_false_positive`` (proposals without a reference object), ``pred_top_is_false_positive``; with
    ``reference_ranks`` (their RA-SRGT ranks) also ``n_missed_salient`` (missed objects with rank > 0).
    """
    from salrank.analysis.proposal_comparison import match_one_to_one
    from salrank.fosrnet.evaluate import gt_values, pred_values
    from salrank.metrics.ranking import per_image_metrics

    rankings = list(rankings)
    stems = [r.stem for r in rankings]
    if len(set(stems)) != len(stems):
        raise ValueError("image_table: duplicate image stems")
    metrics = per_image_metrics([pred_values(r.pred_ranks) for r in rankings],
                                [gt_values(r.gt_scores) for r in rankings])
    rows = []
    for r in rankings:
        areas = _area_fractions(r.boxes, r.image_size)
        row = {
            "n_proposals": len(r.boxes),
            "n_salient": int((r.gt_ranks > 0).sum()),
            "smallest_area": float(areas.min()) if len(areas) else float("nan"),
            "top_gt_area": float(areas[r.gt_ranks == 1][0]) if (r.gt_ranks == 1).any() else float("nan"),
            "top_gap": _top_gap(r.gt_scores),
        }
        if reference is not None:
            if r.stem not in reference:
                raise KeyError(f"image_table: no reference boxes for image {r.stem!r}")
            ref = np.asarray(reference[r.stem], np.float64).reshape(-1, 4)
            pairs = match_one_to_one(ref, r.boxes, iou_threshold)
            matched_ref = {i for i, _ in pairs}
            matched_prop = {j for _, j in pairs}
            top = int(np.argmin(r.pred_ranks)) if len(r.pred_ranks) else None
            row.update({
                "n_reference": len(ref),
                "n_missed": len(ref) - len(pairs),
                "n_false_positive": len(r.boxes) - len(pairs),
                "pred_top_is_false_positive": top is not None and top not in matched_prop,
            })
            if reference_ranks is not None:
                rr = np.asarray(reference_ranks[r.stem], np.int64).reshape(-1)
                if len(rr) != len(ref):
                    raise ValueError(f"image {r.stem!r}: {len(rr)} reference ranks for {len(ref)} reference boxes")
                row["n_missed_salient"] = int(sum(1 for i in range(len(ref)) if rr[i] > 0 and i not in matched_ref))
        rows.append(row)
    table = pd.concat([metrics[["srcc", "f1", "acc_top1", "constant_gt"]].reset_index(drop=True),
                       pd.DataFrame(rows)], axis=1)
    table.index = pd.Index(stems, name="stem")
    return table


def failure_flags(table: pd.DataFrame, *, small_area: float = 0.01, many: int = 8,
                  tie_gap: float = 0.1) -> pd.DataFrame:
    """Boolean columns, one per :data:`FAILURE_TYPES` entry that ``table``'s columns allow
    (the reference-based ones need :func:`image_table`'s ``reference``/``reference_ranks``)."""
    flags = pd.DataFrame(index=table.index)
    if "n_missed_salient" in table:
        flags["missed salient object"] = table["n_missed_salient"] > 0
    if "pred_top_is_false_positive" in table:
        flags["false positive ranked first"] = table["pred_top_is_false_positive"].astype(bool)
    flags["near-tied GT"] = table["top_gap"] < tie_gap  # NaN (one salient proposal) -> False
    flags["small objects"] = table["smallest_area"] < small_area
    flags["many proposals"] = table["n_proposals"] >= many
    return flags


def select_images(table: pd.DataFrame, n: int, which: str = "worst", *, metric: str = "srcc") -> list[str]:
    """Stems of ``n`` images by per-image ``metric`` (images where it is undefined are skipped):
    ``"worst"`` (lowest first), ``"best"`` (highest first) or ``"spread"`` (evenly spaced over the
    sorted values, best to worst: a representative sample). Ties keep ``table``'s order."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if metric not in table:
        raise KeyError(f"select_images: the table has no column {metric!r}")
    values = table[metric].dropna()
    ordered = values.sort_values(ascending=which == "worst", kind="stable")
    if which in ("worst", "best"):
        return list(ordered.index[:n])
    if which == "spread":
        ordered = values.sort_values(ascending=False, kind="stable")
        if len(ordered) <= n:
            return list(ordered.index)
        picks = np.unique(np.round(np.linspace(0, len(ordered) - 1, n)).astype(int))
        return list(ordered.index[picks])
    raise ValueError(f"which must be 'worst', 'best' or 'spread', got {which!r}")


def failure_summary(table: pd.DataFrame, n_worst: int = 10, **thresholds) -> pd.DataFrame:
    """Per failure type (:func:`failure_flags` with ``thresholds``): how often it occurs among the
    ``n_worst`` images by per-image SRCC (:func:`select_images`) and among all images with an SRCC,
    and the mean SRCC of the images with and without it. Columns: ``rule``, ``worst`` (share),
    ``all`` (share), ``lift`` (worst / all), ``srcc with``, ``srcc without``, ``images with``."""
    flags = failure_flags(table, **thresholds).loc[table["srcc"].notna()]
    srcc = table.loc[flags.index, "srcc"]
    worst = select_images(table, n_worst, "worst")
    rows = {}
    for name in flags.columns:
        f = flags[name]
        share_all = float(f.mean()) if len(f) else float("nan")
        share_worst = float(f.loc[worst].mean()) if worst else float("nan")
        rows[name] = {
            "rule": FAILURE_TYPES[name],
            "worst": share_worst,
            "all": share_all,
            "lift": share_worst / share_all if share_all > 0 else float("nan"),
            "srcc with": float(srcc[f].mean()) if f.any() else float("nan"),
            "srcc without": float(srcc[~f].mean()) if (~f).any() else float("nan"),
            "images with": int(f.sum()),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "failure type"
    return out


def describe_failures(summary: pd.DataFrame, n_worst: int) -> str:
    """A Markdown sentence per failure type that is over-represented among the ``n_worst`` images
    (``lift`` > 1 in a :func:`failure_summary` table), most over-represented first, or one sentence
    saying that none is."""
    over = summary[summary["lift"] > 1].sort_values("lift", ascending=False, kind="stable")
    if over.empty:
        return (f"No failure type is more frequent among the {n_worst} worst images than among all images: "
                "the worst images are not explained by these descriptors.")
    lines = [f"Among the {n_worst} worst images (by per-image SRCC):"]
    for name, row in over.iterrows():
        lines.append(f"- **{name}**: {row['worst']:.0%} of them, {row['all']:.0%} of all images "
                     f"(x{row['lift']:.1f}); mean SRCC {row['srcc with']:.2f} with it, "
                     f"{row['srcc without']:.2f} without.")
    return "\n".join(lines)


def reference_objects(scene_set, stems: Sequence[str], gamma: float = DEFAULT_GAMMA,
                      beta: float = DEFAULT_BETA) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """``(boxes, ranks)`` of ``scene_set``'s reference objects of ``stems``: their boxes ``{stem: (K, 4)}``
    and RA-SRGT ranks from the image's fixations (:func:`salrank.fosrnet.data.ground_truth`), or
    ``None`` when the scene set has no reference boxes (SALICON: its boxes are detector proposals)."""
    from salrank.fosrnet.data import ground_truth

    if not scene_set.boxes:
        return None
    boxes, ranks = {}, {}
    for stem in stems:
        fx = scene_set.fixations[stem]
        boxes[stem] = scene_set.boxes_of(stem)
        ranks[stem] = ground_truth(fx, boxes[stem], (fx.height, fx.width), gamma, beta)[1]
    return boxes, ranks


def _fit_lines(text: str, length_in: float, fontsize: float) -> str:
    """``text`` with each line wrapped to fit ``length_in`` inches at ``fontsize`` points (a long
    rotated row label would otherwise be taller than its row and collapse the layout)."""
    import textwrap

    width = max(12, int(length_in * 72 / (0.62 * fontsize)))
    return "\n".join(textwrap.fill(line, width, break_long_words=True) if line else line
                     for line in text.split("\n"))


def prediction_panels(rankings: Sequence[ImageRanking], image_of: Callable[[str], object], *,
                      row_labels: Sequence[str] | None = None, show_image: bool = True,
                      fixations: Mapping | None = None, panel_width: float = 3.6,
                      titles: tuple[str, str, str] = ("image", "GT (RA-SRGT)", "predicted")) -> Figure:
    """A figure with one row per image: [the image,] its proposals labelled with the GT ranks, and
    with the predicted ranks (:func:`salrank.viz.plots.draw_ranked_boxes`: ``#1`` = most salient,
    ``-`` = no fixation). ``image_of(stem)`` returns the RGB image; ``row_labels`` are written left
    of each row; ``fixations`` ``{stem: Fixations}`` adds the fixation points to the GT panel.
    Returns a :class:`matplotlib.figure.Figure` (no pyplot state)."""
    from salrank.viz.plots import draw_ranked_boxes

    rankings = list(rankings)
    if not rankings:
        raise ValueError("prediction_panels needs at least one image")
    if row_labels is not None and len(row_labels) != len(rankings):
        raise ValueError(f"{len(row_labels)} row labels for {len(rankings)} images")
    cols = 3 if show_image else 2
    h, w = rankings[0].image_size
    row_height = panel_width * h / w
    fig = Figure(figsize=(panel_width * cols, row_height * len(rankings) + 0.4), layout="constrained")
    axes = np.asarray(fig.subplots(len(rankings), cols, squeeze=False))
    for i, (row, r) in enumerate(zip(axes, rankings, strict=True)):
        image = image_of(r.stem)
        panels = list(row)
        if show_image:
            ax = panels.pop(0)
            ax.imshow(np.asarray(image))
            ax.set_axis_off()
        draw_ranked_boxes(panels[0], image, r.boxes, r.gt_ranks, fontsize=7, linewidth=1.5)
        if fixations is not None and r.stem in fixations:
            pts = fixations[r.stem].points
            panels[0].scatter(pts[:, 0], pts[:, 1], s=2.0, c="#00ffff", alpha=0.5, linewidths=0)
            panels[0].set_xlim(0, r.image_size[1])
            panels[0].set_ylim(r.image_size[0], 0)
        draw_ranked_boxes(panels[1], image, r.boxes, r.pred_ranks, fontsize=7, linewidth=1.5)
        if i == 0:
            for ax, title in zip(row, titles[3 - cols:], strict=True):
                ax.set_title(title, fontsize=10)
        label = row_labels[i] if row_labels is not None else r.stem
        row[0].text(-0.03, 0.5, _fit_lines(label, row_height, 8), transform=row[0].transAxes, rotation=90,
                    ha="right", va="center", fontsize=8)
    return fig
