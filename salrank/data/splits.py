"""The paper's SALICON splits: train 10,000 / val 1,200 / test 3,800.

The paper trains on SALICON train (10,000 images) and divides SALICON val (5,000; the SALICON
test set has no public fixations) into its own validation (1,200) and test (3,800) sets
without saying how. **Project rule**: sort the SALICON val image stems (``str`` order; SALICON
stems are zero-padded so this is also numeric order), the first 1,200 are "val", the rest
"test". The rule is deterministic and independent of the order ids are given in.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from salrank.paper import TEST_SIZE, TRAIN_SIZE, VAL_SIZE

__all__ = [
    "SALICON_VAL_SIZE",
    "SplitSizeWarning",
    "paper_splits",
]

#: SALICON's val set (5,000 images), which the paper divides into its val and test sets.
SALICON_VAL_SIZE = VAL_SIZE + TEST_SIZE


class SplitSizeWarning(UserWarning):
    """The given SALICON splits do not have the paper's sizes (e.g. a sample or a subset)."""


def _unique_sorted(ids: Iterable[str], name: str) -> list[str]:
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name} contains duplicated image ids")
    return sorted(ids)


def paper_splits(
    train_ids: Iterable[str], val_ids: Iterable[str], *, n_val: int = VAL_SIZE
) -> dict[str, list[str]]:
    """Split SALICON image stems into the paper's ``train`` / ``val`` / ``test`` lists.

    Args:
        train_ids: SALICON train image stems (all become "train").
        val_ids: SALICON val image stems, divided by the project rule (module docstring).
        n_val: how many of the sorted SALICON val stems go to "val" (paper: 1,200).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted.

    Warns :class:`SplitSizeWarning` when the inputs are not 10,000 / 5,000 images; raises
    ``ValueError`` on duplicates or on ids present in both inputs.
    """
    if n_val < 0:
        raise ValueError(f"n_val must be >= 0, got {n_val}")
    train = _unique_sorted(train_ids, "train_ids")
    val = _unique_sorted(val_ids, "val_ids")
    both = set(train) & set(val)
    if both:
        raise ValueError(f"{len(both)} image id(s) are in both train and val, e.g. {min(both)!r}")
    if len(train) != TRAIN_SIZE or len(val) != SALICON_VAL_SIZE:
        warnings.warn(
            f"SALICON splits have {len(train)} train / {len(val)} val images; the paper uses "
            f"{TRAIN_SIZE} / {SALICON_VAL_SIZE}",
            SplitSizeWarning,
            stacklevel=2,
        )
    return {"train": train, "val": val[:n_val], "test": val[n_val:]}
