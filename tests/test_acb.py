"""Adaptive circulative bagging: sequence construction, vote aggregation, batched == per image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from salrank.fosrnet.acb import (
    aggregate_sequence_classes,
    aggregate_sequence_classes_batched,
    circulative_order,
    circulative_sequences,
    circulative_sequences_batched,
    rank_sequences_batched,
    rank_sequences_loop,
)
from salrank.fosrnet.heads import create_head

# Box centres: 0 (5, 5), 1 (105, 5), 2 (25, 5), 3 (55, 5), 4 (305, 305), 5 (10, 10).
# Distances to box 0: 5 -> 7.07, 2 -> 20, 3 -> 50, 1 -> 100, 4 -> 424.3.
BOXES = np.array(
    [[0, 0, 10, 10], [100, 0, 110, 10], [20, 0, 30, 10], [50, 0, 60, 10], [300, 300, 310, 310], [5, 5, 15, 15]],
    dtype=float,
)


def test_order_hand_geometry():
    assert circulative_order(BOXES).tolist() == [0, 5, 2, 3, 1, 4]
    # From box 3 (55, 5): 2 -> 30, 0 -> 50, 1 -> 50 (tie: index 0 first), 5 -> 45.3, 4 -> 353.6.
    assert circulative_order(BOXES, center=3).tolist() == [3, 2, 5, 0, 1, 4]


def test_sequences_more_than_k():
    expected = [
        [0, 5, 2, 3, 1],
        [5, 2, 3, 1, 4],
        [2, 3, 1, 4, 0],
        [3, 1, 4, 0, 5],
        [1, 4, 0, 5, 2],
        [4, 0, 5, 2, 3],
    ]
    seq = circulative_sequences(BOXES, k=5)
    assert seq.dtype == np.int64
    assert seq.tolist() == expected


def test_sequences_k_or_fewer_is_one_padded_sequence():
    # First three boxes: centres (5,5), (105,5), (25,5) -> order 0, 2, 1.
    assert circulative_sequences(BOXES[:3]).tolist() == [[0, 2, 1, -1, -1]]
    assert circulative_sequences(BOXES[:1]).tolist() == [[0, -1, -1, -1, -1]]
    assert circulative_sequences(BOXES[:5]).tolist() == [[0, 2, 3, 1, 4]]  # n == k: one sequence, no dummy
    assert circulative_sequences(np.zeros((0, 4))).shape == (0, 5)


def test_ties_broken_by_index():
    centres = np.array([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1], [0, 2]], dtype=float)
    assert circulative_order(centres).tolist() == [0, 1, 2, 3, 4, 5]
    # (n, 2) centres and the equivalent boxes give the same sequences
    boxes = np.concatenate([centres - 1, centres + 1], axis=1)
    assert np.array_equal(circulative_sequences(centres, k=3), circulative_sequences(boxes, k=3))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(6, 40), k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_each_proposal_in_exactly_k_sequences(n, k, seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, size=(n, 2)).round(0)  # rounding produces distance ties
    seq = circulative_sequences(np.concatenate([xy, xy + 5], axis=1), k=k)
    assert seq.shape == (n, k)
    assert np.array_equal(np.bincount(seq.ravel(), minlength=n), np.full(n, k))
    assert all(len(set(row)) == k for row in seq.tolist())
    assert np.array_equal(seq[1:, :-1], seq[:-1, 1:])  # circulative shift
    assert seq[0, 0] == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="boxes"):
        circulative_sequences(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        circulative_sequences(np.array([[0, 0, 1, np.nan]]))
    with pytest.raises(ValueError, match="center"):
        circulative_sequences(BOXES, center=6)
    with pytest.raises(ValueError, match="k"):
        circulative_sequences(BOXES, k=0)


def test_aggregate_hand_case():
    seq = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]])
    cls = np.array([[2, 1, 0], [0, 2, 1], [1, 0, 2], [2, 0, 1]])
    votes, ranks = aggregate_sequence_classes(seq, cls, 4)
    assert votes.tolist() == [4, 2, 3, 3]
    assert ranks.tolist() == [1, 4, 2, 3]  # 2 and 3 tie on 3 votes: lower index first


def test_aggregate_ignores_dummies_and_checks_indices():
    votes, ranks = aggregate_sequence_classes([[0, 1, -1]], [[1, 2, 0]], 2)
    assert votes.tolist() == [1, 2] and ranks.tolist() == [2, 1]
    with pytest.raises(ValueError, match="indices"):
        aggregate_sequence_classes([[0, 5, -1]], [[1, 2, 0]], 2)
    with pytest.raises(ValueError, match="shape"):
        aggregate_sequence_classes([[0, 1]], [[1, 2, 0]], 2)


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(0, 12), min_size=0, max_size=6), seed=st.integers(0, 2**16))
def test_batched_aggregation_equals_per_image(counts, seed):
    rng = np.random.default_rng(seed)
    boxes = [rng.uniform(0, 50, size=(n, 4)) for n in counts]
    batch = circulative_sequences_batched(boxes, k=5)
    assert batch.n_images == len(counts) and batch.n_proposals == sum(counts)
    classes = rng.integers(0, 5, size=batch.sequences.shape)
    votes, ranks = aggregate_sequence_classes_batched(batch, classes)
    for i, (b, v, r) in enumerate(zip(boxes, batch.split(votes), batch.split(ranks), strict=True)):
        own = batch.image_of_sequence == i
        v1, r1 = aggregate_sequence_classes(circulative_sequences(b), classes[own], len(b))
        assert np.array_equal(v, v1) and np.array_equal(r, r1)
        assert sorted(r.tolist()) == list(range(1, len(b) + 1))


def test_loop_and_batched_ranking_agree():
    torch.manual_seed(0)
    head = create_head("vit", in_dim=16, width=32, depth=1, num_heads=2).eval()
    rng = np.random.default_rng(1)
    boxes = [rng.uniform(0, 100, size=(n, 4)) for n in (3, 7, 12)]
    tokens = torch.randn(22, 16)
    batch = circulative_sequences_batched(boxes)
    votes, ranks = rank_sequences_batched(head, tokens, batch)
    chunked = rank_sequences_batched(head, tokens, batch, max_sequences=4)[1]
    assert np.array_equal(ranks, chunked)
    for idx, b, v, r in zip(batch.split(np.arange(22)), boxes, batch.split(votes), batch.split(ranks), strict=True):
        v1, r1 = rank_sequences_loop(head, tokens[idx], b)
        assert np.allclose(v, v1) and np.array_equal(r, r1)
