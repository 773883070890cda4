"""Real vs shuffled ground truth (the paper's Table III-A) and FOSRNet's analogue.

The paper retrains two segmentation-based rankers (ASSR and ILRSR-GR) on ground truth whose
instance masks' rank brightness is shuffled, and finds the same scores (:func:`paper_table3a`): the
masks' rank order barely matters to them, so (the paper argues) instance segmentation as an
auxiliary task adds little. FOSRNet has no masks; its analogue
(:attr:`salrank.analysis.experiments.Experiment.shuffle_gt`) permutes the RA-SRGT labels among each training
and validation image's proposals and tests on the real labels: a control of whether the ranker
learns from the ranking labels at all. :func:`real_vs_shuffled_table` lays our runs out beside the
paper's rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salrank import paper

__all__ = ["paper_table3a", "real_vs_shuffled_table"]

_COLUMNS = pd.MultiIndex.from_product([["Real GT", "Shuffled GT"], ["SRCC", "F1"]])


def paper_table3a() -> pd.DataFrame:
    """Table III-A (:data:`salrank.paper.TABLE3A`): rows ASSR, ILRSR-GR; columns (Real GT, Shuffled GT) x
    (SRCC, F1)."""
    rows = {method: list(values) for method, values in paper.TABLE3A.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=_COLUMNS).rename_axis("method")


def real_vs_shuffled_table(real: dict, shuffled: dict, *, label: str = "FOSRNet (this run)",
                           with_paper: bool = True) -> pd.DataFrame:
    """The Table III-A layout: the paper's rows (``with_paper``: ASSR and ILRSR-GR, then FOSRNet's
    real-GT result from Table II, shuffled = NaN) and ``label``'s row from the test metrics of the
    real-GT and the shuffled-GT experiments (dicts with ``srcc`` and ``f1``, e.g.
    :attr:`~salrank.analysis.experiments.ExperimentResult.metrics`). A last column ``SRCC drop`` = real -
    shuffled SRCC."""
    for name, m in (("real", real), ("shuffled", shuffled)):
        missing = {"srcc", "f1"} - set(m)
        if missing:
            raise KeyError(f"real_vs_shuffled_table: the {name} metrics lack {sorted(missing)}")
    ours = pd.DataFrame([[real["srcc"], real["f1"], shuffled["srcc"], shuffled["f1"]]], index=[label],
                        columns=_COLUMNS)
    parts = []
    if with_paper:
        printed = paper_table3a()
        printed.index = [f"{m} (paper)" for m in printed.index]
        # FOSRNet's real-GT result is Table II row 7; the paper has no shuffled run of it
        fosrnet = pd.DataFrame([[*paper.TABLE2[7], np.nan, np.nan]], index=["FOSRNet (paper, Table II)"],
                               columns=_COLUMNS)
        parts += [printed, fosrnet]
    table = pd.concat([*parts, ours])
    table[("", "SRCC drop")] = table[("Real GT", "SRCC")] - table[("Shuffled GT", "SRCC")]
    table.index.name = "method"
    return table
