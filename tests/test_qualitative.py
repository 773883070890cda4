"""Per-image result views (Fig. 10 / Fig. 14): the per-image table, failure types, selection, panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salrank.analysis.qualitative import (
    FAILURE_TYPES,
    ImageRanking,
    describe_failures,
    failure_flags,
    failure_summary,
    image_table,
    prediction_panels,
    reference_objects,
    select_images,
)
from salrank.data import Fixations
from salrank.fosrnet.evaluate import gt_values, pred_values
from salrank.metrics.ranking import evaluate

SIZE = (100, 200)  # height, width


def _ranking(stem, boxes, pred, scores):
    from salrank.gt import ranks_from_scores

    scores = np.asarray(scores, float)
    return ImageRanking(stem, np.asarray(boxes, float), pred, scores, ranks_from_scores(scores), SIZE)


BOXES = [[0, 0, 20, 10], [50, 50, 100, 100], [120, 10, 200, 90]]


def test_image_ranking_validates():
    with pytest.raises(ValueError, match="pred_ranks has 2 values for 3 boxes"):
        ImageRanking("a", BOXES, [1, 2], [1, 2, 3], [3, 2, 1], SIZE)
    with pytest.raises(ValueError, match="image_size"):
        ImageRanking("a", BOXES, [1, 2, 3], [1, 2, 3], [3, 2, 1], (0, 10))


def test_image_table_hand_computed():
    perfect = _ranking("perfect", BOXES, [3, 2, 1], [0.1, 0.3, 0.6])  # GT order: 2 > 1 > 0
    reversed_ = _ranking("reversed", BOXES, [1, 2, 3], [0.1, 0.3, 0.6])
    table = image_table([perfect, reversed_])
    assert list(table.index) == ["perfect", "reversed"]
    assert table.loc["perfect", "srcc"] == pytest.approx(1.0)
    assert table.loc["reversed", "srcc"] == pytest.approx(-1.0)
    assert table.loc["perfect", "acc_top1"] == 1.0 and table.loc["reversed", "acc_top1"] == 0.0
    assert table.loc["perfect", "n_proposals"] == 3 and table.loc["perfect", "n_salient"] == 3
    assert table.loc["perfect", "smallest_area"] == pytest.approx(200 / 20000)
    assert table.loc["perfect", "top_gt_area"] == pytest.approx(80 * 80 / 20000)
    assert table.loc["perfect", "top_gap"] == pytest.approx((0.6 - 0.3) / 0.6)
    one = image_table([_ranking("one", BOXES, [1, 2, 3], [0.0, 0.0, 0.5])])
    assert np.isnan(one.loc["one", "top_gap"]) and one.loc["one", "n_salient"] == 1


def test_image_table_reference_descriptors():
    # reference objects: A (salient), B (salient, missed by the detector), C (no fixation)
    ref = {"x": np.array([[0, 0, 20, 10], [60, 60, 90, 90], [120, 10, 200, 90]], float)}
    ref_ranks = {"x": np.array([1, 2, 0])}
    proposals = [[0, 0, 20, 10], [150, 0, 160, 5], [120, 10, 200, 90]]  # A, a false positive, C
    r = _ranking("x", proposals, [2, 1, 3], [0.5, 0.2, 0.0])  # the false positive predicted first
    row = image_table([r], ref, ref_ranks).loc["x"]
    assert row["n_reference"] == 3 and row["n_missed"] == 1 and row["n_false_positive"] == 1
    assert row["n_missed_salient"] == 1 and row["pred_top_is_false_positive"]
    r2 = _ranking("x", proposals, [1, 2, 3], [0.5, 0.2, 0.0])
    assert not image_table([r2], ref).loc["x", "pred_top_is_false_positive"]
    with pytest.raises(KeyError, match="no reference boxes"):
        image_table([r], {})
    with pytest.raises(ValueError, match="duplicate"):
        image_table([r, r2])
    with pytest.raises(ValueError, match="reference ranks"):
        image_table([r], ref, {"x": np.array([1, 2])})


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(2, 7), min_size=1, max_size=6), st.integers(0, 2**31 - 1))
def test_image_table_means_match_dataset_metrics(sizes, seed):
    rng = np.random.default_rng(seed)
    rankings = []
    for i, n in enumerate(sizes):
        xy = rng.uniform(0, 80, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 20, (n, 2))], axis=1)
        scores = np.where(rng.random(n) < 0.3, 0.0, rng.random(n))
        rankings.append(_ranking(f"s{i}", boxes, rng.permutation(n) + 1, scores))
    table = image_table(rankings)
    whole = evaluate([pred_values(r.pred_ranks) for r in rankings], [gt_values(r.gt_scores) for r in rankings])
    used = table.loc[~table["constant_gt"], "srcc"]
    if len(used):
        assert used.fillna(0).mean() == pytest.approx(whole["srcc"])
    assert table["f1"].mean() == pytest.approx(whole["f1"])


def _table(srcc, **cols):
    n = len(srcc)
    base = {"srcc": srcc, "top_gap": [0.5] * n, "smallest_area": [0.05] * n, "n_proposals": [5] * n}
    base.update(cols)
    return pd.DataFrame(base, index=[f"s{i}" for i in range(n)])


def test_failure_flags_rules():
    t = _table([0.1, 0.2, 0.3], top_gap=[0.05, np.nan, 0.2], smallest_area=[0.001, 0.05, 0.02],
               n_proposals=[10, 8, 7], n_missed_salient=[0, 2, 0], pred_top_is_false_positive=[True, False, False])
    f = failure_flags(t)
    assert list(f.columns) == list(FAILURE_TYPES)
    assert f["near-tied GT"].tolist() == [True, False, False]
    assert f["small objects"].tolist() == [True, False, False]
    assert f["many proposals"].tolist() == [True, True, False]
    assert f["missed salient object"].tolist() == [False, True, False]
    assert f["false positive ranked first"].tolist() == [True, False, False]
    assert failure_flags(t, small_area=0.03, many=10)["small objects"].tolist() == [True, False, True]
    assert "missed salient object" not in failure_flags(_table([0.1]))


def test_select_images():
    t = _table([0.5, np.nan, -0.2, 0.9, 0.1, 0.3])
    assert select_images(t, 2, "worst") == ["s2", "s4"]
    assert select_images(t, 2, "best") == ["s3", "s0"]
    assert select_images(t, 3, "spread") == ["s3", "s5", "s2"]  # best, middle, worst of the 5 defined
    assert select_images(t, 10, "spread") == ["s3", "s0", "s5", "s4", "s2"]
    with pytest.raises(ValueError, match="which"):
        select_images(t, 2, "median")
    with pytest.raises(ValueError, match="n must be"):
        select_images(t, 0)
    with pytest.raises(KeyError, match="no column"):
        select_images(t, 1, metric="plcc")


def test_failure_summary_hand_computed():
    # the 2 worst images have many proposals, 1 of the other 3 does
    t = _table([-0.5, 0.0, 0.6, 0.8, 0.9, np.nan], n_proposals=[9, 9, 9, 3, 3, 9])
    s = failure_summary(t, n_worst=2)
    row = s.loc["many proposals"]
    assert row["worst"] == 1.0
    assert row["all"] == pytest.approx(3 / 5)  # the NaN image is left out
    assert row["lift"] == pytest.approx(5 / 3)
    assert row["srcc with"] == pytest.approx((-0.5 + 0.0 + 0.6) / 3)
    assert row["srcc without"] == pytest.approx(0.85)
    assert row["images with"] == 3
    assert np.isnan(s.loc["small objects", "lift"])  # never occurs
    assert s.loc["many proposals", "rule"] == FAILURE_TYPES["many proposals"]


def test_prediction_panels_draws_gt_and_predicted_ranks():
    r1 = _ranking("a", BOXES, [3, 1, 2], [0.0, 0.3, 0.6])
    r2 = _ranking("b", BOXES, [1, 2, 3], [0.1, 0.3, 0.6])
    image = np.zeros((*SIZE, 3), np.uint8)
    fx = {"a": Fixations(np.array([[10.0, 5.0]]), np.zeros(1, np.int64), *SIZE)}
    fig = prediction_panels([r1, r2], lambda stem: image, row_labels=["a: SRCC 0.5", "b"], fixations=fx)
    assert len(fig.axes) == 6
    texts = lambda ax: sorted(t.get_text() for t in ax.texts if t.get_text().startswith(("#", "-")))  # noqa: E731
    assert texts(fig.axes[1]) == ["#1", "#2", "-"]  # GT of a: box 0 has no fixation
    assert texts(fig.axes[2]) == ["#1", "#2", "#3"]
    assert [t.get_text() for t in fig.axes[0].texts] == ["a: SRCC 0.5"]
    assert len(fig.axes[1].collections) == 1  # the fixation points
    assert len(prediction_panels([r1], lambda s: image, show_image=False).axes) == 2
    with pytest.raises(ValueError, match="row labels"):
        prediction_panels([r1], lambda s: image, row_labels=["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        prediction_panels([], lambda s: image)


def test_prediction_panels_fit_long_row_labels():
    """A full-profile label (a COCO stem and a long failure list) is wrapped to its row's height,
    so the constrained layout keeps every panel (it warns and collapses otherwise)."""
    import io
    import warnings

    r = _ranking("COCO_val2014_000000123456", BOXES, [3, 1, 2], [0.0, 0.3, 0.6])
    label = ("COCO_val2014_000000123456\nSRCC -0.50, 10 proposals, 2 missed, 3 FP\n"
             "small objects; many proposals; near-tied GT; crowded scene")
    fig = prediction_panels([r], lambda stem: np.zeros((*SIZE, 3), np.uint8), row_labels=[label], panel_width=3.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.savefig(io.BytesIO(), format="png")
    shown = fig.axes[0].texts[0].get_text()
    assert "".join(shown.split()) == "".join(label.split())  # wrapped, nothing lost
    row_points = 3.4 * SIZE[0] / SIZE[1] * 72
    assert max(len(line) for line in shown.split("\n")) * 0.62 * 8 <= row_points
    assert all(ax.get_position().height > 0.05 for ax in fig.axes)


def test_describe_failures():
    t = _table([-0.5, 0.0, 0.6, 0.8, 0.9], n_proposals=[9, 9, 9, 3, 3])
    text = describe_failures(failure_summary(t, n_worst=2), 2)
    assert text.splitlines()[0] == "Among the 2 worst images (by per-image SRCC):"
    assert "**many proposals**: 100% of them, 60% of all images (x1.7)" in text
    assert "small objects" not in text
    flat = _table([-0.5, 0.0, 0.6])
    assert describe_failures(failure_summary(flat, n_worst=1), 1).startswith("No failure type")


def test_reference_objects():
    from salrank.data.scenes import SceneSet
    from salrank.gt import rank_objects

    pts = np.array([[5.0, 5.0], [6.0, 6.0], [60.0, 60.0]])
    fx = Fixations(pts, np.zeros(3, np.int64), *SIZE)
    boxes = np.array([[0, 0, 10, 10], [50, 50, 70, 70], [100, 0, 120, 20]], float)
    ss = SceneSet("t", "test", {"a": fx}, {}, {"a": boxes})
    got = reference_objects(ss, ["a"], gamma=0.2, beta=0.5)
    assert got is not None
    np.testing.assert_array_equal(got[0]["a"], boxes)
    np.testing.assert_array_equal(got[1]["a"], rank_objects(pts, boxes, SIZE, gamma=0.2, beta=0.5)[1])
    assert got[1]["a"][2] == 0 and got[1]["a"][0] == 1  # two points in box 0, none in box 2
    assert reference_objects(SceneSet("t", "test", {"a": fx}, {}), ["a"]) is None
