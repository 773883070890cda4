"""Per-image metrics, dataset means under both NaN policies, box-level SA-SOR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salrank.metrics.ranking import (
    evaluate,
    image_f1,
    image_plcc,
    image_rmse,
    image_sa_sor,
    image_srcc,
    image_topk_accuracy,
    match_boxes,
    mean_sa_sor,
    per_image_metrics,
    ranks_to_scores,
)


def test_perfect_and_reversed():
    gt = [0, 1, 2, 3, 4]
    assert image_srcc(gt, gt) == pytest.approx(1.0)
    assert image_srcc(gt[::-1], gt) == pytest.approx(-1.0)
    assert image_plcc(gt[::-1], gt) == pytest.approx(-1.0)
    assert image_f1(gt, gt) == 1.0
    assert image_rmse(gt, gt) == 0.0
    # reversed: squared errors 16, 4, 0, 4, 16 -> mean 8
    assert image_rmse(gt[::-1], gt) == pytest.approx(math.sqrt(8))


def test_macro_f1_by_hand():
    # class 0: TP 1 -> F1 1; class 1: TP 1, FN 1 -> 2/3; class 2: TP 1, FP 1 -> 2/3
    assert image_f1([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(7 / 9)
    # class 3 only predicted: F1 0 for it; classes 0, 1: 1 each; class 2: TP 0, FN 1 -> 0
    assert image_f1([0, 1, 3], [0, 1, 2]) == pytest.approx(2 / 4)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=12))
def test_macro_f1_is_symmetric_and_bounded(pairs):
    p, g = zip(*pairs, strict=True)
    assert image_f1(p, g) == pytest.approx(image_f1(g, p))
    assert 0.0 <= image_f1(p, g) <= 1.0


def test_topk_accuracy_official_definition():
    gt, pred = [0, 3, 1, 2], [0, 3, 2, 1]
    assert image_topk_accuracy(pred, gt, 1) == 1.0  # object 1: 3 == 3
    assert image_topk_accuracy(pred, gt, 2) == 0.0  # object 3: GT 2, predicted 1
    assert image_topk_accuracy(pred, gt, 3) == 0.0  # object 2: GT 1, predicted 2
    assert math.isnan(image_topk_accuracy([1, 0], [1, 0], 3))


def test_constant_gt_and_nan_policies():
    preds = [[0, 1, 2, 3], [0, 1, 2, 3], [1, 1, 1, 1]]
    gts = [[0, 1, 2, 3], [2, 2, 2, 2], [0, 1, 2, 3]]
    assert math.isnan(image_srcc(preds[1], gts[1]))
    assert math.isnan(image_srcc(preds[2], gts[2]))  # constant prediction
    ex = evaluate(preds, gts, nan_policy="exclude")
    # constant-GT image 1 left out; constant prediction (image 2) counts as 0
    assert ex["srcc"] == pytest.approx(0.5) and ex["n_used_correlation"] == 2
    assert ex["n_constant_gt"] == 1 and ex["n_images"] == 3
    zero = evaluate(preds, gts, nan_policy="zero")
    assert zero["srcc"] == pytest.approx(1 / 3) and zero["n_used_correlation"] == 3
    # F1 is defined for every image and averaged over all of them under both policies
    f1s = [image_f1(p, g) for p, g in zip(preds, gts, strict=True)]
    assert ex["f1"] == pytest.approx(np.mean(f1s)) == pytest.approx(zero["f1"])
    with pytest.raises(ValueError, match="nan_policy"):
        evaluate(preds, gts, nan_policy="drop")


def test_per_image_frame_and_errors():
    df = per_image_metrics([[0, 1]], [[1, 0]])
    assert list(df.columns[:4]) == ["srcc", "plcc", "rmse", "f1"]
    assert df.loc[0, "srcc"] == pytest.approx(-1.0) and df.loc[0, "n_objects"] == 2
    with pytest.raises(ValueError, match="image 0"):
        per_image_metrics([[0, 1]], [[1, 0, 2]])
    with pytest.raises(ValueError, match="differ"):
        per_image_metrics([[0, 1]], [])


def test_ranks_to_scores():
    assert ranks_to_scores([1, 3, 2, 0]).tolist() == [3, 1, 2, 0]
    assert image_srcc(ranks_to_scores([1, 2, 3]), [2, 1, 0]) == pytest.approx(1.0)


GT_BOXES = np.array([[0, 0, 100, 100], [150, 0, 250, 100], [200, 200, 300, 300]], dtype=float)
GT_RANKS = np.array([1, 2, 3])  # ascending indices 3, 2, 1


def test_sa_sor_hand_case():
    pred_boxes = np.array([
        [150, 0, 250, 100],  # p0 = GT 1
        [0, 0, 100, 100],  # p1 = GT 0
        [400, 400, 450, 450],  # p2: false positive
        [260, 260, 360, 360],  # p3: IoU 0.087 with GT 2 -> GT 2 missed
    ], dtype=float)
    pred_ranks = np.array([1, 2, 3, 4])  # ascending indices 4, 3, 2, 1
    # matched vector (3, 4, 0) vs GT (3, 2, 1): r = 3 / sqrt(78/9 * 2) = 9 / sqrt(156)
    assert image_sa_sor(pred_boxes, pred_ranks, GT_BOXES, GT_RANKS) == pytest.approx(9 / math.sqrt(156))
    assert image_sa_sor(GT_BOXES, GT_RANKS, GT_BOXES, GT_RANKS) == pytest.approx(1.0)
    assert image_sa_sor(GT_BOXES, GT_RANKS[::-1], GT_BOXES, GT_RANKS) == pytest.approx(-1.0)
    # tied predicted ranks: salrank's variant counts the lower index as more salient -> 3, 2, 1
    assert image_sa_sor(GT_BOXES, [1, 1, 2], GT_BOXES, GT_RANKS, variant="salrank") == pytest.approx(1.0)
    # IRSR's variant gives ties the same index (2, 2, 1 against 3, 2, 1)
    assert image_sa_sor(GT_BOXES, [1, 1, 2], GT_BOXES, GT_RANKS) == pytest.approx(math.sqrt(3) / 2)


def test_sa_sor_edge_cases():
    assert math.isnan(image_sa_sor(GT_BOXES[:1], [1], GT_BOXES[:1], [1]))  # single GT
    assert image_sa_sor(np.zeros((0, 4)), [], GT_BOXES, GT_RANKS) == 0.0  # nothing predicted
    # rank 0 objects are not salient and dropped: two GT left, perfectly ranked
    assert image_sa_sor(GT_BOXES, [1, 2, 0], GT_BOXES, [1, 2, 0]) == pytest.approx(1.0)
    out = mean_sa_sor([
        {"pred_boxes": GT_BOXES, "pred_ranks": GT_RANKS, "gt_boxes": GT_BOXES, "gt_ranks": GT_RANKS},
        {"pred_boxes": GT_BOXES[:1], "pred_ranks": [1], "gt_boxes": GT_BOXES[:1], "gt_ranks": [1]},
    ])
    assert out == {"sa_sor": pytest.approx(1.0), "n_images": 2, "n_excluded": 1, "n_zero": 0, "variant": "irsr"}
    with pytest.raises(ValueError, match="mismatch"):
        image_sa_sor(GT_BOXES, [1, 2], GT_BOXES, GT_RANKS)


def test_match_conflict_higher_iou_wins_without_fallback():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 12]], dtype=float)
    pred = np.array([[0, 0, 10, 11], [0, 0, 10, 9]], dtype=float)
    # IoU(g0, p0) = 100/110, IoU(g1, p0) = 110/120 (wins); g0's best is p0 -> missed, even
    # though p1 (IoU 0.9) is free.
    assert match_boxes(pred, gt).tolist() == [-1, 0]
    assert match_boxes(pred, gt, iou_threshold=0.95).tolist() == [-1, -1]
