"""Reg. vs Cls. table: our gains in both units, the paper's statement shown, never averaged into numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salrank.analysis.ablations import reg_gain_readings, reg_vs_cls_table
from salrank.paper import REG_GAIN


def _results():
    return pd.DataFrame({
        "gamma": [0.1, 0.1, 0.8, 0.8],
        "model": ["Ours (Cls.)", "Ours (Reg.)"] * 2,
        "srcc": [0.5, 0.4, 0.4, 0.5],
        "f1": [0.3, 0.2, 0.2, 0.25],
    })


def test_reg_vs_cls_table_invents_no_paper_numbers():
    t = reg_vs_cls_table(_results())
    # gains: SRCC +0.1 (= +25% of 0.4) and -0.1 (= -20% of 0.5); mean +0.0 absolute, +2.5% relative
    assert t.loc["0.1", "SRCC gain % (ours)"] == pytest.approx(25.0)
    assert t.loc["0.8", "SRCC gain % (ours)"] == pytest.approx(-20.0)
    assert t.loc["mean", "SRCC gain (ours)"] == pytest.approx(0.0, abs=1e-12)
    assert t.loc["mean", "SRCC gain % (ours)"] == pytest.approx(2.5)
    # the paper's Cls. numbers per gamma (Table III-C-b); no mean of them
    assert t.loc["0.1", "F1 Cls. (paper)"] == 0.704
    assert np.isnan(t.loc["mean", "SRCC Cls. (paper)"]) and np.isnan(t.loc["mean", "F1 Cls. (paper)"])


def test_reg_gain_readings_both_units():
    r = reg_gain_readings(reg_vs_cls_table(_results()))
    assert list(r.index) == ["SRCC", "F1"]
    assert r.loc["SRCC", "paper (as absolute)"] == REG_GAIN["srcc"] == 0.018
    assert r.loc["SRCC", "paper (as relative %)"] == pytest.approx(1.8)
    assert r.loc["F1", "paper (as relative %)"] == pytest.approx(4.0)
    # F1 gains 0.1 (50% of 0.2) and -0.05 (-20% of 0.25): mean 0.025 absolute, 15% relative
    assert r.loc["F1", "ours (absolute)"] == pytest.approx(0.025)
    assert r.loc["F1", "ours (relative %)"] == pytest.approx(15.0)
