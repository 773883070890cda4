"""salrank.viz.widgets: the GT explorer driven programmatically, ranked drawings and the gallery."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from salrank.data import Fixations
from salrank.data.scenes import SceneSet, open_dataset
from salrank.gt import METHODS, count_points_in_boxes_loop, gamma_sensitivity, rank_objects
from salrank.viz.plots import rank_colors
from salrank.viz.widgets import GTExplorer, draw_ranked_boxes, gt_explorer, rank_labels, ranked_gallery

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def examples() -> SceneSet:
    return open_dataset("salicon-examples", "all")


@pytest.fixture(scope="module")
def explorer(examples) -> GTExplorer:
    return gt_explorer([examples])


def _expected(scene_set, stem, method, gamma, beta):
    fx = scene_set.fixations[stem]
    return rank_objects(fx.points, scene_set.boxes[stem], (fx.height, fx.width), method, gamma, beta)


def _assert_table_matches(explorer: GTExplorer):
    scene_set, stem = explorer.current
    scores, ranks = _expected(scene_set, stem, explorer.method.value, explorer.gamma.value, explorer.beta.value)
    np.testing.assert_allclose(explorer.table["score"], scores, rtol=1e-12)
    np.testing.assert_array_equal(explorer.table["rank"], ranks)
    np.testing.assert_array_equal(explorer.ranks, ranks)
    np.testing.assert_allclose(explorer.scores, scores, rtol=1e-12)


# --------------------------------------------------------------------------- the explorer

def test_explorer_controls_and_defaults(explorer, examples):
    assert explorer.gamma.value == pytest.approx(0.2) and explorer.beta.value == pytest.approx(0.5)
    assert (explorer.gamma.min, explorer.gamma.max, explorer.gamma.step) == (0.0, 1.0, 0.05)
    assert (explorer.beta.min, explorer.beta.max, explorer.beta.step) == (0.0, 2.0, 0.05)
    assert [value for _, value in explorer.method.options] == list(METHODS)
    assert explorer.method.value == "ra-srgt"
    assert [stem for _, (_, stem) in explorer.image.options] == examples.stems
    _assert_table_matches(explorer)
    assert bytes(explorer.picture.value).startswith(PNG_MAGIC)
    # the HTML table has one row per box and the brief's columns
    html = explorer.table_html.value
    assert html.count("<tr") == len(explorer.table) + 1  # header + one row per box
    for column in ("box", "fixations inside", "score", "rank"):
        assert f"<th>{column}</th>" in html


def test_explorer_gamma_slider_updates_ranks(explorer, examples):
    # the example whose RA-SRGT ranks change most with gamma, so the update is visible
    stem = gamma_sensitivity(examples, gammas=(0.2, 0.8))["image"].iloc[0]
    explorer.method.value = "ra-srgt"
    explorer.beta.value = 0.5
    explorer.gamma.value = 0.2
    explorer.image.value = (0, stem)
    before_ranks, before_png = explorer.ranks.copy(), explorer.figure_png
    explorer.gamma.value = 0.8
    _assert_table_matches(explorer)
    assert not np.array_equal(explorer.ranks, before_ranks)
    assert explorer.figure_png != before_png
    explorer.gamma.value = 0.2
    np.testing.assert_array_equal(explorer.ranks, before_ranks)


def test_explorer_beta_method_and_image_changes(explorer, examples):
    explorer.gamma.value = 0.35
    explorer.beta.value = 1.75
    _assert_table_matches(explorer)
    for method in METHODS:
        explorer.method.value = method
        _assert_table_matches(explorer)
        # gamma and beta only act on RA-SRGT
        assert explorer.gamma.disabled == explorer.beta.disabled == (method != "ra-srgt")
    for stem in examples.stems[:3]:
        explorer.image.value = (0, stem)
        _assert_table_matches(explorer)
        fx = examples.fixations[stem]
        np.testing.assert_array_equal(explorer.table["n_fixations"],
                                      count_points_in_boxes_loop(fx.points, examples.boxes[stem]))
        assert bytes(explorer.picture.value) == explorer.figure_png
    explorer.method.value = "ra-srgt"
    assert "0.35" in explorer.formula.value and "1.75" in explorer.formula.value


def _toy_set(name: str, salience: bool) -> SceneSet:
    rng = np.random.default_rng(1)
    fx = Fixations(points=rng.uniform(0, 40, size=(50, 2)), observer=np.zeros(50, dtype=np.int64), height=40,
                   width=60)
    boxes = {"s0": np.array([[0, 0, 30, 20], [20, 10, 60, 40]], dtype=float), "s1": np.zeros((0, 4))}
    return SceneSet(name, "x", {"s0": fx, "s1": fx}, {}, boxes,
                    {"s0": np.array([0.3, 0.6]), "s1": np.zeros(0)} if salience else None)


def test_explorer_several_sets_and_salience(examples, monkeypatch):
    toy = _toy_set("toy", salience=True)
    monkeypatch.setattr(SceneSet, "image", lambda self, stem: np.zeros((40, 60, 3), dtype=np.uint8))
    explorer = gt_explorer([toy, examples.subset(examples.stems[:2])])
    values = [value for _, value in explorer.image.options]
    assert values == [(0, "s0"), (1, examples.stems[0]), (1, examples.stems[1])]  # s1 has no boxes
    assert explorer.table["salience"].tolist() == [0.3, 0.6]
    assert "<th>salience</th>" in explorer.table_html.value
    explorer.image.value = (1, examples.stems[1])
    _assert_table_matches(explorer)
    assert "salience" not in explorer.table.columns


def test_explorer_dataset_names_and_bad_inputs(examples):
    by_name = gt_explorer(["salicon-examples"], method="points", gamma=0.5, beta=1.0)
    assert by_name.method.value == "points" and by_name.gamma.value == pytest.approx(0.5)
    _assert_table_matches(by_name)
    with pytest.raises(ValueError, match="no image with object boxes"):
        gt_explorer([])
    with pytest.raises(ValueError, match="no image with object boxes"):
        gt_explorer([SceneSet("bare", "x", dict(examples.fixations), {}, {}, None)])
    with pytest.raises(ValueError, match="unknown method"):
        gt_explorer([examples], method="nope")


# --------------------------------------------------------------------------- static drawings

def test_rank_labels():
    assert rank_labels([2, 1, 0, 3]) == ["#2", "#1", "-", "#3"]
    assert rank_labels([1, 0], scores=[0.534, 0.0]) == ["#1 0.53", "- 0.00"]
    with pytest.raises(ValueError, match="scores has 1 values for 2 ranks"):
        rank_labels([1, 2], scores=[0.1])


def test_draw_ranked_boxes_labels_colours_and_order():
    fig = Figure()
    ax = fig.add_subplot()
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 3, 3]], dtype=float)
    ranks = np.array([2, 1, 0])
    draw_ranked_boxes(ax, np.zeros((30, 40, 3), dtype=np.uint8), boxes, ranks)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["-", "#2", "#1"]  # drawn from rank 0 up to the most salient, which ends on top
    edges = [tuple(p.get_edgecolor()) for p in ax.patches]
    colours = rank_colors(ranks)
    assert edges == [tuple(colours[2]), tuple(colours[0]), tuple(colours[1])]
    assert edges[0] == (0.55, 0.55, 0.55, 1.0)  # rank 0 is grey
    xy = [p.get_xy() for p in ax.patches]
    assert xy == [(1.0, 1.0), (0.0, 0.0), (5.0, 5.0)]
    assert len(ax.images) == 1
    with pytest.raises(ValueError, match="ranks has 2 values for 3 boxes"):
        draw_ranked_boxes(ax, np.zeros((30, 40)), boxes, [1, 2])


def test_ranked_gallery_axes_and_ranks(examples):
    stems = examples.stems[:2]
    fig = ranked_gallery(examples, stems, gammas=(0.1, 0.8), beta=0.5)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["gamma = 0.1", "gamma = 0.8"] * 2
    # each panel shows the ranks rank_objects gives at its gamma
    for ax, (stem, gamma) in zip(fig.axes, [(s, g) for s in stems for g in (0.1, 0.8)], strict=True):
        _, ranks = _expected(examples, stem, "ra-srgt", gamma, 0.5)
        assert sorted(t.get_text() for t in ax.texts if t.get_text() != stem) == sorted(rank_labels(ranks))
    default = ranked_gallery(examples, stems[:1])
    assert len(default.axes) == 4  # gamma = 0.1, 0.2, 0.5, 0.8
    with pytest.raises(KeyError, match="no image"):
        ranked_gallery(examples, ["missing"])
    with pytest.raises(ValueError, match="at least one"):
        ranked_gallery(examples, [])
    with pytest.raises(ValueError, match="unknown method"):
        ranked_gallery(examples, stems, method="nope")
