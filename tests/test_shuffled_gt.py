"""Table III-A: the paper's numbers and the real-vs-shuffled layout."""

from __future__ import annotations

import numpy as np
import pytest

from salrank.analysis.shuffled_gt import paper_table3a, real_vs_shuffled_table


def test_paper_table3a_lays_out_salrank_paper():
    from salrank import paper

    t = paper_table3a()
    assert list(t.index) == list(paper.TABLE3A)
    columns = [("Real GT", "SRCC"), ("Real GT", "F1"), ("Shuffled GT", "SRCC"), ("Shuffled GT", "F1")]
    assert list(t.columns) == columns
    assert {m: tuple(t.loc[m]) for m in t.index} == paper.TABLE3A
    # the paper's point: shuffling changes SRCC by at most 0.003
    drop = t[("Real GT", "SRCC")] - t[("Shuffled GT", "SRCC")]
    assert drop.max() == pytest.approx(0.003)


def test_real_vs_shuffled_table():
    t = real_vs_shuffled_table({"srcc": 0.3, "f1": 0.2, "n_images": 5}, {"srcc": -0.02, "f1": 0.1})
    assert list(t.index) == ["ASSR (paper)", "ILRSR-GR (paper)", "FOSRNet (paper, Table II)", "FOSRNet (this run)"]
    ours = t.loc["FOSRNet (this run)"]
    assert ours[("Real GT", "SRCC")] == 0.3 and ours[("Shuffled GT", "F1")] == 0.1
    assert ours[("", "SRCC drop")] == pytest.approx(0.32)
    assert t.loc["ASSR (paper)", ("", "SRCC drop")] == pytest.approx(0.003)
    assert np.isnan(t.loc["FOSRNet (paper, Table II)", ("Shuffled GT", "SRCC")])
    only = real_vs_shuffled_table({"srcc": 0.3, "f1": 0.2}, {"srcc": 0.1, "f1": 0.1}, label="x", with_paper=False)
    assert list(only.index) == ["x"]
    with pytest.raises(KeyError, match="shuffled metrics lack"):
        real_vs_shuffled_table({"srcc": 0.3, "f1": 0.2}, {"srcc": 0.1})
