"""Peer metric variants named after their code (ASSR, IRSR, SeqRank): hand-checked cases where
the peers' rules differ from one another, and properties derived from their evaluation scripts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salrank.metrics import image_sa_sor as exported_sa_sor
from salrank.metrics.peers import (
    image_mae,
    image_sa_sor,
    image_sor,
    iou_matrix,
    match_boxes,
    mean_sa_sor,
    mean_sor,
    object_values,
    paint_rank_map,
)
from salrank.metrics.ranking import image_sa_sor as old_import


def test_sa_sor_names_stay_importable():
    assert exported_sa_sor is image_sa_sor is old_import


# ----------------------------------------------------------------------------- SOR (ASSR)


def test_sor_ijcv_equal_means_tie_exactly():
    # 1x4 map all 204; GT A = pixel 0 (rank 1), B = pixels 1-3 (rank 2): both means are 204
    pred = np.full((1, 4), 204 / 255)
    masks = np.zeros((2, 1, 4), bool)
    masks[0, 0, 0] = True
    masks[1, 0, 1:] = True
    assert object_values(pred, masks, "assr-ijcv").tolist() == [204 / 255, 204 / 255]
    assert math.isnan(image_sor(pred, masks, [1, 2], "assr-ijcv"))  # constant -> image not used
    assert math.isnan(image_sor(pred, masks, [1, 2], "ijcv"))  # the old name is an alias
    assert mean_sor([image_sor(pred, masks, [1, 2], "assr-ijcv")])["n_used"] == 0
    # a float mean would have broken the tie: 0.8 + 0.8 + 0.8 != 3 * 0.8 in binary
    assert np.mean([204 / 255] * 3) != 204 / 255


def test_sor_cvpr_reads_8bit_levels():
    masks = np.zeros((2, 1, 4), bool)
    masks[0, 0, :2] = True
    masks[1, 0, 2:] = True
    # 0.8 and 0.8004 are both level 204 once read as ASSR's 8-bit PNG: a tie, image not used
    pred = np.array([[0.8, 0.8, 0.8004, 0.8004]])
    assert math.isnan(image_sor(pred, masks, [1, 2], "assr-cvpr"))
    pred = np.array([[1.0, 1.0, 0.6, 0.6]])
    assert image_sor(pred, masks, [1, 2], "assr-cvpr") == pytest.approx(1.0)
    assert image_sor(pred, masks, [2, 1], "assr-cvpr") == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="unknown 'mean'"):
        image_sor(pred, masks, [1, 2], "mean")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_sor(pred * 255, masks, [1, 2])


def test_sor_ijcv_empty_mask_makes_image_unused():
    # ASSR divides by the pixel count: an empty GT mask gives NaN and a NaN rho
    masks = np.zeros((3, 2, 2), bool)
    masks[0, 0] = True
    masks[1, 1] = True
    pred = np.array([[1.0, 1.0], [0.6, 0.6]])
    assert image_sor(pred, masks[:2], [1, 2], "assr-ijcv") == pytest.approx(1.0)
    assert math.isnan(image_sor(pred, masks, [1, 2, 3], "assr-ijcv"))


# ----------------------------------------------------------------------------- rank maps, MAE


def test_assr_painting_less_salient_on_top():
    # A = (0,0),(0,1) rank 1, B = (0,1),(0,2) rank 2: ASSR paints A first, B over it
    masks = np.zeros((2, 1, 3), bool)
    masks[0, 0, :2] = True
    masks[1, 0, 1:] = True
    assert (paint_rank_map(masks, [1, 2], "assr")[0] * 255).tolist() == [255, 229, 229]
    # equal ranks: ASSR's sorted((score, index), reverse=True) puts the higher index first
    assert (paint_rank_map(masks, [1, 1], "assr")[0] * 255).tolist() == [229, 229, 255]


def test_irsr_mae_paints_in_list_order():
    # 1x3 image, GT A = [1,1,0] (IRSR rank 1), B = [0,1,1] (IRSR rank 0); predictions [1,0,0]
    # (score .9) and [0,0,1] (score .1): GT map [1, .5, .5], predicted map [1, 0, .5] -> 1/6
    gt = np.array([[[1, 1, 0]], [[0, 1, 1]]], bool)
    pred = np.array([[[1, 0, 0]], [[0, 0, 1]]], bool)
    gt_map = paint_rank_map(gt, [1, 2], "irsr")
    pred_map = paint_rank_map(pred, [1, 2], "irsr")
    assert gt_map[0].tolist() == [1.0, 0.5, 0.5] and pred_map[0].tolist() == [1.0, 0.0, 0.5]
    assert image_mae(pred_map, gt_map) == pytest.approx(1 / 6)


def test_irsr_painting_ties_share_the_lower_value():
    # IRSR: (sorted(scores).index(s) + 1) / count, equal scores share the lower position
    masks = np.eye(3, dtype=bool)[:, None, :]
    assert paint_rank_map(masks, [1, 1, 2], "irsr")[0].tolist() == [2 / 3, 2 / 3, 1 / 3]
    assert paint_rank_map(masks, [1, 0, 2], "irsr")[0].tolist() == [1.0, 0.0, 0.5]


# ----------------------------------------------------------------------------- SA-SOR

GT3 = np.array([[0, 0, 4, 4], [6, 0, 10, 4], [0, 6, 4, 10]], float)
GT3_RANKS = [1, 2, 3]  # IRSR ranks 2, 1, 0
PRED3 = np.array([[0, 0, 4, 4], [6, 0, 10, 4], [6, 6, 10, 10]], float)
PRED3_RANKS = [3, 1, 2]  # scores .2, .4, .3


def _paint_boxes(boxes, size=10):
    out = np.zeros((len(boxes), size, size), bool)
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, int)):
        out[k, y1:y2, x1:x2] = True
    return out


def test_sa_sor_irsr_counts_matched_predictions_only_when_not_outnumbered():
    # 3 GT, 3 predictions: IRSR ranks the two matched predictions among themselves (1, 2), GT 2
    # is missed (0): corr((1, 2, 0), (3, 2, 1)) = 0.5
    assert image_sa_sor(PRED3, PRED3_RANKS, GT3, GT3_RANKS, variant="irsr") == pytest.approx(0.5)
    assert image_sa_sor(_paint_boxes(PRED3), PRED3_RANKS, _paint_boxes(GT3), GT3_RANKS) == pytest.approx(0.5)
    # over all predictions (1, 3, 0): salrank's earlier reading and SeqRank = 3 / sqrt(84)
    for variant in ("salrank", "seqrank"):
        assert image_sa_sor(PRED3, PRED3_RANKS, GT3, GT3_RANKS, variant=variant) == pytest.approx(3 / math.sqrt(84))
    # one more false positive: now IRSR also counts every prediction (1, 3, 0 -> 2, 4, 0)
    more = np.vstack([PRED3, [[20, 20, 30, 30]]])
    got = image_sa_sor(more, [3, 1, 2, 4], GT3, GT3_RANKS, variant="irsr")
    assert got == pytest.approx(np.corrcoef([2, 4, 0], [3, 2, 1])[0, 1])


def test_sa_sor_irsr_conflict_and_equal_iou_follow_argsort():
    # two GT want one prediction with equal IoU: IRSR keeps the claimant that numpy's argsort
    # puts last (the later GT with numpy's sorts on rows this short)
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10]], float)
    iou = iou_matrix(gt, pred)
    winner = np.array([0, 1])[iou[:, 0][[0, 1]].argsort()[-1]]
    expected = np.full(2, -1)
    expected[winner] = 0
    np.testing.assert_array_equal(match_boxes(pred, gt, variant="irsr"), expected)
    assert match_boxes(pred, gt, variant="salrank").tolist() == [0, -1]  # the earlier GT
    # higher IoU wins, the loser does not fall back to its second choice
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 12]], float)
    pred = np.array([[0, 0, 10, 11], [0, 0, 10, 9]], float)
    assert match_boxes(pred, gt, variant="irsr").tolist() == [-1, 0]
    # one GT, two identical predictions: the best column is numpy's last of the argsort
    gt = np.array([[0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    assert match_boxes(pred, gt, variant="irsr")[0] == iou_matrix(gt, pred).argsort()[0, -1]
    assert match_boxes(pred, gt, variant="salrank")[0] == 0


def test_sa_sor_seqrank_hungarian_is_one_to_one():
    # both GT like p0 best; best-IoU matching (IRSR, salrank) gives p0 to GT 1 (IoU 11/12 > 10/11)
    # and misses GT 0; SeqRank's Hungarian maximises the total IoU: GT 0 - p1 (.9), GT 1 - p0
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 12]], float)
    pred = np.array([[0, 0, 10, 11], [0, 0, 10, 9]], float)
    assert match_boxes(pred, gt, variant="seqrank").tolist() == [1, 0]
    assert match_boxes(pred, gt, variant="irsr").tolist() == [-1, 0]
    assert match_boxes(pred, gt, variant="salrank").tolist() == [-1, 0]
    # predictions ranked p1 over p0 as GT 0 over GT 1: SeqRank 1.0, IRSR (0, 1) vs (2, 1) -> -1
    assert image_sa_sor(pred, [2, 1], gt, [1, 2], variant="seqrank") == pytest.approx(1.0)
    assert image_sa_sor(pred, [2, 1], gt, [1, 2], variant="irsr") == pytest.approx(-1.0)
    # SeqRank counts a pair only when IoU > 0.5 (IRSR: >= 0.5)
    half = np.array([[0, 0, 10, 10]], float), np.array([[0, 0, 10, 5]], float)
    assert match_boxes(half[1], half[0], variant="seqrank").tolist() == [-1]
    assert match_boxes(half[1], half[0], variant="irsr").tolist() == [0]


def test_mean_sa_sor_nan_rules():
    images = [
        {"pred_boxes": GT3, "pred_ranks": GT3_RANKS, "gt_boxes": GT3, "gt_ranks": GT3_RANKS},  # 1.0
        {"pred_boxes": GT3[:1], "pred_ranks": [1], "gt_boxes": GT3[:1], "gt_ranks": [1]},  # one GT
        {"pred_boxes": np.zeros((0, 4)), "pred_ranks": [], "gt_boxes": GT3, "gt_ranks": GT3_RANKS},
    ]
    irsr = mean_sa_sor(images, variant="irsr")  # nothing predicted -> 0, one GT -> excluded
    assert irsr == {"sa_sor": pytest.approx(0.5), "n_images": 3, "n_excluded": 1, "n_zero": 0, "variant": "irsr"}
    seq = mean_sa_sor(images, variant="seqrank")  # NaN (one GT, constant prediction) counts 0
    assert seq == {"sa_sor": pytest.approx(1 / 3), "n_images": 3, "n_excluded": 0, "n_zero": 2,
                   "variant": "seqrank"}
    with pytest.raises(ValueError, match="unknown 'assr'"):
        mean_sa_sor(images, variant="assr")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=2, max_size=6), st.sampled_from(["irsr", "seqrank", "salrank"]))
def test_sa_sor_perfect_and_reversed(ranks, variant):
    n = len(ranks)
    boxes = np.array([[20 * k, 0, 20 * k + 10, 10] for k in range(n)], float)  # disjoint
    distinct = np.argsort(np.argsort(ranks, kind="stable"), kind="stable") + 1
    assert image_sa_sor(boxes, distinct, boxes, distinct, variant=variant) == pytest.approx(1.0)
    assert image_sa_sor(boxes, n + 1 - distinct, boxes, distinct, variant=variant) == pytest.approx(-1.0)
    # with tied predicted ranks the result still lies in [-1, 1] (or is NaN)
    got = image_sa_sor(boxes, ranks, boxes, distinct, variant=variant)
    assert math.isnan(got) or -1 - 1e-12 <= got <= 1 + 1e-12


def test_iou_matrix_masks_and_errors():
    a = _paint_boxes([[0, 0, 4, 4]])
    b = _paint_boxes([[2, 0, 6, 4], [0, 0, 0, 0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[8 / 24, 0.0]])
    np.testing.assert_allclose(iou_matrix(a, b, "seqrank"), [[8 / (24 + 1e-6), 0.0]])
    np.testing.assert_allclose(iou_matrix([[0, 0, 4, 4]], [[2, 0, 6, 4]]), [[1 / 3]])
    with pytest.raises(ValueError, match="both boxes or both masks"):
        iou_matrix(a, np.array([[0, 0, 4, 4]], float))
    with pytest.raises(ValueError, match="expected boxes"):
        image_sa_sor(np.zeros((2, 3)), [1, 2], GT3[:2], [1, 2])
