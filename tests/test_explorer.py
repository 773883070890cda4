"""The kernel-free GT explorer (salrank.viz.explorer): its embedded per-box data reproduce
rank_objects at any gamma/beta, and its Vega-Lite spec encodes the same rule. The browser side is
checked in tests/test_book_browser.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salrank.data.scenes import SceneSet, open_dataset
from salrank.gt import METHODS, rank_objects
from salrank.viz.explorer import (
    BASELINES,
    EXPLORER_CLASS,
    VEGA_BUNDLE,
    explorer_chart,
    explorer_data,
    explorer_html,
    ranks_like_browser,
)


@pytest.fixture(scope="module")
def examples() -> SceneSet:
    return open_dataset("salicon-examples", "all")


@pytest.fixture(scope="module")
def tables(examples):
    return explorer_data([examples], max_images=None, image_width=64)


def _stem(label: str) -> str:
    return label.split(": ", 1)[1]


def test_data_columns_and_values(examples, tables):
    boxes, images = tables
    assert len(images) == len(examples.stems) == 10
    assert {"image", "box", "n", "n_image", "share", "size", *BASELINES} <= set(boxes.columns)
    for label, rows in boxes.groupby("image"):
        fx = examples.fixations[_stem(label)]
        raw = examples.boxes_of(_stem(label))
        assert list(rows["box"]) == list(range(len(raw)))
        # N_i / N and sqrt(A_i / A) by hand, for the first box
        x1, y1, x2, y2 = np.clip(raw[0], 0, [fx.width, fx.height, fx.width, fx.height])
        inside = ((fx.points[:, 0] >= x1) & (fx.points[:, 0] < x2) & (fx.points[:, 1] >= y1) & (fx.points[:, 1] < y2))
        assert rows["n"].iloc[0] == inside.sum()
        assert rows["share"].iloc[0] == pytest.approx(inside.sum() / rows["n_image"].iloc[0])
        assert rows["size"].iloc[0] == pytest.approx(np.sqrt((x2 - x1) * (y2 - y1) / (fx.width * fx.height)))
        assert rows["u2"].iloc[0] == pytest.approx(x2 / fx.width)
    assert images["url"].str.startswith("data:image/jpeg;base64,").all()
    assert (images[["width", "height"]].to_numpy() == [640, 480]).all()


@settings(max_examples=25, deadline=None)
@given(gamma=st.floats(0, 1), beta=st.floats(0, 2), method=st.sampled_from(METHODS))
def test_embedded_rule_equals_rank_objects(examples, tables, gamma, beta, method):
    boxes, images = tables
    for label in images["image"]:
        fx = examples.fixations[_stem(label)]
        _, expected = rank_objects(fx.points, examples.boxes_of(_stem(label)), (fx.height, fx.width), method,
                                   gamma, beta)
        np.testing.assert_array_equal(ranks_like_browser(boxes, label, method, gamma, beta), expected)


def test_gamma_changes_some_ranking(examples, tables):
    """The explorer is worth having: on the real examples, gamma reorders boxes somewhere."""
    boxes, images = tables
    changed = [label for label in images["image"]
               if not np.array_equal(ranks_like_browser(boxes, label, gamma=0.0),
                                     ranks_like_browser(boxes, label, gamma=1.0))]
    assert changed


def test_hand_computed_tie_and_zero():
    boxes = pd.DataFrame({"image": ["a"] * 3, "box": [0, 1, 2], "n": [5, 5, 0], "share": [0.5, 0.5, 0.0],
                          "size": [0.3, 0.3, 0.9], **{m: [0.0, 1.0, 1.0] for m in BASELINES}})
    # equal scores: the lower index first; no fixation: rank 0 whatever its size
    assert ranks_like_browser(boxes, "a", gamma=0.7, beta=1.0).tolist() == [1, 2, 0]
    assert ranks_like_browser(boxes, "a", "points").tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown method"):
        ranks_like_browser(boxes, "a", "nope")


def test_chart_spec_embeds_rule_and_controls(tables):
    boxes, images = tables
    spec = explorer_chart(boxes, images, gamma=0.3, beta=0.7).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["gamma"]["value"] == 0.3 and params["gamma"]["bind"]["max"] == 1
    assert params["beta"]["value"] == 0.7 and params["beta"]["bind"]["max"] == 2
    assert params["method"]["bind"]["options"] == list(METHODS)
    assert params["image"]["bind"]["options"] == list(images["image"])
    text = json.dumps(spec)
    assert "exp(beta * datum.size)" in text and "row_number" in text
    with pytest.raises(ValueError, match="unknown method"):
        explorer_chart(boxes, images, method="nope")
    with pytest.raises(ValueError, match="no image"):
        explorer_data([], max_images=1)


def test_html_has_no_network_resources(tables):
    boxes, images = tables
    html = explorer_html(explorer_chart(boxes.head(8), images.head(2)), element_id="x1")
    assert f'class="{EXPLORER_CLASS}"' in html and 'id="x1"' in html
    # the only URL is the spec's $schema, an identifier vega-embed does not fetch
    without_schema = html.replace('"$schema":"https://vega.github.io/schema/vega-lite/', "")
    assert "https://" not in without_schema and "http://" not in without_schema and "<script src" not in html
    assert VEGA_BUNDLE in html  # the message shown when the bundle is missing


def test_vega_bundle_is_scoped_and_offline():
    from salrank.viz.explorer import vega_bundle

    bundle = vega_bundle()
    # a function scope (its top-level names must not clash with the page's), publishing vegaEmbed
    assert bundle.startswith("(function () {") and bundle.rstrip().endswith("}).call(window);")
    assert "window.vegaEmbed=" in bundle.replace(" ", "") and len(bundle) > 100_000
