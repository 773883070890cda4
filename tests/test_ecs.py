"""Exclusive classification: distinct classes, optimality against brute force, dummy slots."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from salrank.fosrnet.ecs import (
    argmax_classes,
    assignment_cost,
    exclusive_classes,
    exclusive_classes_batched,
    score_positions,
    sequence_classes,
)

# Rows 0 and 1 both prefer class 0; row 0 has a strong second choice (class 1).
COLLIDING = np.array([[5.0, 4.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])


def brute_force_min_cost(cost: np.ndarray) -> float:
    k = cost.shape[0]
    return min(sum(cost[i, p[i]] for i in range(k)) for p in itertools.permutations(range(k)))


@pytest.mark.parametrize("cost", ["log-softmax", "exp-neg-logit"])
def test_hand_case_resolves_collision(cost):
    assert argmax_classes(COLLIDING).tolist() == [0, 0, 2]
    assert exclusive_classes(COLLIDING, cost=cost).tolist() == [1, 0, 2]
    assert exclusive_classes(torch.tensor(COLLIDING), cost=cost).tolist() == [1, 0, 2]


logit_mats = st.integers(1, 5).flatmap(
    lambda k: arrays(np.float64, (k, k), elements=st.floats(-20, 20, allow_nan=False, allow_infinity=False))
)


@settings(max_examples=120, deadline=None)
@given(logits=logit_mats, cost=st.sampled_from(["log-softmax", "exp-neg-logit"]))
def test_optimal_permutation_matches_brute_force(logits, cost):
    k = logits.shape[0]
    classes = exclusive_classes(logits, cost=cost)
    assert sorted(classes.tolist()) == list(range(k))
    c = assignment_cost(logits, cost)
    best = brute_force_min_cost(c)
    got = c[np.arange(k), classes].sum()
    assert got == pytest.approx(best, rel=1e-9, abs=1e-9)
    for method in ("enumerate", "scipy"):
        batched = exclusive_classes_batched(logits[None], cost=cost, method=method)[0]
        assert sorted(batched.tolist()) == list(range(k))
        assert c[np.arange(k), batched].sum() == pytest.approx(best, rel=1e-9, abs=1e-9)


def test_batched_equals_single_on_random_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 5, 5)) * 3
    single = np.stack([exclusive_classes(x) for x in logits])
    assert np.array_equal(exclusive_classes_batched(logits, method="enumerate"), single)
    assert np.array_equal(exclusive_classes_batched(torch.tensor(logits), method="scipy"), single)
    assert exclusive_classes_batched(np.zeros((0, 5, 5))).shape == (0, 5)


@pytest.mark.parametrize("method", ["enumerate", "scipy"])
def test_dummy_slots_take_leftover_classes(method):
    # Valid rows 0 and 1 prefer classes 2 and 0; dummy row 2 gets the leftover class 1.
    logits = np.array([[0.0, 0.0, 9.0], [9.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    mask = np.array([False, False, True])
    assert exclusive_classes(logits, mask=mask).tolist() == [2, 0, 1]
    assert exclusive_classes_batched(logits[None], mask=mask[None], method=method)[0].tolist() == [2, 0, 1]
    # whatever the dummy row contains, the valid rows are unaffected
    logits[2] = [50.0, 50.0, 50.0]
    logits[2, 0] = 100.0
    assert exclusive_classes(logits, mask=mask).tolist() == [2, 0, 1]
    assert exclusive_classes_batched(logits[None], mask=mask[None], method=method)[0].tolist() == [2, 0, 1]
    # two dummies: ascending leftovers
    mask2 = np.array([[False, True, True]])
    assert exclusive_classes_batched(logits[None], mask=mask2, method=method)[0].tolist() == [2, 0, 1]


def test_rectangular_and_all_dummy():
    logits = np.array([[0.0, 1.0, 0.0, 3.0], [0.0, 0.0, 0.0, 4.0]])
    # both want class 3; row 1 wants it more: row 0 takes its next best, class 1
    assert exclusive_classes(logits).tolist() == [1, 3]
    assert exclusive_classes(np.zeros((3, 3)), mask=[True, True, True]).tolist() == [0, 1, 2]


def test_exp_neg_logit_cost_stays_finite():
    logits = np.array([[-1000.0, 0.0], [0.0, -1000.0]])
    assert np.isfinite(assignment_cost(logits, "exp-neg-logit")).all()
    assert exclusive_classes(logits, cost="exp-neg-logit").tolist() == [1, 0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="cost"):
        exclusive_classes(np.zeros((2, 2)), cost="max")
    with pytest.raises(ValueError, match="NaN"):
        exclusive_classes(np.array([[0.0, np.nan], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="classes"):
        exclusive_classes(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(B, k, C\)"):
        exclusive_classes_batched(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="method"):
        exclusive_classes_batched(np.zeros((1, 3, 3)), method="greedy")
    with pytest.raises(ValueError, match="square"):
        exclusive_classes_batched(np.zeros((1, 2, 3)), method="enumerate")
    with pytest.raises(ValueError, match="mask"):
        exclusive_classes(np.zeros((3, 3)), mask=[True])


def test_score_positions_and_dispatch():
    scores = np.array([[0.2, 0.9, 0.5, 7.0], [1.0, 1.0, 0.0, 0.0]])
    mask = np.array([[False, False, False, True], [False, False, False, False]])
    # row 0: ascending 0.2 < 0.5 < 0.9 -> 0, 2, 1; dummy last; row 1: tie -> lower index more salient
    assert score_positions(scores, mask).tolist() == [[0, 2, 1, 3], [3, 2, 1, 0]]
    assert np.array_equal(sequence_classes(scores, mask), score_positions(scores, mask))
    assert sequence_classes(COLLIDING[None], use_hungarian=False).tolist() == [[0, 0, 2]]
    assert sequence_classes(COLLIDING[None]).tolist() == [[1, 0, 2]]
