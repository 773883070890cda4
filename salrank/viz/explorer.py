"""The GT explorer that runs without a kernel: a Vega-Lite chart (built with Altair) whose
gamma/beta sliders and method/image selectors re-rank the boxes in the reader's browser.

RA-SRGT has a closed form (eq. 4): a box's score under any ``(gamma, beta)`` follows from two
numbers per box, its fixation share ``f_i = N_i / N`` and its relative size
``a_i = sqrt(A_i / A)``. :func:`explorer_data` computes them (and the scores of the baseline
methods, which do not depend on gamma/beta) with the same code as :func:`salrank.gt.rank_objects`;
:func:`explorer_chart` embeds them in a Vega-Lite spec whose transforms redo, in the browser,
``S_i = f_i + gamma * exp(beta * a_i)`` if ``N_i > 0`` else 0, and eq. 5's ranks (rank 1 = highest
score, ties to the lower box index, 0 = score 0). :func:`explorer_html` renders the chart as HTML
that needs no internet: the Vega/Vega-Lite/vega-embed bundle is served from the book's
``_static`` folder (:data:`VEGA_BUNDLE`, written by the book's local Sphinx extension with
:func:`vega_bundle`) or inlined (``inline=True``).

Conventions: boxes ``[x1, y1, x2, y2]`` pixels of the original image (clipped to it); rank 1 =
most salient, 0 = not salient. Each drawn box carries an accessible description
``"box K: rank R"`` (``K`` 0-based), which the browser test reads.
"""

from __future__ import annotations

import base64
import html
import io
import json
import uuid
from collections.abc import Sequence

import numpy as np
import pandas as pd

from salrank.gt import DEFAULT_BETA, DEFAULT_GAMMA, METHODS, score_objects
from salrank.gt.counting import _count, points_inside_image
from salrank.gt.inputs import as_boxes, as_image_size, as_points, box_areas, clip_boxes

__all__ = [
    "BASELINES",
    "EXPLORER_CLASS",
    "VEGA_BUNDLE",
    "explorer_data",
    "explorer_chart",
    "explorer_html",
    "vega_bundle",
    "ranks_like_browser",
]

BASELINES = tuple(m for m in METHODS if m != "ra-srgt")
"""The methods whose scores do not depend on gamma/beta; their scores are embedded as columns."""

EXPLORER_CLASS = "salrank-explorer"
"""CSS class of the explorer's container; the book extension loads :data:`VEGA_BUNDLE` on the
pages that contain it."""

VEGA_BUNDLE = "salrank-vega.js"
"""File name of the Vega + Vega-Lite + vega-embed bundle in the book's ``_static`` folder."""

_METHOD_LABELS = {
    "ra-srgt": "RA-SRGT (eq. 4)",
    "points": "fixation points (eq. 1)",
    "map-max": "fixation map, max (eq. 2)",
    "map-avg": "fixation map, mean (eq. 2)",
    "binary-map": "binarised map (eq. 3)",
}


def _data_url(image, max_width: int) -> str:
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    img = img.convert("RGB")
    if img.width > max_width:
        img = img.resize((max_width, round(img.height * max_width / img.width)), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def explorer_data(scene_sets: Sequence, stems: dict | None = None, *, max_images: int | None = 8,
                  image_width: int = 480) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-box and per-image tables the explorer embeds.

    ``scene_sets``: :class:`~salrank.data.scenes.SceneSet` objects; ``stems``: optional
    ``{set name: [stems]}`` to show (default: each set's first ``max_images`` images with boxes;
    ``None`` = all). Returns ``(boxes, images)``:

    * ``boxes``, one row per box: ``image`` (label ``"set/split: stem"``), ``box`` (0-based index),
      ``x1 y1 x2 y2`` (pixels, clipped) and the same divided by the image width/height (``u1 v1
      u2 v2``), ``n`` (= N_i, points inside, half-open), ``n_image`` (= N), ``share`` (= N_i / N,
      0 when N = 0), ``size`` (= sqrt(A_i / A)) and one column per :data:`BASELINES` method (its
      score, as :func:`salrank.gt.score_objects` computes it);
    * ``images``, one row per image: ``image``, ``width``, ``height`` (pixels), ``url`` (a JPEG
      data URL at most ``image_width`` pixels wide).
    """
    box_rows, image_rows = [], []
    for ss in scene_sets:
        chosen = (stems or {}).get(ss.name)
        if chosen is None:
            chosen = [s for s in ss.stems if len(ss.boxes_of(s))]
            if max_images is not None:
                chosen = chosen[:max_images]
        for stem in chosen:
            fx = ss.fixations[stem]
            size = as_image_size((fx.height, fx.width))
            pts = as_points(fx.points)
            bxs = clip_boxes(as_boxes(ss.boxes_of(stem)), size)
            if not len(bxs):
                continue
            label = f"{ss.name}/{ss.split}: {stem}"
            counts = _count(pts, bxs)
            n_image = points_inside_image(pts, size)
            share = np.divide(counts, float(n_image), out=np.zeros(len(bxs)), where=counts > 0)
            rel_size = np.sqrt(box_areas(bxs) / float(size[0] * size[1]))
            baselines = {m: score_objects(pts, bxs, size, m) for m in BASELINES}
            height, width = size
            for k, (x1, y1, x2, y2) in enumerate(bxs):
                row = {"image": label, "box": k, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                       "u1": x1 / width, "v1": y1 / height, "u2": x2 / width, "v2": y2 / height,
                       "n": int(counts[k]), "n_image": int(n_image), "share": float(share[k]),
                       "size": float(rel_size[k])}
                row.update({m: float(baselines[m][k]) for m in BASELINES})
                box_rows.append(row)
            image_rows.append({"image": label, "width": width, "height": height,
                               "url": _data_url(ss.image(stem), image_width)})
    if not image_rows:
        raise ValueError("explorer_data: no image with object boxes in the given scene sets")
    return pd.DataFrame(box_rows), pd.DataFrame(image_rows)


def ranks_like_browser(boxes: pd.DataFrame, image: str, method: str = "ra-srgt", gamma: float = DEFAULT_GAMMA,
                       beta: float = DEFAULT_BETA) -> np.ndarray:
    """The ranks the chart's transforms compute for ``image`` (its boxes in index order), redone in
    numpy from the embedded columns: the reference the tests compare with both
    :func:`salrank.gt.rank_objects` and the browser."""
    from salrank.gt.ranking import ranks_from_scores

    rows = boxes[boxes["image"] == image].sort_values("box")
    if method == "ra-srgt":
        scores = np.where(rows["n"] > 0, rows["share"] + gamma * np.exp(beta * rows["size"]), 0.0)
    elif method in BASELINES:
        scores = rows[method].to_numpy()
    else:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return ranks_from_scores(scores)


def _rank_palette(max_rank: int) -> list[str]:
    from matplotlib.colors import to_hex

    from salrank.viz.plots import rank_colors

    return [to_hex(c) for c in rank_colors(np.arange(max_rank + 1))]


def explorer_chart(boxes: pd.DataFrame, images: pd.DataFrame, *, method: str = "ra-srgt",
                   gamma: float = DEFAULT_GAMMA, beta: float = DEFAULT_BETA, width: int = 520):
    """The explorer as an :class:`altair.VConcatChart`: the selected image with its boxes coloured
    and labelled by rank (``#1``, ``#2``, ..., ``-`` for rank 0) and the score table, with
    bound controls ``image`` (select), ``method`` (select), ``gamma`` (range 0-1) and ``beta``
    (range 0-2). ``boxes``, ``images``: :func:`explorer_data`'s tables. ``width`` in CSS pixels;
    the height follows the first image's aspect ratio."""
    import altair as alt

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    labels = list(images["image"])
    aspect = float(images["height"].iloc[0]) / float(images["width"].iloc[0])
    height = round(width * aspect)
    max_rank = int(boxes.groupby("image").size().max())
    palette = _rank_palette(max_rank)

    p_image = alt.param(name="image", value=labels[0],
                        bind=alt.binding_select(options=labels, name="image "))
    p_method = alt.param(name="method", value=method,
                         bind=alt.binding_select(options=list(METHODS), labels=[_METHOD_LABELS[m] for m in METHODS],
                                                 name="method "))
    p_gamma = alt.param(name="gamma", value=float(gamma), bind=alt.binding_range(min=0, max=1, step=0.01,
                                                                                   name="gamma "))
    p_beta = alt.param(name="beta", value=float(beta), bind=alt.binding_range(min=0, max=2, step=0.01,
                                                                                name="beta "))

    ranked = (
        alt.Chart(alt.Data(values=boxes.to_dict("records")))
        .transform_filter("datum.image == image")
        # eq. 4 (the same rule as salrank.gt.ra_srgt_scores) or a baseline's embedded score
        .transform_calculate(score="method == 'ra-srgt' ? (datum.n > 0 ? datum.share + gamma * exp(beta * datum.size)"
                                   " : 0) : datum[method]")
        # eq. 5: descending score, ties to the lower box index; score <= 0 -> rank 0
        .transform_window(position="row_number()", sort=[alt.SortField("score", order="descending"),
                                                         alt.SortField("box", order="ascending")])
        .transform_calculate(rank="datum.score > 0 ? datum.position : 0")
        .transform_calculate(label="datum.rank > 0 ? '#' + datum.rank : '-'",
                             order_key="datum.rank > 0 ? datum.rank : 1000 + datum.box",
                             description="'box ' + datum.box + ': rank ' + datum.rank")
    )
    x = alt.X("u1:Q", scale=alt.Scale(domain=[0, 1], nice=False), axis=None)
    y = alt.Y("v1:Q", scale=alt.Scale(domain=[1, 0], nice=False), axis=None)
    rank_scale = alt.Scale(domain=list(range(max_rank + 1)), range=palette)
    color = alt.Color("rank:O", scale=rank_scale, legend=None)

    picture = (
        alt.Chart(alt.Data(values=images.to_dict("records")))
        .transform_filter("datum.image == image")
        .mark_image(aspect=False, aria=False)
        .encode(x=alt.X("x0:Q", scale=alt.Scale(domain=[0, 1], nice=False), axis=None),
                x2="x1:Q", y=alt.Y("y0:Q", scale=alt.Scale(domain=[1, 0], nice=False), axis=None), y2="y1:Q",
                url="url:N")
        .transform_calculate(x0="0", x1="1", y0="0", y1="1")
    )
    frames = ranked.mark_rect(filled=False, strokeWidth=2.5, aria=False).encode(
        x=x, x2="u2:Q", y=y, y2="v2:Q", stroke=alt.Stroke("rank:O", scale=rank_scale, legend=None),
        order=alt.Order("order_key:Q", sort="descending"),
        tooltip=["box:Q", "n:Q", "share:Q", "size:Q", "score:Q", "rank:Q"])
    label_style = {"align": "left", "baseline": "top", "dx": 4, "dy": 4, "fontSize": 15, "fontWeight": "bold"}
    halo = ranked.mark_text(**label_style, stroke="white", strokeWidth=4, strokeJoin="round", aria=False).encode(
        x=x, y=y, text="label:N", order=alt.Order("order_key:Q", sort="descending"))
    tags = ranked.mark_text(**label_style).encode(
        x=x, y=y, text="label:N", color=color, description="description:N",
        order=alt.Order("order_key:Q", sort="descending"))
    view = alt.layer(picture, frames, halo, tags).properties(width=width, height=height, name="boxes")

    columns = ["box", "n", "share", "size", "score", "rank"]
    headers = {"box": "box", "n": "N_i", "share": "N_i/N", "size": "sqrt(A_i/A)", "score": "score", "rank": "rank"}
    table = (
        ranked.transform_calculate(**{f"t_{c}": (f"format(datum.{c}, '.4f')" if c in ("share", "size", "score")
                                                 else f"'' + datum.{c}") for c in columns})
        .transform_fold([f"t_{c}" for c in columns], as_=["column", "value"])
        .transform_calculate(column="replace(datum.column, 't_', '')")
        .mark_text(align="right", fontSize=12)
        .encode(x=alt.X("column:N", sort=columns, title=None,
                        axis=alt.Axis(orient="top", labelAngle=0, labelFontWeight="bold",
                                      labelExpr=f"{json.dumps(headers)}[datum.value]", domain=False, ticks=False)),
                y=alt.Y("order_key:O", axis=None, sort="ascending"), text="value:N",
                color=alt.condition("datum.column == 'rank'", color, alt.value("black")))
        .properties(width=width, height=alt.Step(18), name="scores")
    )
    return (alt.vconcat(view, table).add_params(p_image, p_method, p_gamma, p_beta)
            .properties(title=alt.Title("RA-SRGT explorer", subtitle="S_i = N_i/N + gamma exp(beta sqrt(A_i/A)) "
                                        "if N_i > 0, else 0; rank 1 = highest, ties to the lower box index"))
            .configure_view(stroke=None))


def vega_bundle() -> str:
    """The Vega + Vega-Lite + vega-embed JavaScript (a classic script defining ``vegaEmbed``,
    ``vega`` and ``vegaLite`` on ``window``), bundled by ``vl-convert-python`` for the Vega-Lite
    version Altair writes. No network access. The bundle runs in a function scope: its top-level
    names (e.g. ``_``) would otherwise clash with a page's globals."""
    import altair as alt
    import vl_convert as vlc

    version = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0].replace(".", "_")
    return f"(function () {{\n{vlc.javascript_bundle(vl_version=version)}\n}}).call(window);\n"


def explorer_html(chart, *, inline: bool = False, element_id: str | None = None) -> str:
    """HTML for ``chart`` (an Altair chart) rendered with vega-embed as SVG, without any CDN.

    ``inline=False``: the page must load ``_static/`` :data:`VEGA_BUNDLE` (the book's extension
    does so on pages containing :data:`EXPLORER_CLASS`); the embed waits for it. ``inline=True``:
    the bundle is written into the HTML (about 0.9 MB), for a stand-alone file. The rendered
    container gets ``data-ready="1"`` and its vega ``View`` as ``.salrankView``."""
    element_id = element_id or f"salrank-explorer-{uuid.uuid4().hex[:8]}"
    spec = json.dumps(chart.to_dict(), separators=(",", ":")).replace("</", "<\\/")
    bundle = f"<script>{vega_bundle()}</script>\n" if inline else ""
    return f"""{bundle}<div id="{html.escape(element_id)}" class="{EXPLORER_CLASS}"></div>
<script>
(function () {{
  var el = document.getElementById({json.dumps(element_id)});
  var spec = {spec};
  var tries = 0;
  function embed() {{
    if (typeof window.vegaEmbed !== "function") {{
      if (++tries > 200) {{
        el.textContent = "The live explorer needs the book's {VEGA_BUNDLE} (build the book), "
          + "or use the widget explorer below in JupyterLab.";
        return;
      }}
      return setTimeout(embed, 50);
    }}
    window.vegaEmbed(el, spec, {{renderer: "svg", actions: false}}).then(function (result) {{
      el.salrankView = result.view;
      el.setAttribute("data-ready", "1");
    }});
  }}
  embed();
}})();
</script>"""
