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
    """Draw ``[x1, y1, x2, y2]`` boxes with optional text labels at their top-left corners."""
    from matplotlib.patches import Rectangle

    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
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
    """One colour per box: rank 1 darkest/warmest; rank 0 (not salient) grey."""
    import matplotlib

    ranks = np.asarray(ranks, dtype=int)
    m = max(int(ranks.max(initial=0)), 1)
    cm = matplotlib.colormaps[cmap]
    return [(0.55, 0.55, 0.55, 1.0) if r == 0 else cm((r - 1) / max(m, 2)) for r in ranks]
