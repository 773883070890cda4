"""salrank.paper: the paper's numbers agree with themselves wherever the paper prints one result twice."""

from __future__ import annotations

from dataclasses import fields

import pytest

from salrank import paper
from salrank.fosrnet.model import FOSRNetConfig


def test_the_headline_result_is_one_number():
    """FOSRNet on relabelled SALICON (gamma 0.2, ViT head, EfficientDet proposals) is printed in Tables
    I, II (row 7), III-C (ViT; gamma 0.2) and VI (EfficientDet)."""
    ours = paper.TABLE2[7]
    assert paper.TABLE3C_HEADS["vit"] == ours
    assert paper.TABLE3C_GAMMA[paper.DEFAULT_GAMMA] == ours
    assert paper.TABLE6["EfficientDet"] == ours
    salicon = [label for label, name in paper.TABLE1_DATASETS].index("Our dataset")
    assert paper.TABLE1["Ours"][2 * salicon : 2 * salicon + 2] == ours


def test_fig9_srcc_are_table3c_gamma_srcc():
    assert paper.FIG9_OURS_SRCC == {g: srcc for g, (srcc, _) in paper.TABLE3C_GAMMA.items()}
    assert tuple(paper.TABLE3C_GAMMA) == paper.GAMMAS and paper.DEFAULT_GAMMA in paper.GAMMAS


def test_peer_rows_repeat_table1():
    """Table III-A's real-GT rows are Table I on "Our dataset"; Table IV-A's SRCC / F1 are Table I on
    Liu's dataset, and its "Ours" row is Tables VII and VIII's detection row (FPS included)."""
    labels = [label for label, _ in paper.TABLE1_DATASETS]
    ours, liu = labels.index("Our dataset"), labels.index("Liu's dataset")
    for method, peer in (("ASSR", "ASSR"), ("ILRSR-GR", "ILRSR")):
        assert paper.TABLE3A[method][:2] == paper.TABLE1[peer][2 * ours : 2 * ours + 2]
    for method in ("ASSR", "ILRSR", "Ours"):
        row = paper.TABLE4A[method]
        assert (row["SRCC"], row["F1"]) == paper.TABLE1[method][2 * liu : 2 * liu + 2]
    detection = paper.TABLE7["Ours (Detection)"]
    assert detection == (paper.TABLE4A["Ours"]["SRCC"], paper.TABLE4A["Ours"]["F1"], paper.PIPELINE_FPS)
    assert paper.TABLE8["EfficientDet (proposal)"][2:] == detection
    assert paper.TABLE4A["Ours"]["FPS"] == paper.PIPELINE_FPS < paper.TABLE4B_FPS["EfficientDet"]


def test_split_sizes_cover_salicon():
    assert paper.TRAIN_SIZE == 10_000  # SALICON train
    assert paper.VAL_SIZE + paper.TEST_SIZE == 5_000  # SALICON val, divided by the paper
    assert paper.TRAIN_SIZE + paper.VAL_SIZE + paper.TEST_SIZE == 15_000


def test_table2_rows_are_fosrnet_switches():
    switches = set(paper.TABLE2_SWITCHES.values())
    assert switches <= {f.name for f in fields(FOSRNetConfig)}
    assert sorted(paper.TABLE2_ROWS) == sorted(paper.TABLE2) == list(range(1, 8))
    assert all(set(row) == switches for row in paper.TABLE2_ROWS.values())
    # row 7 is the full model, FOSRNetConfig's defaults
    full = FOSRNetConfig()
    assert paper.TABLE2_ROWS[7] == {s: getattr(full, s) for s in switches} == dict.fromkeys(switches, True)
    for row in paper.TABLE2_ROWS:
        config = FOSRNetConfig.table2(row)
        assert {s: getattr(config, s) for s in switches} == paper.TABLE2_ROWS[row]
    with pytest.raises(ValueError, match="row"):
        FOSRNetConfig.table2(8)
