"""Adaptive circulative bagging (ACB, paper Sec. III-C3, eq. 9-10).

A ranking head sees a fixed number ``k`` (= 5) of proposals at a time. For an image with n
proposals:

1. ``Q_0`` = proposal ``center`` (default 0, the detector's highest-scoring box); the other
   proposals follow in ascending distance of their box centre to ``Q_0``'s centre (ties: lower
   proposal index first). Distances are in the units of the boxes given (pixels for
   ``[x1, y1, x2, y2]`` boxes of the original image).
2. n > k: ``Seq_i = [Q_((i + j) mod n) for j in 0..k-1]``, ``i = 0..n-1`` -> n sequences, every
   proposal in exactly k of them. n <= k: ONE sequence, the n proposals in that order padded
   with dummy slots (index ``-1``). n == 0: no sequence.
3. Each sequence gets distinct classes (ECS, :mod:`salrank.fosrnet.ecs`; 0 = least salient); a
   proposal's votes = the sum of its classes over its sequences; final rank 1 = most votes
   (ties: lower proposal index first), ranks 1..n.

Single-image functions work on per-image proposal indices; the ``*_batched`` functions handle
many images at once with indices into the concatenation of all images' proposals, so that all
sequences of all images go through the head in one forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from salrank.fosrnet.ecs import exclusive_classes, sequence_classes

DUMMY = -1


def _centres(boxes, name: str = "boxes") -> np.ndarray:
    """(n, 2) centres from (n, 4) boxes ``[x1, y1, x2, y2]`` or (n, 2) points ``(x, y)``."""
    if hasattr(boxes, "detach"):
        boxes = boxes.detach().cpu().numpy()
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim == 1 and b.size == 0:
        b = b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] not in (2, 4):
        raise ValueError(f"{name}: expected (n, 4) boxes [x1, y1, x2, y2] or (n, 2) centres, got {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name}: contains NaN or inf")
    if b.shape[1] == 2:
        return b
    return np.stack([(b[:, 0] + b[:, 2]) / 2.0, (b[:, 1] + b[:, 3]) / 2.0], axis=1)


def circulative_order(boxes, center: int = 0) -> np.ndarray:
    """Proposal indices in ACB order: ``center`` first, then by centre distance to it (ties by index).

    ``boxes``: (n, 4) ``[x1, y1, x2, y2]`` or (n, 2) centres ``(x, y)``. Returns (n,) int64.
    """
    c = _centres(boxes)
    n = len(c)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not 0 <= center < n:
        raise ValueError(f"center: index {center} out of range for {n} proposals")
    d = np.hypot(c[:, 0] - c[center, 0], c[:, 1] - c[center, 1])
    d[center] = -1.0  # always first
    return np.lexsort((np.arange(n), d)).astype(np.int64)


def circulative_sequences(boxes, k: int = 5, center: int = 0) -> np.ndarray:
    """The ACB sequences of one image (eq. 9).

    Parameters
    ----------
    boxes : (n, 4) boxes ``[x1, y1, x2, y2]`` in pixels (or (n, 2) centres).
    k : proposals per sequence.
    center : index of ``Q_0`` (default 0 = highest detector score).

    Returns
    -------
    (n_sequences, k) int64 proposal indices, ``-1`` for dummy slots: n sequences when n > k,
    one padded sequence when 1 <= n <= k, none when n == 0.
    """
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k}")
    order = circulative_order(boxes, center)
    n = len(order)
    if n == 0:
        return np.zeros((0, k), dtype=np.int64)
    if n <= k:
        seq = np.full((1, k), DUMMY, dtype=np.int64)
        seq[0, :n] = order
        return seq
    rolled = (np.arange(n)[:, None] + np.arange(k)[None, :]) % n
    return order[rolled]


def _ranks_from_votes(votes: np.ndarray) -> np.ndarray:
    n = len(votes)
    order = np.lexsort((np.arange(n), -votes))
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(1, n + 1)
    return ranks


def aggregate_sequence_classes(sequences, classes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Votes and final ranks of one image's proposals (eq. 10).

    ``sequences`` (S, k) indices (``-1`` = dummy, ignored), ``classes`` (S, k) assigned classes
    (higher = more salient), ``n`` the number of proposals. Returns ``votes`` (n,) float64 = sum
    of each proposal's classes and ``ranks`` (n,) int64 in 1..n (1 = most votes; ties by lower index).
    """
    seq = np.asarray(sequences, dtype=np.int64)
    cls = np.asarray(classes, dtype=np.float64)
    if seq.shape != cls.shape or seq.ndim != 2:
        raise ValueError(f"sequences {seq.shape} and classes {cls.shape} must have the same (S, k) shape")
    if seq.size and (seq.max() >= n or seq.min() < DUMMY):
        raise ValueError(f"sequences: indices must be in -1..{n - 1}")
    valid = seq >= 0
    votes = np.bincount(seq[valid], weights=cls[valid], minlength=n).astype(np.float64)
    return votes, _ranks_from_votes(votes)


@dataclass(frozen=True)
class SequenceBatch:
    """ACB sequences of many images, indexing the concatenation of their proposals.

    ``sequences`` (S, k) int64 global indices (``-1`` dummy); ``image_of_sequence`` (S,);
    ``offsets`` (I + 1,) start of each image's proposals in the concatenation.
    """

    sequences: np.ndarray
    image_of_sequence: np.ndarray
    offsets: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_images(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_proposals(self) -> int:
        return int(self.offsets[-1])

    @property
    def mask(self) -> np.ndarray:
        """(S, k) bool, True for dummy slots."""
        return self.sequences < 0

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Split a per-proposal array over the concatenation into one array per image."""
        values = np.asarray(values)
        if len(values) != self.n_proposals:
            raise ValueError(f"values: {len(values)} rows for {self.n_proposals} proposals")
        if self.n_images == 0:
            return []
        return np.split(values, self.offsets[1:-1])


def circulative_sequences_batched(boxes_list: Sequence, k: int = 5, centers: Sequence[int] | None = None) -> SequenceBatch:
    """:func:`circulative_sequences` of every image, with indices into the concatenated proposals."""
    if centers is not None and len(centers) != len(boxes_list):
        raise ValueError(f"centers: {len(centers)} values for {len(boxes_list)} images")
    seqs, owners, counts = [], [], []
    offset = 0
    for i, boxes in enumerate(boxes_list):
        s = circulative_sequences(boxes, k, 0 if centers is None else int(centers[i]))
        n = len(_centres(boxes, f"boxes_list[{i}]"))
        seqs.append(np.where(s >= 0, s + offset, DUMMY))
        owners.append(np.full(len(s), i, dtype=np.int64))
        counts.append(n)
        offset += n
    sequences = np.concatenate(seqs) if seqs else np.zeros((0, k), dtype=np.int64)
    owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
    return SequenceBatch(sequences.astype(np.int64), owner, offsets)


def aggregate_sequence_classes_batched(batch: SequenceBatch, classes) -> tuple[np.ndarray, np.ndarray]:
    """Votes and per-image ranks for all images of ``batch`` in one vectorised pass.

    ``classes`` (S, k). Returns ``votes`` (N,) and ``ranks`` (N,) over the concatenated proposals
    (ranks restart at 1 for every image); use ``batch.split`` for per-image arrays.
    """
    cls = np.asarray(classes, dtype=np.float64)
    if cls.shape != batch.sequences.shape:
        raise ValueError(f"classes: expected shape {batch.sequences.shape}, got {cls.shape}")
    n = batch.n_proposals
    valid = batch.sequences >= 0
    votes = np.zeros(n, dtype=np.float64)
    np.add.at(votes, batch.sequences[valid], cls[valid])
    image = np.repeat(np.arange(batch.n_images), batch.counts)
    order = np.lexsort((np.arange(n), -votes, image))
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n) - batch.offsets[image[order]] + 1
    return votes, ranks


HeadFn = Callable  # (x (B, k, D) tensor, mask (B, k) bool tensor) -> (B, k, C) logits or (B, k) scores


def _gather_tokens(tokens, sequences: np.ndarray):
    import torch

    idx = torch.as_tensor(sequences, device=tokens.device)
    mask = idx < 0
    x = tokens[idx.clamp(min=0)]  # (S, k, D)
    x = x.masked_fill(mask[..., None], 0.0)  # dummy slots are empty (zero) nodes
    return x, mask


def rank_sequences_loop(
    head: HeadFn, tokens, boxes, k: int = 5, cost: str = "log-softmax", center: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Reference implementation, one image: one head forward + one Hungarian per sequence.

    ``tokens`` (n, D) tensor of per-proposal features. Returns (votes, ranks). The baseline of the
    ``acb`` benchmark (:func:`salrank.bench.stages.bench_acb`).
    """
    import torch

    seqs = circulative_sequences(boxes, k, center)
    n = len(tokens)
    votes = np.zeros(n, dtype=np.float64)
    with torch.no_grad():
        for seq in seqs:
            x, mask = _gather_tokens(tokens, seq[None])
            out = head(x, mask)[0]
            if out.ndim == 1:
                cls = sequence_classes(out[None], mask.cpu().numpy(), cost=cost)[0]
            else:
                cls = exclusive_classes(out, cost=cost, mask=mask[0].cpu().numpy())
            for slot, p in enumerate(seq):
                if p >= 0:
                    votes[p] += cls[slot]
    return votes, _ranks_from_votes(votes)


def rank_sequences_batched(
    head: HeadFn,
    tokens,
    batch: SequenceBatch,
    cost: str = "log-softmax",
    use_hungarian: bool = True,
    max_sequences: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All sequences of all images: gather tokens, one head forward, batched ECS, batched ACB.

    ``tokens`` (N, D) tensor over the concatenated proposals of ``batch``. ``max_sequences``
    splits the forward into chunks (memory); ``None`` = one forward. Returns (votes, ranks), (N,).
    """
    import torch

    if len(tokens) != batch.n_proposals:
        raise ValueError(f"tokens: {len(tokens)} rows for {batch.n_proposals} proposals")
    s = len(batch.sequences)
    if s == 0:
        return aggregate_sequence_classes_batched(batch, np.zeros(batch.sequences.shape))
    step = s if not max_sequences else int(max_sequences)
    classes = []
    with torch.no_grad():
        for start in range(0, s, step):
            x, mask = _gather_tokens(tokens, batch.sequences[start : start + step])
            out = head(x, mask)
            classes.append(sequence_classes(out, mask.cpu().numpy(), use_hungarian=use_hungarian, cost=cost))
    return aggregate_sequence_classes_batched(batch, np.concatenate(classes))
