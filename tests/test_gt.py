"""Ground-truth ranking orders (salrank.gt): hand-computed cases, properties, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salrank.bench.gt import benchmark
from salrank.cache import CacheEntryWarning
from salrank.data import Fixations, fixation_map
from salrank.gt import (
    DatasetCounts,
    class_labels,
    count_dataset,
    count_points_in_boxes,
    count_points_in_boxes_loop,
    discrepancy_offsets,
    efp_ranks,
    rank_objects,
    ranks_from_scores,
    relabel_dataset,
)
from salrank.gt.counting import count_points_in_boxes_batch

# --------------------------------------------------------------------------- hand-computed cases

# 10 x 10 image, five points, four boxes.
POINTS = np.array([[1, 1], [2, 2], [8, 8], [5, 5], [9.5, 0.5]])
BOXES = np.array([
    [0, 0, 5, 5],  # (1,1), (2,2); (5,5) is on the open edge -> N=2, area 25
    [5, 5, 10, 10],  # (8,8), (5,5) -> N=2, area 25
    [0, 0, 10, 10],  # all five -> N=5, area 100
    [6, 0, 8, 2],  # nothing -> 0
], dtype=float)


def test_ra_srgt_hand_computed():
    scores, ranks = rank_objects(POINTS, BOXES, (10, 10))
    quarter = 2 / 5 + 0.2 * math.exp(0.5 * math.sqrt(25 / 100))
    expected = [quarter, quarter, 5 / 5 + 0.2 * math.exp(0.5 * 1.0), 0.0]
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    assert ranks.tolist() == [2, 3, 1, 0]  # the tie of boxes 0 and 1 goes to the lower index
    assert scores.dtype == np.float64 and ranks.dtype == np.int64


def test_ra_srgt_gamma_and_beta_are_used():
    scores, _ = rank_objects(POINTS, BOXES, (10, 10), gamma=0.5, beta=2.0)
    assert scores[2] == pytest.approx(1.0 + 0.5 * math.exp(2.0))
    assert scores[0] == pytest.approx(0.4 + 0.5 * math.exp(1.0))


def test_points_method_hand_computed():
    scores, ranks = rank_objects(POINTS, BOXES, (10, 10), method="points")
    np.testing.assert_allclose(scores, [2 / 5, 2 / 5, 5 / 10, 0.0])
    assert ranks.tolist() == [2, 3, 1, 0]


FMAP = np.array([
    [0.0, 0.1, 0.2, 0.3],
    [0.4, 0.5, 0.6, 0.7],
    [0.8, 0.9, 1.0, 0.0],
    [0.0, 0.0, 0.0, 0.0],
])
MAP_BOXES = np.array([
    [0, 0, 2, 2],  # pixels (0..1, 0..1): 0, .1, .4, .5
    [1.5, 0, 3, 3],  # columns ceil(1.5)=2 .. ceil(3)-1=2, rows 0..2: .2, .6, 1.0
    [0, 3, 4, 4],  # row 3: zeros
    [0.2, 0.2, 0.8, 0.8],  # holds no pixel (columns 1 .. 0)
    [0, 1, 4, 3],  # rows 1..2: .4 .5 .6 .7 .8 .9 1 0
])


def test_map_max_hand_computed():
    scores, ranks = rank_objects([], MAP_BOXES, (4, 4), method="map-max", fixation_map=FMAP)
    np.testing.assert_allclose(scores, [0.5, 1.0, 0.0, 0.0, 1.0])
    assert ranks.tolist() == [3, 1, 0, 0, 2]


def test_map_avg_hand_computed():
    scores, ranks = rank_objects([], MAP_BOXES, (4, 4), method="map-avg", fixation_map=FMAP)
    np.testing.assert_allclose(scores, [0.25, 0.6, 0.0, 0.0, 4.9 / 8])
    assert ranks.tolist() == [3, 2, 0, 0, 1]


def test_binary_map_hand_computed():
    scores, ranks = rank_objects([], MAP_BOXES, (4, 4), method="binary-map", fixation_map=FMAP, threshold=0.5)
    # white = value > 0.5: .6 .7 .8 .9 1.0
    expected = [0.0, 2 / 3 * math.sqrt(1.5 * 3 / 16), 0.0, 0.0, 5 / 8 * math.sqrt(8 / 16)]
    np.testing.assert_allclose(scores, expected)
    assert ranks.tolist() == [0, 2, 0, 0, 1]


def test_map_methods_use_the_data_fixation_map():
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 40, size=(30, 2))
    boxes = np.array([[0, 0, 20, 20], [20, 0, 40, 30], [5, 25, 35, 40]], dtype=float)
    fmap = fixation_map(pts, sigma=3.0, image_size=(40, 40))
    for method in ("map-max", "map-avg", "binary-map"):
        direct = rank_objects(pts, boxes, (40, 40), method=method, sigma=3.0)
        given_map = rank_objects(pts, boxes, (40, 40), method=method, fixation_map=fmap)
        np.testing.assert_array_equal(direct[0], given_map[0])
        np.testing.assert_array_equal(direct[1], given_map[1])


def test_efp_ranks_hand_computed():
    smap = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.5]])
    boxes = np.array([[0, 0, 2, 2], [2, 2, 4, 4], [0, 0, 4, 4]], dtype=float)
    # means 1, 0.125, 4.5/16 -> T = 0.46875: white = the four 1s and the 0.5
    scores, ranks = efp_ranks(smap, boxes, lam=1.0)
    assert scores.tolist() == [4, 1, 5] and ranks.tolist() == [2, 3, 1]
    # lam = 0.5 -> T = 0.9375: only the 1s; boxes 0 and 2 tie -> lower index first
    scores, ranks = efp_ranks(smap, boxes, lam=0.5)
    assert scores.tolist() == [4, 0, 4] and ranks.tolist() == [1, 0, 2]
    colour = np.repeat(smap[:, :, None], 3, axis=2) * 255
    assert efp_ranks(colour, boxes, lam=1.0)[1].tolist() == [2, 3, 1]


def test_efp_ranks_sqrt_area_variant_and_bad_lambda():
    smap = np.zeros((4, 4))
    smap[0, 0] = 1.0
    # sum / sqrt(area): box 0 -> 1 / 2, box 1 -> 1 / 4 -> T = 0.375; white = the 1 only
    scores, ranks = efp_ranks(smap, [[0, 0, 2, 2], [0, 0, 4, 4]], normalise="sqrt-area")
    assert scores.tolist() == [1, 1] and ranks.tolist() == [1, 2]
    for lam in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="lam"):
            efp_ranks(smap, [[0, 0, 2, 2]], lam=lam)
    assert efp_ranks(np.zeros((4, 4)), [[0, 0, 2, 2]])[1].tolist() == [0]  # a blank map: nothing salient


def test_class_labels():
    assert class_labels([0.3, 0.9, 0.0, 0.5, 0.1]).tolist() == [2, 4, 0, 3, 1]
    assert class_labels([0.5, 0.5, 0.0]).tolist() == [4, 3, 2]  # padded with dummy proposals
    assert class_labels([0.5, 0.5, 0.0], group_size=None).tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="group_size"):
        class_labels(np.ones(6))
    # the authors' tie rule, sorted((score, index)): of equal scores the lower index is the LESS salient
    assert class_labels([0.5, 0.5, 0.0], ties="official").tolist() == [3, 4, 2]
    assert class_labels([0.5, 0.5, 0.0], group_size=None, ties="official").tolist() == [1, 2, 0]
    assert class_labels([0.0] * 5, ties="official").tolist() == [0, 1, 2, 3, 4]
    assert class_labels([0.0] * 5, ties="rank").tolist() == [4, 3, 2, 1, 0]
    # without ties both rules agree
    assert class_labels([0.3, 0.9, 0.0, 0.5, 0.1], ties="official").tolist() == [2, 4, 0, 3, 1]


def test_ranks_from_scores():
    assert ranks_from_scores([0.0, 2.0, 1.0, 2.0, -1.0]).tolist() == [0, 1, 3, 2, 0]
    assert ranks_from_scores([]).tolist() == []


# --------------------------------------------------------------------------- bad input


def test_boxes_partly_outside_are_clipped():
    pts = [[1, 1], [3, 3]]
    inside = rank_objects(pts, [[0, 0, 5, 5], [2, 2, 10, 10]], (10, 10))
    outside = rank_objects(pts, [[-5, -7, 5, 5], [2, 2, 30, 40]], (10, 10))
    np.testing.assert_array_equal(inside[0], outside[0])
    np.testing.assert_array_equal(inside[1], outside[1])


def test_zero_area_boxes_and_empty_images():
    pts = [[1, 1], [2, 2]]
    for method in ("ra-srgt", "points", "map-max", "map-avg", "binary-map"):
        scores, ranks = rank_objects(pts, [[1, 1, 1, 5], [0, 0, 4, 4], [20, 20, 30, 30]], (10, 10),
                                     method=method, sigma=1.0)
        assert np.isfinite(scores).all()
        assert scores[0] == 0 and ranks[0] == 0, method
        assert scores[2] == 0 and ranks[2] == 0, method  # entirely outside the image
        assert ranks[1] == 1, method
        scores, ranks = rank_objects(np.zeros((0, 2)), [[0, 0, 4, 4], [1, 1, 5, 5]], (10, 10), method=method)
        assert scores.tolist() == [0, 0] and ranks.tolist() == [0, 0], method
    scores, ranks = rank_objects(pts, np.zeros((0, 4)), (10, 10))
    assert scores.shape == (0,) and ranks.shape == (0,)


@pytest.mark.parametrize("points, boxes, match", [
    ([[1, float("nan")]], [[0, 0, 4, 4]], "points contains a NaN"),
    ([[1, float("inf")]], [[0, 0, 4, 4]], "points contains a NaN"),
    ([[1, 1]], [[0, 0, float("inf"), 4]], "boxes contains a NaN"),
    ([[1, 1]], [[0, float("nan"), 4, 4]], "boxes contains a NaN"),
    ([[1, 1, 1]], [[0, 0, 4, 4]], "shape"),
    ([1, 1], [[0, 0, 4, 4]], "shape"),
    ([[1, 1]], [[0, 0, 4]], "shape"),
    ([[1, 1]], [[4, 0, 0, 4]], "x2 < x1"),
])
def test_bad_inputs_raise(points, boxes, match):
    with pytest.raises(ValueError, match=match):
        rank_objects(points, boxes, (10, 10))


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="unknown method"):
        rank_objects([[1, 1]], [[0, 0, 4, 4]], (10, 10), method="nope")
    with pytest.raises(ValueError, match="image_size"):
        rank_objects([[1, 1]], [[0, 0, 4, 4]], (10, 0))
    with pytest.raises(ValueError, match="gamma"):
        rank_objects([[1, 1]], [[0, 0, 4, 4]], (10, 10), gamma=-1)
    with pytest.raises(TypeError, match="sigmaa"):
        rank_objects([[1, 1]], [[0, 0, 4, 4]], (10, 10), sigmaa=3)
    with pytest.raises(ValueError, match="fixation_map has shape"):
        rank_objects([[1, 1]], [[0, 0, 4, 4]], (10, 10), method="map-max", fixation_map=np.zeros((5, 5)))


# --------------------------------------------------------------------------- properties

coords = st.floats(min_value=-5, max_value=45, allow_nan=False, allow_infinity=False)


@st.composite
def scenes(draw, quarter: bool = False):
    """(points, boxes, (height, width)) with float (or quarter-pixel) coordinates."""
    height = draw(st.integers(1, 40))
    width = draw(st.integers(1, 40))
    value = st.integers(-20, 180).map(lambda v: v / 4) if quarter else coords
    n_points = draw(st.integers(0, 40))
    points = np.array(draw(st.lists(st.tuples(value, value), min_size=n_points, max_size=n_points)),
                      dtype=float).reshape(-1, 2)
    n_boxes = draw(st.integers(1, 8))
    raw = np.array(draw(st.lists(st.tuples(value, value, value, value), min_size=n_boxes, max_size=n_boxes)),
                   dtype=float)
    boxes = np.concatenate([np.minimum(raw[:, :2], raw[:, 2:]), np.maximum(raw[:, :2], raw[:, 2:])], axis=1)
    # Snap some box edges onto point coordinates to exercise the half-open rule.
    if len(points) and draw(st.booleans()):
        boxes[0, 0], boxes[0, 1] = points[0]
        boxes[0, 2:] = np.maximum(boxes[0, 2:], boxes[0, :2])
    return points, boxes, (height, width)


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_fast_counts_equal_the_loop(scene):
    points, boxes, size = scene
    expected = count_points_in_boxes_loop(points, boxes)
    np.testing.assert_array_equal(count_points_in_boxes(points, boxes), expected)
    clipped = boxes.copy()
    clipped[:, 0::2] = np.clip(boxes[:, 0::2], 0, size[1])
    clipped[:, 1::2] = np.clip(boxes[:, 1::2], 0, size[0])
    # The batch path, with a second (shifted) image so that per-image offsets matter.
    counts, inside = count_points_in_boxes_batch([points, points + 0.5], np.concatenate([clipped, clipped]),
                                                 [len(boxes), len(boxes)], [size, size])
    np.testing.assert_array_equal(counts[:len(boxes)], count_points_in_boxes_loop(points, clipped))
    np.testing.assert_array_equal(counts[len(boxes):], count_points_in_boxes_loop(points + 0.5, clipped))
    assert inside[0] == count_points_in_boxes_loop(points, [[0, 0, size[1], size[0]]])[0]


@settings(max_examples=100, deadline=None)
@given(scenes(), st.randoms(use_true_random=False))
def test_permuting_boxes_permutes_scores_and_ranks(scene, rnd):
    points, boxes, size = scene
    perm = list(range(len(boxes)))
    rnd.shuffle(perm)
    scores, ranks = rank_objects(points, boxes, size)
    p_scores, p_ranks = rank_objects(points, boxes[perm], size)
    np.testing.assert_array_equal(p_scores, scores[perm])
    positive = scores[scores > 0]
    if len(np.unique(positive)) == len(positive):  # without ties the ranks follow the boxes
        np.testing.assert_array_equal(p_ranks, ranks[perm])
    assert sorted(p_ranks.tolist()) == sorted(ranks.tolist())


@settings(max_examples=100, deadline=None)
@given(scenes(quarter=True), st.integers(2, 4))
def test_integer_scaling_leaves_ra_srgt_ranks_unchanged(scene, k):
    points, boxes, (height, width) = scene
    scores, ranks = rank_objects(points, boxes, (height, width))
    k_scores, k_ranks = rank_objects(points * k, boxes * k, (height * k, width * k))
    np.testing.assert_array_equal(k_ranks, ranks)
    np.testing.assert_allclose(k_scores, scores, rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(scenes(), st.sampled_from(["ra-srgt", "points"]))
def test_salient_boxes_are_ranked_1_to_m(scene, method):
    points, boxes, size = scene
    scores, ranks = rank_objects(points, boxes, size, method=method)
    clipped = boxes.copy()
    clipped[:, 0::2] = np.clip(boxes[:, 0::2], 0, size[1])
    clipped[:, 1::2] = np.clip(boxes[:, 1::2], 0, size[0])
    counts = count_points_in_boxes_loop(points, clipped)
    salient = counts > 0
    assert sorted(ranks[salient].tolist()) == list(range(1, int(salient.sum()) + 1))
    assert (ranks[~salient] == 0).all() and (scores[~salient] == 0).all()
    order = np.argsort(ranks[salient])
    assert (np.diff(scores[salient][order]) <= 0).all()  # rank 1 has the highest score


# --------------------------------------------------------------------------- datasets


def _dataset(seed: int = 0, n_images: int = 4):
    rng = np.random.default_rng(seed)
    fixations, boxes = {}, {}
    for i in range(n_images):
        h, w = int(rng.integers(20, 40)), int(rng.integers(20, 40))
        pts = rng.uniform(-2, [w + 2, h + 2], size=(int(rng.integers(0, 60)), 2))
        k = [7, 3, 5, 0][i % 4]
        xy = rng.uniform(-3, [w, h], size=(k, 2))
        bxs = np.concatenate([xy, xy + rng.uniform(0, 15, size=(k, 2))], axis=1)
        stem = f"img{i:02d}"
        fixations[stem] = Fixations(points=pts, observer=np.zeros(len(pts)), height=h, width=w, image_id=100 + i)
        boxes[stem] = bxs
    return fixations, boxes


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALRANK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("method", ["ra-srgt", "points", "map-max", "binary-map"])
def test_relabel_dataset_matches_rank_objects(method, tmp_cache):
    fixations, boxes = _dataset()
    table = relabel_dataset(fixations, boxes, method=method, gamma=0.3, beta=0.7, cache=False,
                            progress=False, **({"sigma": 2.0} if method != "ra-srgt" and method != "points" else {}))
    assert list(table.columns) == ["image", "box", "x1", "y1", "x2", "y2", "n_fixations", "score", "rank", "label"]
    assert len(table) == sum(len(b) for b in boxes.values())
    for stem, rows in table.groupby("image"):
        fx = fixations[stem]
        options = {"sigma": 2.0} if method not in ("ra-srgt", "points") else {}
        scores, ranks = rank_objects(fx.points, boxes[stem], fx.image_size, method=method, gamma=0.3, beta=0.7,
                                     **options)
        np.testing.assert_allclose(rows["score"].to_numpy(), scores, rtol=1e-12)
        np.testing.assert_array_equal(rows["rank"].to_numpy(), ranks)
        np.testing.assert_array_equal(rows["box"].to_numpy(), np.arange(len(ranks)))
        first = min(5, len(scores))
        np.testing.assert_array_equal(rows["label"].to_numpy()[:first], class_labels(scores[:first]))
        assert (rows["label"].to_numpy()[first:] == -1).all()
    assert table.attrs["method"] == method


def test_relabel_dataset_cache(tmp_cache):
    fixations, boxes = _dataset(seed=1)
    first = relabel_dataset(fixations, boxes, progress=False)
    files = list(tmp_cache.joinpath("gt").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    again = relabel_dataset(fixations, boxes, progress=False)
    pd.testing.assert_frame_equal(first, again)
    assert again.attrs == first.attrs and again["image"].dtype == object
    relabel_dataset(fixations, boxes, gamma=0.5, progress=False)  # other parameters: another entry
    assert len(list(tmp_cache.joinpath("gt").iterdir())) == 2
    files[0].write_bytes(b"garbage")  # a corrupt entry is discarded with a warning and rebuilt
    with pytest.warns(CacheEntryWarning, match="GT table cache"):
        pd.testing.assert_frame_equal(relabel_dataset(fixations, boxes, progress=False), first)
    pd.testing.assert_frame_equal(relabel_dataset(fixations, boxes, progress=False), first)  # rebuilt entry


def test_relabel_dataset_bad_inputs(tmp_cache):
    fixations, boxes = _dataset()
    with pytest.raises(KeyError, match="no fixations"):
        relabel_dataset(fixations, {**boxes, "missing": np.zeros((1, 4))}, cache=False, progress=False)
    bad = dict(boxes)
    bad["img00"] = bad["img00"].copy()
    bad["img00"][0, 0] = np.nan
    with pytest.raises(ValueError, match="img00"):
        relabel_dataset(fixations, bad, cache=False, progress=False)
    fx = fixations["img01"]
    nan_points = fx.points.copy()
    nan_points[0, 1] = np.inf
    broken = {**fixations, "img01": Fixations(points=nan_points, observer=fx.observer, height=fx.height,
                                                width=fx.width)}
    with pytest.raises(ValueError, match="img01"):
        count_dataset(broken, boxes, progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        relabel_dataset(fixations, boxes, method="nope", cache=False, progress=False)


def test_count_dataset_many_boxes_and_chunks():
    rng = np.random.default_rng(5)
    fixations, boxes = {}, {}
    for i, k in enumerate([300, 2, 0, 40]):  # 300 boxes: counted outside the batched grid
        pts = rng.uniform(0, 50, size=(200, 2))
        xy = rng.uniform(0, 50, size=(k, 2))
        fixations[f"a{i}"] = Fixations(points=pts, observer=np.zeros(200), height=50, width=50)
        boxes[f"a{i}"] = np.concatenate([xy, xy + rng.uniform(0, 20, size=(k, 2))], axis=1)
    counts = count_dataset(fixations, boxes, progress=False)
    assert isinstance(counts, DatasetCounts)
    for i, stem in enumerate(counts.images):
        mine = counts.image_index == i
        np.testing.assert_array_equal(counts.counts[mine], count_points_in_boxes_loop(
            fixations[stem].points, counts.boxes[mine]))
        assert counts.n_points[i] == 200


def test_discrepancy_offsets_hand_computed():
    # 100 x 100 image, 10 points: 6 in small box A (a = 0.1), 4 in big box B (a = sqrt(0.8)).
    pts = np.array([[1, 1]] * 6 + [[50, 50]] * 4, dtype=float)
    fixations = {"x": Fixations(points=pts, observer=np.zeros(10), height=100, width=100)}
    boxes = {"x": np.array([[0, 0, 10, 10], [20, 0, 100, 100]], dtype=float)}
    table = discrepancy_offsets(fixations, boxes, progress=False)
    gamma = table[table["parameter"] == "gamma"]
    beta = table[table["parameter"] == "beta"]
    np.testing.assert_allclose(gamma["t"], np.arange(1, 11) / 10)
    # S_A = .6 + g e^.05 vs S_B = .4 + g e^.447: B overtakes A for g > 0.39
    assert gamma.set_index("t")["offset"].to_dict() == {t / 10: (2 if t == 4 else 0) for t in range(1, 11)}
    # gamma = .2: S_A = .6 + .2 e^(.1 b) vs S_B = .4 + .2 e^(.894 b): B overtakes A between 0.8 and 0.9
    assert beta.set_index("t")["offset"].to_dict() == {t / 10: (2 if t == 9 else 0) for t in range(1, 11)}
    assert table.loc[(table["parameter"] == "gamma") & (table["t"] == 0.4), "changed_images"].item() == 1


def test_discrepancy_offsets_match_rank_objects():
    fixations, boxes = _dataset(seed=2, n_images=6)
    table = discrepancy_offsets(fixations, boxes, gammas=[0.0, 0.5, 1.0], betas=None, progress=False)
    expected = []
    for prev, t in ((0.0, 0.5), (0.5, 1.0)):
        total = 0
        for stem, fx in fixations.items():
            r_prev = rank_objects(fx.points, boxes[stem], fx.image_size, gamma=prev)[1]
            r_t = rank_objects(fx.points, boxes[stem], fx.image_size, gamma=t)[1]
            total += int(np.abs(r_t - r_prev).sum())
        expected.append(total)
    assert table["offset"].tolist() == expected


def test_benchmark_checks_the_fast_path_against_the_loop():
    result = benchmark(n_images=3, points_per_image=400, boxes_per_image=6, loop_images=2)
    assert result["counts_equal"] is True
    assert result["loop_images"] == 2 and result["n_images"] == 3
    assert result["speedup"] > 0 and not result["salicon_s_measured"]
    assert result["salicon_s"] == pytest.approx(result["fast_s_per_image"] * 15000)
