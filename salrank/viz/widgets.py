"""The ground-truth explorer (an ipywidgets UI) and the static gallery of ranked boxes.

* :func:`gt_explorer`: pick an image, a GT method (:data:`salrank.gt.METHODS`), gamma and beta;
  every change redraws the image with its boxes coloured and labelled by rank and the score
  table (box, fixations inside, score, rank). Live in JupyterLab / Notebook.
* :func:`ranked_gallery`: a figure of ranks at several gammas (rows = images, columns = gammas),
  for static pages that have no kernel.

Conventions: boxes ``[x1, y1, x2, y2]`` pixels of the original image; rank 1 = most salient,
0 = not salient. Boxes are drawn by :func:`salrank.viz.plots.draw_ranked_boxes`. Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from salrank.gt import DEFAULT_BETA, DEFAULT_GAMMA, METHODS, image_rank_table
from salrank.paper import GAMMAS
from salrank.viz.plots import draw_ranked_boxes

__all__ = [
    "GTExplorer",
    "gt_explorer",
    "ranked_gallery",
    "profile_scene_sets",
    "GALLERY_GAMMAS",
]

GALLERY_GAMMAS = GAMMAS
"""The gallery's columns: the GT thresholds gamma the paper studies."""

_METHOD_NAMES = {
    "ra-srgt": "RA-SRGT (eq. 4)",
    "points": "fixation points (eq. 1)",
    "map-max": "fixation map, max (eq. 2)",
    "map-avg": "fixation map, mean (eq. 2)",
    "binary-map": "binarised map (eq. 3)",
}


def _scene_table(scene_set, stem: str, method: str, gamma: float, beta: float) -> pd.DataFrame:
    fx = scene_set.fixations[stem]
    salience = scene_set.salience[stem] if scene_set.salience is not None else None
    return image_rank_table(fx.points, scene_set.boxes_of(stem), (fx.height, fx.width), method, gamma, beta,
                            salience=salience)


def ranked_gallery(scene_set, stems: Sequence[str], gammas: Sequence[float] = GALLERY_GAMMAS,
                   beta: float = DEFAULT_BETA, method: str = "ra-srgt", *, panel_width: float = 4.8,
                   columns: int = 2, fontsize: float = 11.0, show_scores: bool = False) -> Figure:
    """A figure of GT ranks: for each of ``stems`` of ``scene_set`` (a
    :class:`~salrank.data.scenes.SceneSet`), one panel per gamma of ``gammas`` (``beta`` fixed),
    ``columns`` panels a row, each drawn by :func:`salrank.viz.plots.draw_ranked_boxes` with labels of ``fontsize``
    points. ``panel_width`` in inches (a book page shows about 8 inches at full size, so two
    columns of 4.8 inches keep the rank labels readable). Returns a
    :class:`matplotlib.figure.Figure` with ``len(stems) * len(gammas)`` axes, image by image, in
    the order of ``gammas``."""
    stems, gammas = list(stems), [float(g) for g in gammas]
    if not stems or not gammas:
        raise ValueError("ranked_gallery needs at least one stem and one gamma")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    missing = [s for s in stems if s not in scene_set.fixations]
    if missing:
        raise KeyError(f"{scene_set.name}/{scene_set.split} has no image(s) {missing}")
    first = scene_set.fixations[stems[0]]
    aspect = first.height / first.width
    columns = min(columns, len(gammas))
    rows_per_stem = -(-len(gammas) // columns)
    fig = Figure(figsize=(panel_width * columns, (panel_width * aspect + 0.35) * rows_per_stem * len(stems) + 0.5),
                 layout="constrained")
    grid = np.asarray(fig.subplots(len(stems) * rows_per_stem, columns, squeeze=False))
    for s, stem in enumerate(stems):
        image = scene_set.image(stem)
        block = grid[s * rows_per_stem:(s + 1) * rows_per_stem].reshape(-1)
        for ax in block[len(gammas):]:
            ax.remove()
        for ax, gamma in zip(block, gammas, strict=False):
            table = _scene_table(scene_set, stem, method, gamma, beta)
            draw_ranked_boxes(ax, image, table[["x1", "y1", "x2", "y2"]].to_numpy(), table["rank"].to_numpy(),
                              table["score"].to_numpy() if show_scores else None, fontsize=fontsize, linewidth=2.0)
            ax.set_title(f"gamma = {gamma:g}", fontsize=fontsize)
        block[0].text(-0.03, 0.5, stem, transform=block[0].transAxes, rotation=90, ha="right", va="center",
                      fontsize=fontsize * 0.8)
    fig.suptitle(f"{_METHOD_NAMES[method]}, beta = {beta:g}: {scene_set.name}/{scene_set.split}",
                 fontsize=fontsize + 1)
    return fig


def profile_scene_sets(settings=None, *, synth_split: str = "val", salicon_split: str = "val",
                       detector: str = "efficientdet_d0") -> list:
    """The scene sets of a profile's datasets (:func:`salrank.data.scenes.profile_datasets`): on
    ``sample`` the real SALICON examples and SynthSal ``synth_split``; on ``full`` SALICON
    ``salicon_split`` with the ``detector``'s proposals."""
    from salrank.data.scenes import open_dataset, profile_datasets

    splits = {"salicon-examples": "all", "synthsal": synth_split, "salicon": salicon_split}
    return [open_dataset(name, splits[name], settings, detector=detector if name == "salicon" else None)
            for name in profile_datasets(settings)]


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class GTExplorer(widgets.VBox):
    """The GT explorer widget (see :func:`gt_explorer`).

    Controls: :attr:`image` (a ``Dropdown`` whose values are ``(set index, stem)``),
    :attr:`method`, :attr:`gamma`, :attr:`beta`. After every change, :attr:`table` holds the
    current image's table (:func:`salrank.gt.image_rank_table`), :attr:`scores` and
    :attr:`ranks` its columns, :attr:`picture` (an ``Image`` widget) the PNG drawing and
    :attr:`table_html` the table as HTML. Setting a control's ``value`` programmatically updates
    everything, as a user's change does.
    """

    def __init__(self, scene_sets: Sequence, *, method: str = "ra-srgt", gamma: float = DEFAULT_GAMMA,
                 beta: float = DEFAULT_BETA, figure_width: float = 6.4, dpi: int = 90) -> None:
        self.scene_sets = list(scene_sets)
        options = [(f"{ss.name}/{ss.split}: {stem}", (i, stem))
                   for i, ss in enumerate(self.scene_sets) for stem in ss.stems if len(ss.boxes_of(stem))]
        if not options:
            raise ValueError("gt_explorer: no image with object boxes in the given scene sets "
                             "(for SALICON, generate proposals first: salrank proposals)")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        self.figure_width, self.dpi = float(figure_width), int(dpi)
        style = {"description_width": "60px"}
        self.image = widgets.Dropdown(options=options, value=options[0][1], description="image",
                                      layout=widgets.Layout(width="460px"), style=style)
        self.method = widgets.Dropdown(options=[(_METHOD_NAMES[m], m) for m in METHODS], value=method,
                                       description="method", layout=widgets.Layout(width="300px"), style=style)
        self.gamma = widgets.FloatSlider(value=gamma, min=0.0, max=1.0, step=0.05, description="gamma",
                                         readout_format=".2f", continuous_update=False, style=style)
        self.beta = widgets.FloatSlider(value=beta, min=0.0, max=2.0, step=0.05, description="beta",
                                        readout_format=".2f", continuous_update=False, style=style)
        self.formula = widgets.HTMLMath()
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="680px"))
        self.table_html = widgets.HTML()
        self.table = pd.DataFrame()
        self.scores = np.zeros(0)
        self.ranks = np.zeros(0, dtype=np.int64)
        self.figure_png = b""
        controls = widgets.VBox([widgets.HBox([self.image, self.method]), widgets.HBox([self.gamma, self.beta]),
                                 self.formula])
        super().__init__([controls, widgets.HBox([self.picture, self.table_html])])
        for control in (self.image, self.method, self.gamma, self.beta):
            control.observe(self._on_change, names="value")
        self.update()

    @property
    def current(self):
        """``(scene set, stem)`` of the selected image."""
        index, stem = self.image.value
        return self.scene_sets[index], stem

    def _on_change(self, _change=None) -> None:
        self.update()

    def update(self) -> None:
        """Recompute the ranks of the selected image and redraw (called on every change)."""
        scene_set, stem = self.current
        method, gamma, beta = self.method.value, float(self.gamma.value), float(self.beta.value)
        uses_parameters = method == "ra-srgt"
        self.gamma.disabled = self.beta.disabled = not uses_parameters
        table = _scene_table(scene_set, stem, method, gamma, beta)
        self.table, self.scores, self.ranks = table, table["score"].to_numpy(), table["rank"].to_numpy()
        fx = scene_set.fixations[stem]
        self.formula.value = _formula(method, gamma, beta, n_points=len(fx.points))

        aspect = fx.height / fx.width
        fig = Figure(figsize=(self.figure_width, self.figure_width * aspect + 0.35), layout="constrained")
        ax = fig.add_subplot()
        draw_ranked_boxes(ax, scene_set.image(stem), table[["x1", "y1", "x2", "y2"]].to_numpy(), self.ranks)
        ax.scatter(fx.points[:, 0], fx.points[:, 1], s=1.5, c="#00ffff", alpha=0.35, linewidths=0)
        ax.set_xlim(0, fx.width)
        ax.set_ylim(fx.height, 0)
        subtitle = f", gamma = {gamma:.2f}, beta = {beta:.2f}" if uses_parameters else ""
        ax.set_title(f"{stem}: {_METHOD_NAMES[method]}{subtitle}", fontsize=9)
        self.figure_png = _png(fig, self.dpi)
        self.picture.value = self.figure_png

        shown = table.drop(columns=["x1", "y1", "x2", "y2"]).rename(columns={"n_fixations": "fixations inside"})
        shown = shown.sort_values(["rank"], key=lambda r: r.replace(0, np.iinfo(np.int64).max), kind="stable")
        self.table_html.value = shown.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0)


def _formula(method: str, gamma: float, beta: float, n_points: int) -> str:
    if method == "ra-srgt":
        return (rf"$S_i = N_i / N + {gamma:.2f}\,\exp({beta:.2f}\,\sqrt{{A_i/A}})$ if $N_i > 0$, else 0 "
                rf"&nbsp; ($N$ = {n_points} fixation points)")
    return {
        "points": r"$S_i = N_i / \sqrt{A_i}$ (gamma and beta unused)",
        "map-max": r"$S_i = \max$ of the fixation map in $Q_i$ (gamma and beta unused)",
        "map-avg": r"$S_i =$ mean of the fixation map in $Q_i$ (gamma and beta unused)",
        "binary-map": r"$S_i = (\#\,\mathrm{map} > 0.5 \text{ in } Q_i) / |Q_i| \cdot \sqrt{A_i/A}$ "
                      "(gamma and beta unused)",
    }[method]


def gt_explorer(scene_sets: Sequence | None = None, settings=None, *, method: str = "ra-srgt",
                gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA, **options) -> GTExplorer:
    """The interactive GT explorer: image selector, method dropdown, gamma slider (0-1, step
    0.05) and beta slider (0-2, step 0.05); each change redraws the image with boxes coloured
    and labelled by rank and the score table.

    ``scene_sets``: :class:`~salrank.data.scenes.SceneSet` objects, or dataset names for
    :func:`salrank.data.scenes.open_dataset` (default split); ``None``: the profile's sets
    (:func:`profile_scene_sets` with ``settings``). Images without boxes are not offered.
    ``options``: ``figure_width`` (inches), ``dpi``. Returns a :class:`GTExplorer` (an
    ``ipywidgets.VBox``).
    """
    from salrank.data.scenes import open_dataset

    if scene_sets is None:
        scene_sets = profile_scene_sets(settings)
    sets = []
    for ss in scene_sets:
        if isinstance(ss, str):
            split = {"salicon-examples": "all", "synthsal": "val", "salicon": "val"}.get(ss, "all")
            ss = open_dataset(ss, split, settings)
        sets.append(ss)
    return GTExplorer(sets, method=method, gamma=gamma, beta=beta, **options)
