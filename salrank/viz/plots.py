"""Matplotlib drawing helpers shared by the notebooks and widgets.

Coordinates: points ``(x, y)`` 0-based pixels; boxes ``[x1, y1, x2, y2]`` pixels; images are
drawn with ``origin="upper"`` so pixel ``(x, y)`` lands where the points say.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from salrank.data import Fixations, fixation_map


def _image_array(image) -> np.ndarray:
    return np.asarray(image)


def show_fixations(ax, image, fixations: Fixations, *, max_points: int = 4000, seed: int = 0, **scatter_kw):
    """Draw ``image`` with (at most ``max_points``, randomly thinned) fixation points on ``ax``."""
    ax.imshow(_image_array(image))
    pts = fixations.points
    if len(pts) > max_points:
        pts = pts[np.random.default_rng(seed).choice(len(pts), max_points, replace=False)]
    kw = {"s": 2, "c": "#ff00ff", "alpha": 0.6, "linewidths": 0}
    kw.update(scatter_kw)
    ax.scatter(pts[:, 0], pts[:, 1], **kw)
    ax.set_axis_off()
    return ax


def show_fixation_map(ax, image, fixations: Fixations, *, sigma: float = 19.0, alpha: float = 0.55, cmap="jet"):
    """Draw ``image`` with its fixation map (:func:`salrank.data.fixation_map`) overlaid."""
    fmap = fixation_map(fixations, sigma=sigma)
    ax.imshow(_image_array(image))
    ax.imshow(fmap, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
    ax.set_axis_off()
    return ax


def draw_boxes(
    ax,
    boxes: np.ndarray,
    labels: Sequence[str] | None = None,
    colors: Sequence | None = None,
    *,
    linewidth: float = 2.0,
    fontsize: float = 8.0,
):
    """Draw ``[x1, y1, x2, y2]`` pixel boxes on ``ax``: outline in ``colors[i]`` (default
    yellow) and, where ``labels[i]`` is not empty, a tag in white on the box's colour at its
    top-left corner inside the box. Every box drawing of salrank goes through this function
    (ranked boxes: :func:`draw_ranked_boxes`). Returns ``ax``."""
    from matplotlib.patches import Rectangle

    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    for name, values in (("labels", labels), ("colors", colors)):
        if values is not None and len(values) != len(boxes):
            raise ValueError(f"{name} has {len(values)} entries for {len(boxes)} boxes")
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        color = colors[i] if colors is not None else "yellow"
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=linewidth))
        if labels is not None and labels[i] != "":
            ax.text(
                x1 + 2,
                y1 + 2,
                labels[i],
                color="white",
                fontsize=fontsize,
                va="top",
                ha="left",
                bbox={"facecolor": color, "alpha": 0.8, "pad": 1.5, "edgecolor": "none"},
            )
    return ax


def rank_colors(ranks: np.ndarray, cmap: str = "autumn") -> list:
    """One RGBA colour per box: rank 1 darkest/warmest; rank 0 (not salient) grey."""
    import matplotlib

    ranks = np.asarray(ranks, dtype=int).reshape(-1)
    m = max(int(ranks.max(initial=0)), 1)
    cm = matplotlib.colormaps[cmap]
    return [(0.55, 0.55, 0.55, 1.0) if r == 0 else cm((r - 1) / max(m, 2)) for r in ranks]


def rank_labels(ranks, scores=None) -> list[str]:
    """Box labels of ranks (1 = most salient, 0 = not salient): ``"#1"``, ``"#2"``, ...,
    ``"-"`` for rank 0; with ``scores``, the score is appended (``"#1 0.53"``)."""
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
    labels = ["-" if r == 0 else f"#{r}" for r in ranks]
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(ranks):
            raise ValueError(f"scores has {len(scores)} values for {len(ranks)} ranks")
        labels = [f"{label} {s:.2f}" for label, s in zip(labels, scores, strict=True)]
    return labels


def draw_ranked_boxes(ax, image, boxes, ranks, scores=None, *, fontsize: float = 8.0, linewidth: float = 2.0):
    """Draw ``image`` (skipped when ``None``, e.g. over a map already drawn) on ``ax`` with its
    ``[x1, y1, x2, y2]`` pixel boxes coloured by rank (:func:`rank_colors`: rank 1 warmest,
    rank 0 grey) and labelled by :func:`rank_labels` (``#1``, ``#2``, ..., ``-`` for rank 0;
    ``scores`` appended when given). The most salient box is drawn last (on top). Returns ``ax``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
    if len(ranks) != len(boxes):
        raise ValueError(f"ranks has {len(ranks)} values for {len(boxes)} boxes")
    labels = rank_labels(ranks, scores)
    colors = rank_colors(ranks)
    # draw order: rank 0 first, then from the least to the most salient
    order = sorted(range(len(ranks)), key=lambda i: (ranks[i] != 0, -ranks[i]))
    if image is not None:
        ax.imshow(_image_array(image))
    draw_boxes(ax, boxes[order], labels=[labels[i] for i in order], colors=[colors[i] for i in order],
               fontsize=fontsize, linewidth=linewidth)
    ax.set_axis_off()
    return ax
