"""salrank.gt.sweeps: per-image tables, method comparisons, agreement and offset sweeps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salrank.data import Fixations
from salrank.data.scenes import SceneSet
from salrank.gt import (
    METHODS,
    SALIENCE,
    agreement_summary,
    count_points_in_boxes_loop,
    discrepancy_offsets,
    gamma_sensitivity,
    image_rank_table,
    method_rankings,
    offset_range_summary,
    offset_sweeps,
    rank_agreement,
    rank_objects,
    salience_order,
    scenes_with_boxes,
)

# 10 x 10 image, five points, four boxes (as in test_gt.py).
POINTS = np.array([[1, 1], [2, 2], [8, 8], [5, 5], [9.5, 0.5]])
BOXES = np.array([
    [0, 0, 5, 5],  # (1,1), (2,2) -> N=2, area 25
    [5, 5, 10, 10],  # (8,8), (5,5) -> N=2, area 25
    [0, 0, 10, 10],  # all five -> N=5, area 100
    [6, 0, 8, 2],  # nothing -> 0
], dtype=float)


def _fx(points, height=10, width=10) -> Fixations:
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    return Fixations(points=points, observer=np.zeros(len(points), dtype=np.int64), height=height, width=width)


def _scene_set(with_salience: bool = True) -> SceneSet:
    rng = np.random.default_rng(3)
    fixations = {"a": _fx(POINTS), "b": _fx(rng.uniform(0, 30, size=(60, 2)), 30, 40), "empty": _fx(POINTS)}
    boxes = {
        "a": BOXES,
        "b": np.array([[0, 0, 20, 15], [10, 5, 35, 30], [2, 20, 8, 28]], dtype=float),
        "empty": np.zeros((0, 4)),
    }
    salience = {"a": np.array([0.9, 0.5, 0.7, 0.1]), "b": np.array([0.2, 0.8, 0.4]), "empty": np.zeros(0)}
    return SceneSet(name="toy", split="all", fixations=fixations, images={}, boxes=boxes,
                    salience=salience if with_salience else None)


# --------------------------------------------------------------------------- image_rank_table

def test_image_rank_table_hand_computed():
    table = image_rank_table(POINTS, BOXES, (10, 10), "ra-srgt", gamma=0.2, beta=0.5)
    assert list(table.columns) == ["box", "x1", "y1", "x2", "y2", "n_fixations", "score", "rank"]
    assert table["n_fixations"].tolist() == [2, 2, 5, 0]
    # S = N_i / N + 0.2 * exp(0.5 * sqrt(A_i / A)); N = 5 points inside the image
    expected = [2 / 5 + 0.2 * math.exp(0.25), 2 / 5 + 0.2 * math.exp(0.25), 1 + 0.2 * math.exp(0.5), 0.0]
    np.testing.assert_allclose(table["score"], expected)
    assert table["rank"].tolist() == [2, 3, 1, 0]  # the tie of boxes 0 and 1 goes to the lower index


@pytest.mark.parametrize("method", METHODS)
def test_image_rank_table_equals_rank_objects(method):
    table = image_rank_table(POINTS, BOXES, (10, 10), method, gamma=0.7, beta=1.3, salience=[1, 2, 3, 4])
    scores, ranks = rank_objects(POINTS, BOXES, (10, 10), method, gamma=0.7, beta=1.3)
    np.testing.assert_array_equal(table["score"], scores)
    np.testing.assert_array_equal(table["rank"], ranks)
    assert table["salience"].tolist() == [1, 2, 3, 4]


def test_image_rank_table_clips_boxes_and_checks_salience():
    table = image_rank_table(POINTS, [[-5, -5, 20, 3]], (10, 10))
    assert table[["x1", "y1", "x2", "y2"]].to_numpy().tolist() == [[0, 0, 10, 3]]
    assert table["n_fixations"].tolist() == [3]  # (1,1), (2,2), (9.5,0.5)
    with pytest.raises(ValueError, match="salience has 2 values for 4 boxes"):
        image_rank_table(POINTS, BOXES, (10, 10), salience=[0.1, 0.2])
    with pytest.raises(ValueError, match="unknown method"):
        image_rank_table(POINTS, BOXES, (10, 10), "nope")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 12), st.floats(-2, 12)), max_size=30),
       st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10), st.floats(0, 10), st.floats(0, 10)),
                min_size=1, max_size=6))
def test_image_rank_table_counts_match_loop(points, corners):
    boxes = np.array([[min(a, c), min(b, d), max(a, c), max(b, d)] for a, b, c, d in corners])
    points = np.array(points, dtype=float).reshape(-1, 2)
    table = image_rank_table(points, boxes, (10, 10))
    np.testing.assert_array_equal(table["n_fixations"], count_points_in_boxes_loop(points, boxes))


# --------------------------------------------------------------------------- method_rankings

def test_method_rankings_equals_rank_objects_per_image():
    ss = _scene_set()
    table = method_rankings(ss, gamma=0.5, beta=0.9)
    assert set(table["image"]) == {"a", "b"}  # "empty" has no boxes
    assert set(table["method"]) == set(METHODS)
    assert (table["dataset"] == "toy/all").all()
    for (image, method), group in table.groupby(["image", "method"]):
        fx = ss.fixations[image]
        scores, ranks = rank_objects(fx.points, ss.boxes[image], (fx.height, fx.width), method, 0.5, 0.9)
        np.testing.assert_allclose(group["score"], scores, rtol=1e-12)
        np.testing.assert_array_equal(group["rank"], ranks)
        np.testing.assert_array_equal(group["salience"], ss.salience[image])


def test_method_rankings_subset_and_no_salience():
    table = method_rankings(_scene_set(with_salience=False), methods=["points"], stems=["b"])
    assert table["image"].unique().tolist() == ["b"]
    assert table["method"].unique().tolist() == ["points"]
    assert table["salience"].isna().all()
    with pytest.raises(ValueError, match="unknown method"):
        method_rankings(_scene_set(), methods=["ra-srgt", "bogus"])
    empty = method_rankings(_scene_set(), stems=["empty"])
    assert empty.empty and "rank" in empty.columns


# --------------------------------------------------------------------------- agreement

def test_salience_order_puts_rank_zero_last_and_tied():
    np.testing.assert_array_equal(salience_order([2, 1, 0, 3, 0]), [-2, -1, -6, -3, -6])


def _rankings(rows):
    """rows: (image, method, ranks, salience) -> a method_rankings-like table."""
    frames = []
    for image, method, ranks, salience in rows:
        frames.append(pd.DataFrame({"dataset": "d", "image": image, "method": method, "box": range(len(ranks)),
                                    "rank": ranks, "salience": salience}))
    return pd.concat(frames, ignore_index=True)


def test_rank_agreement_hand_computed():
    sal = [0.9, 0.5, 0.1]
    rankings = _rankings([
        ("i1", "ra-srgt", [1, 2, 3], sal),
        ("i1", "points", [3, 2, 1], sal),  # reversed -> -1
        ("i2", "ra-srgt", [2, 1, 0], [0.1, 0.2, 0.3]),
        ("i2", "points", [0, 0, 0], [0.1, 0.2, 0.3]),  # constant -> undefined
    ])
    agreement = rank_agreement(rankings, "ra-srgt")
    rho = {(r.image, r.method): r.spearman for r in agreement.itertuples()}
    assert rho[("i1", "ra-srgt")] == pytest.approx(1.0)
    assert rho[("i1", "points")] == pytest.approx(-1.0)
    assert rho[("i2", "ra-srgt")] == pytest.approx(1.0)
    assert math.isnan(rho[("i2", "points")])

    vs_salience = rank_agreement(rankings, SALIENCE)
    rho = {(r.image, r.method): r.spearman for r in vs_salience.itertuples()}
    assert rho[("i1", "ra-srgt")] == pytest.approx(1.0)
    assert rho[("i1", "points")] == pytest.approx(-1.0)
    # i2 ra-srgt order values (-2, -1, -4) vs salience (0.1, 0.2, 0.3): ranks (2, 3, 1) vs (1, 2, 3)
    assert rho[("i2", "ra-srgt")] == pytest.approx(-0.5)

    summary = agreement_summary(agreement)
    assert summary["method"].tolist() == ["ra-srgt", "points"]  # METHODS order
    points = summary.set_index("method").loc["points"]
    assert points["mean"] == pytest.approx(-1.0) and points["images"] == 1 and points["undefined"] == 1


def test_rank_agreement_bad_reference():
    rankings = _rankings([("i1", "points", [1, 2], [0.1, 0.2])])
    with pytest.raises(ValueError, match="reference 'ra-srgt'"):
        rank_agreement(rankings, "ra-srgt")
    with pytest.raises(ValueError, match="lacks column"):
        rank_agreement(rankings.drop(columns="salience"), "points")


def test_agreement_on_synthetic_ground_truth():
    """Observers that look at objects in proportion to a planted salience: the counting methods
    recover the planted order exactly; a reference agrees with itself."""
    rng = np.random.default_rng(0)
    boxes = np.array([[0, 0, 20, 20], [30, 0, 50, 20], [0, 30, 20, 50], [30, 30, 50, 50]], dtype=float)
    fixations, all_boxes, salience = {}, {}, {}
    for k in range(4):
        sal = rng.permutation(4) + 1.0
        points = np.concatenate([rng.uniform(b[:2], b[2:], size=(int(10 * s), 2)) for b, s in zip(boxes, sal, strict=True)])
        fixations[f"s{k}"], all_boxes[f"s{k}"], salience[f"s{k}"] = _fx(points, 50, 50), boxes, sal
    ss = SceneSet("synthetic", "x", fixations, {}, all_boxes, salience)
    rankings = method_rankings(ss, methods=["ra-srgt", "points"])
    summary = agreement_summary(rank_agreement(rankings, SALIENCE)).set_index("method")
    assert summary.loc["ra-srgt", "mean"] == pytest.approx(1.0)
    assert summary.loc["points", "mean"] == pytest.approx(1.0)
    assert summary.loc["points", "images"] == 4
    self_agreement = agreement_summary(rank_agreement(rankings, "ra-srgt")).set_index("method")
    assert self_agreement.loc["ra-srgt", "mean"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- sweeps

def test_offset_sweeps_matches_discrepancy_offsets():
    ss = _scene_set()
    grid = (0.0, 0.3, 0.6, 0.9)
    table = offset_sweeps([ss], gammas=grid, betas=grid, gamma=0.4, beta=0.8)
    boxes = {s: b for s, b in ss.boxes.items() if len(b)}
    expected = discrepancy_offsets(ss.fixations, boxes, gammas=grid, betas=grid, gamma=0.4, beta=0.8,
                                   progress=False)
    pd.testing.assert_frame_equal(table[expected.columns], expected)
    assert (table["dataset"] == "toy/all").all()
    assert (table["images"] == 2).all() and (table["boxes"] == 7).all()
    np.testing.assert_allclose(table["offset_per_1k_boxes"], 1000 * table["offset"] / 7)


def test_offset_sweeps_one_parameter_and_errors():
    table = offset_sweeps([_scene_set(), _scene_set()], gammas=None, betas=(0.0, 1.0))
    assert table["parameter"].unique().tolist() == ["beta"] and len(table) == 2
    with pytest.raises(ValueError, match="nothing to sweep"):
        offset_sweeps([_scene_set()], gammas=None, betas=None)
    with pytest.raises(ValueError, match="empty"):
        offset_sweeps([])


def test_offset_range_summary_hand_computed():
    offsets = pd.DataFrame({
        "dataset": "d", "parameter": ["gamma"] * 5 + ["beta"] * 2,
        "t": [0.1, 0.2, 0.3, 0.4, 0.5, 0.1, 0.2], "offset": [9, 7, 4, 4, 2, 0, 0],
    })
    summary = offset_range_summary(offsets, {"gamma": [(0.1, 0.2), (0.3, 0.5), (0.9, 1.0)], "beta": [(0.1, 0.2)]})
    assert summary["range"].tolist() == ["0.1-0.2", "0.3-0.5", "0.1-0.2"]  # 0.9-1.0 has no step
    first, second, beta = summary.to_dict("records")
    assert (first["steps"], first["mean"], first["min"], first["max"]) == (2, 8.0, 7.0, 9.0)
    assert first["spread"] == pytest.approx(2 / 8)
    assert (second["steps"], second["mean"], second["spread"]) == (3, pytest.approx(10 / 3), pytest.approx(0.6))
    assert beta["parameter"] == "beta" and math.isnan(beta["spread"])
    real = offset_range_summary(offset_sweeps([_scene_set()]))
    assert set(real["range"]) == {"0.1-0.2", "0.3-0.6", "0.7-1.0", "0.1-0.3", "0.4-0.6"}  # default grid
    with pytest.raises(ValueError, match="lacks column"):
        offset_range_summary(offsets.drop(columns="t"))


def test_gamma_sensitivity_hand_computed():
    # Box 0: 3 of 4 points, area 4; box 1: 1 point, area 64. N = 4, A = 100.
    # S0 = 0.75 + g e^(0.5 * 0.2), S1 = 0.25 + g e^(0.5 * 0.8): box 1 wins when
    # g > 0.5 / (e^0.4 - e^0.1) = 1.293, so only the step 0.5 -> 1.5 swaps the two ranks.
    points = [[0.5, 0.5], [1.5, 0.5], [0.5, 1.5], [8, 8]]
    boxes = np.array([[0, 0, 2, 2], [2, 2, 10, 10]], dtype=float)
    ss = SceneSet("t", "x", {"one": _fx(points), "two": _fx(points)}, {},
                  {"one": boxes, "two": boxes[:1]}, None)
    table = gamma_sensitivity(ss, gammas=(0.1, 0.5, 1.5), beta=0.5)
    assert table.to_dict("records") == [
        {"image": "one", "boxes": 2, "offset": 2, "changed_boxes": 2},
        {"image": "two", "boxes": 1, "offset": 0, "changed_boxes": 0},
    ]
    with pytest.raises(ValueError, match="at least two"):
        gamma_sensitivity(ss, gammas=(0.2,))


def test_scenes_with_boxes():
    ss = _scene_set()
    assert scenes_with_boxes(ss).stems == ["a", "b"]
    one = scenes_with_boxes(ss, n=1, seed=5)
    assert len(one) == 1 and one.stems == scenes_with_boxes(ss, n=1, seed=5).stems
    assert scenes_with_boxes(ss, n=10).stems == ["a", "b"]
    bare = SceneSet("none", "x", {"a": _fx(POINTS)}, {}, {}, None)
    with pytest.raises(ValueError, match="no image has object boxes"):
        scenes_with_boxes(bare)
