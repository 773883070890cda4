"""Exclusive classification (ECS, paper Sec. III-C3): give the k proposals of one sequence k
distinct rank classes by a minimum-cost assignment (Hungarian algorithm).

Classes follow the official label convention: within a sequence, class ``c`` is a position in
ascending order of saliency, ``0`` = least salient ... ``k - 1`` = most salient.

Assignment costs (``cost=``), for logits ``L`` of shape ``(k, C)`` (rows = proposals, columns
= classes):

* ``"log-softmax"`` (project default): ``-log_softmax(L, axis=1)``, i.e. maximise the joint
  log-probability of the assignment under the per-proposal softmax;
* ``"exp-neg-logit"`` (the official code's variant): ``exp(-L)``.

Dummy slots (padding of sequences with fewer than k proposals, ``mask`` True) do not take
part in the optimisation: the valid proposals choose among all C classes, and the classes left
over are then given to the dummy slots in ascending order. Callers discard dummy outputs.

Inputs may be numpy arrays or torch tensors (detached and moved to the CPU); outputs are
always numpy ``int64`` arrays.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import log_softmax

COSTS = ("log-softmax", "exp-neg-logit")
BATCH_METHODS = ("auto", "enumerate", "scipy")
#: Largest k for which ``method="auto"`` enumerates all k! assignments (6! = 720).
MAX_ENUMERATE_K = 6
_CHUNK = 4096


def _as_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name}: expected a numeric array, got dtype=object")
    return arr


def _as_mask(mask, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    if mask is None:
        return np.zeros(shape, dtype=bool)
    m = _as_numpy(mask, name).astype(bool)
    if m.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {m.shape}")
    return m


def assignment_cost(logits, cost: str = "log-softmax") -> np.ndarray:
    """Cost matrix (float64, same shape as ``logits``, classes on the last axis) for the assignment."""
    x = _as_numpy(logits, "logits").astype(np.float64)
    if cost == "log-softmax":
        return -log_softmax(x, axis=-1)
    if cost == "exp-neg-logit":
        # exp overflows to inf below about -709; cap it so the assignment stays feasible.
        return np.exp(np.minimum(-x, 700.0))
    raise ValueError(f"unknown cost {cost!r}; expected one of {COSTS}")


def _check_logits(x: np.ndarray, batched: bool) -> None:
    want = 3 if batched else 2
    if x.ndim != want:
        raise ValueError(f"logits: expected {'(B, k, C)' if batched else '(k, C)'}, got shape {x.shape}")
    if x.shape[-1] < x.shape[-2]:
        raise ValueError(f"logits: need at least as many classes as proposals, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("logits: contain NaN or inf")


def _fill_dummies(classes: np.ndarray, valid: np.ndarray, n_classes: int) -> np.ndarray:
    """Give the classes not taken by valid rows to the dummy rows, in ascending order."""
    dummies = np.flatnonzero(~valid)
    if dummies.size:
        left = np.setdiff1d(np.arange(n_classes), classes[valid])
        classes[dummies] = left[: dummies.size]
    return classes


def exclusive_classes(logits, cost: str = "log-softmax", mask=None) -> np.ndarray:
    """Distinct classes for the proposals of one sequence.

    Parameters
    ----------
    logits : (k, C) array or tensor, C >= k; rows = proposals, columns = classes.
    cost : ``"log-softmax"`` (default) or ``"exp-neg-logit"`` (official code), see module doc.
    mask : optional (k,) bool, True = dummy slot (gets a leftover class; discard it).

    Returns
    -------
    (k,) int64 class per proposal, all distinct (a permutation of 0..k-1 when C == k).
    """
    x = _as_numpy(logits, "logits")
    _check_logits(x, batched=False)
    k, n_classes = x.shape
    valid = ~_as_mask(mask, (k,))
    c = assignment_cost(x, cost)
    classes = np.full(k, -1, dtype=np.int64)
    rows = np.flatnonzero(valid)
    if rows.size:
        r, col = linear_sum_assignment(c[rows])
        classes[rows[r]] = col
    return _fill_dummies(classes, valid, n_classes)


@lru_cache(maxsize=8)
def _permutation_table(k: int) -> tuple[np.ndarray, np.ndarray]:
    perms = np.array(list(itertools.permutations(range(k))), dtype=np.int64)  # (k!, k), lexicographic
    flat = np.arange(k)[None, :] * k + perms  # index into a row-major (k, k) matrix
    return perms, flat


def _enumerate_batched(c: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Exact minimum-cost permutations for square (B, k, k) costs by checking all k! of them."""
    b, k, _ = c.shape
    perms, flat = _permutation_table(k)
    c = np.where(valid[:, :, None], c, 0.0).reshape(b, k * k)  # dummy rows cost nothing
    best = np.empty(b, dtype=np.int64)
    for s in range(0, b, _CHUNK):
        totals = c[s : s + _CHUNK][:, flat].sum(axis=2)  # (chunk, k!)
        best[s : s + _CHUNK] = np.argmin(totals, axis=1)
    classes = perms[best].copy()
    for i in np.flatnonzero(~valid.all(axis=1)):
        classes[i] = _fill_dummies(classes[i], valid[i], k)
    return classes


def exclusive_classes_batched(
    logits, cost: str = "log-softmax", mask=None, method: str = "auto"
) -> np.ndarray:
    """:func:`exclusive_classes` for a batch of sequences at once.

    Parameters
    ----------
    logits : (B, k, C) array or tensor.
    cost : see :func:`exclusive_classes`.
    mask : optional (B, k) bool, True = dummy slot.
    method : ``"enumerate"`` scores all k! permutations of every sequence in one vectorised
        numpy pass (exact; needs C == k; ties go to the lexicographically first permutation,
        which may differ from scipy's choice on exact ties while having the same total cost);
        ``"scipy"`` calls :func:`scipy.optimize.linear_sum_assignment` per sequence;
        ``"auto"`` (default) enumerates when C == k <= :data:`MAX_ENUMERATE_K`.

    Returns
    -------
    (B, k) int64 classes; each row distinct.
    """
    if method not in BATCH_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {BATCH_METHODS}")
    x = _as_numpy(logits, "logits")
    _check_logits(x, batched=True)
    b, k, n_classes = x.shape
    valid = ~_as_mask(mask, (b, k))
    if method == "auto":
        method = "enumerate" if n_classes == k <= MAX_ENUMERATE_K else "scipy"
    if method == "enumerate" and n_classes != k:
        raise ValueError(f"method='enumerate' needs square logits, got shape {x.shape}")
    if b == 0:
        return np.zeros((0, k), dtype=np.int64)
    c = assignment_cost(x, cost)
    if method == "enumerate":
        return _enumerate_batched(c, valid)
    out = np.empty((b, k), dtype=np.int64)
    for i in range(b):
        classes = np.full(k, -1, dtype=np.int64)
        rows = np.flatnonzero(valid[i])
        if rows.size:
            r, col = linear_sum_assignment(c[i][rows])
            classes[rows[r]] = col
        out[i] = _fill_dummies(classes, valid[i], n_classes)
    return out


def argmax_classes(logits) -> np.ndarray:
    """Plain per-proposal argmax (no exclusivity): the Table II "without HA" ablation. (..., C) -> (...)."""
    return _as_numpy(logits, "logits").argmax(axis=-1).astype(np.int64)


def score_positions(scores, mask=None) -> np.ndarray:
    """Classes from one score per proposal (regression head): position in ascending score order.

    ``scores`` (B, k); valid proposals get 0..m-1 (ties: the lower index gets the higher class,
    matching "ties broken by the lower index" for ranks); dummies get m..k-1. Returns (B, k) int64.
    """
    s = _as_numpy(scores, "scores").astype(np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores: expected (B, k), got shape {s.shape}")
    b, k = s.shape
    valid = ~_as_mask(mask, (b, k))
    # Sort key: valid before dummies, then descending score, then ascending index.
    key = np.where(valid, -s, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(k), (b, k)), key), axis=-1)
    pos = np.empty((b, k), dtype=np.int64)
    np.put_along_axis(pos, order, np.broadcast_to(np.arange(k), (b, k)), axis=1)
    m = valid.sum(axis=1, keepdims=True)
    return np.where(valid, m - 1 - pos, pos)


def sequence_classes(outputs, mask=None, use_hungarian: bool = True, cost: str = "log-softmax") -> np.ndarray:
    """Classes from a head's output: (B, k, C) logits -> ECS (or argmax), (B, k) scores -> positions."""
    x = _as_numpy(outputs, "outputs")
    if x.ndim == 2:
        return score_positions(x, mask)
    if x.ndim != 3:
        raise ValueError(f"outputs: expected (B, k, C) logits or (B, k) scores, got shape {x.shape}")
    if use_hungarian:
        return exclusive_classes_batched(x, cost=cost, mask=mask)
    return argmax_classes(x)
