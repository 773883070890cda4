"""salrank.viz: the GT explorer driven programmatically, the one ranked-box drawing (plots, the
gallery, the pipeline's saved overlay) on the shipped SALICON examples."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from salrank.data import Fixations
from salrank.data.scenes import SceneSet, open_dataset
from salrank.fosrnet.pipeline import RankedImage, draw_ranking
from salrank.gt import METHODS, count_points_in_boxes_loop, gamma_sensitivity, rank_objects
from salrank.viz.plots import draw_boxes, draw_ranked_boxes, rank_colors, rank_labels
from salrank.viz.widgets import GTExplorer, gt_explorer, ranked_gallery

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


def _busiest(examples):
    """The example with the most boxes, its RGB array, its boxes plus a 3 x 3 px box where no
    fixation falls (so one box has rank 0), and their RA-SRGT ranks (gamma 0.2)."""
    stem = max(examples.stems, key=lambda s: len(examples.boxes_of(s)))
    fx = examples.fixations[stem]
    hit = np.zeros((fx.height, fx.width), dtype=bool)
    hit[fx.points[:, 1].astype(int), fx.points[:, 0].astype(int)] = True
    y, x = next((y, x) for y in range(0, fx.height - 3, 3) for x in range(0, fx.width - 3, 3)
                if not hit[y:y + 3, x:x + 3].any())
    boxes = np.vstack([examples.boxes_of(stem), [[x, y, x + 3, y + 3]]]).astype(np.float64)
    _, ranks = rank_objects(fx.points, boxes, (fx.height, fx.width), "ra-srgt", 0.2, 0.5)
    return stem, np.asarray(examples.image(stem)), boxes, ranks


def test_draw_ranked_boxes_labels_colours_and_order(examples):
    stem, image, boxes, ranks = _busiest(examples)
    assert len(boxes) >= 3 and 0 in ranks and 1 in ranks  # a real image with a rank-0 box
    ax = Figure().add_subplot()
    draw_ranked_boxes(ax, image, boxes, ranks)
    # drawn from rank 0 up to the most salient, which ends on top
    order = sorted(range(len(ranks)), key=lambda i: (ranks[i] != 0, -ranks[i]))
    assert [t.get_text() for t in ax.texts] == [rank_labels(ranks)[i] for i in order]
    assert ax.texts[-1].get_text() == "#1" and ax.texts[0].get_text() == "-"
    colours = rank_colors(ranks)
    assert [tuple(p.get_edgecolor()) for p in ax.patches] == [tuple(colours[i]) for i in order]
    assert tuple(ax.patches[0].get_edgecolor()) == (0.55, 0.55, 0.55, 1.0)  # rank 0 is grey
    np.testing.assert_allclose([p.get_xy() for p in ax.patches], boxes[order][:, :2])
    np.testing.assert_allclose([p.get_width() for p in ax.patches], (boxes[order, 2] - boxes[order, 0]))
    assert len(ax.images) == 1
    np.testing.assert_array_equal(ax.images[0].get_array(), image)
    # the label's tag has the box's colour; scores are appended to the rank
    assert ax.texts[-1].get_bbox_patch().get_facecolor()[:3] == pytest.approx(colours[order[-1]][:3])
    over_map = Figure().add_subplot()
    draw_ranked_boxes(over_map, None, boxes, ranks, scores=np.linspace(0, 1, len(ranks)))
    assert not over_map.images and over_map.texts[-1].get_text().startswith("#1 ")
    with pytest.raises(ValueError, match=f"ranks has 2 values for {len(boxes)} boxes"):
        draw_ranked_boxes(ax, image, boxes, [1, 2])


def test_draw_boxes_plain_and_bad_inputs(examples):
    stem, image, boxes, _ = _busiest(examples)
    ax = Figure().add_subplot()
    draw_boxes(ax, boxes, labels=[""] + ["x"] * (len(boxes) - 1))
    assert len(ax.patches) == len(boxes) and [t.get_text() for t in ax.texts] == ["x"] * (len(boxes) - 1)
    assert {p.get_edgecolor() for p in ax.patches} == {(1.0, 1.0, 0.0, 1.0)}  # default yellow
    with pytest.raises(ValueError, match="labels has 1 entries"):
        draw_boxes(ax, boxes, labels=["a"])
    with pytest.raises(ValueError, match="colors has 1 entries"):
        draw_boxes(ax, boxes, colors=["red"])


def test_draw_ranking_saves_the_image_with_the_same_boxes(examples, tmp_path):
    from PIL import Image

    stem, image, boxes, ranks = _busiest(examples)
    h, w = image.shape[:2]
    result = RankedImage(stem, (h, w), boxes.astype(np.float64), np.zeros(len(boxes)), ranks.astype(np.int64))
    out = draw_ranking(examples.images[stem], result, tmp_path / "sub" / "overlay.png")
    assert out == tmp_path / "sub" / "overlay.png" and not list(out.parent.glob(".*tmp"))
    saved = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert saved.shape == (h, w, 3)  # one output pixel per image pixel
    # far from every box the overlay is the image itself
    far = np.ones((h, w), dtype=bool)
    for x1, y1, x2, y2 in boxes.astype(int):
        far[max(y1 - 6, 0):y2 + 6, max(x1 - 6, 0):x2 + 6] = False
    assert far.sum() > 1000
    assert np.abs(saved[far] - image[far].astype(int)).mean() < 8
    # the most salient box's bottom edge is drawn in rank 1's colour (it is drawn on top)
    x1, y1, x2, y2 = boxes[list(ranks).index(1)]
    edge = saved[min(int(round(y2)), h - 2), int((x1 + x2) / 2)]
    expected = np.array(rank_colors(ranks)[list(ranks).index(1)][:3]) * 255
    assert np.abs(edge - expected).max() < 40, (edge, expected)


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
