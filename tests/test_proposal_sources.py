"""Proposal sources of the detector-swap study (Table VI): oracle files, full-profile files, quality."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from salrank.analysis.proposal_sources import (
    PAPER_TABLE6,
    PAPER_TABLE6_DETECTORS,
    STANDIN_NOISE,
    ProposalSource,
    detector_swap_table,
    full_profile_sources,
    oracle_proposal_file,
    proposal_quality,
)
from salrank.config import get_settings
from salrank.data import Fixations
from salrank.data.scenes import SceneSet
from salrank.fosrnet.data import dataset_proposals


def _scene_set(split: str, n: int = 3, seed: int = 0) -> SceneSet:
    rng = np.random.default_rng(seed)
    fixations, boxes = {}, {}
    for i in range(n):
        stem = f"{split}_{i}"
        fixations[stem] = Fixations(rng.uniform(0, 60, (20, 2)), np.zeros(20, np.int64), 60, 80)
        xy = rng.uniform(0, 40, (4, 2))
        boxes[stem] = np.concatenate([xy, xy + rng.uniform(8, 20, (4, 2))], axis=1)
    return SceneSet(split, split, fixations, {}, boxes)


def test_paper_table6_lays_out_salrank_paper():
    from salrank import paper

    assert list(PAPER_TABLE6.index) == ["SRCC", "F1"]
    assert {d: tuple(PAPER_TABLE6[d]) for d in PAPER_TABLE6.columns} == paper.TABLE6
    assert set(PAPER_TABLE6_DETECTORS) == set(paper.TABLE6)  # every detector of the table has a mapping


def test_default_noise_file_equals_builtin_oracle(tmp_path):
    sets = [_scene_set("train"), _scene_set("test", seed=1)]
    path = oracle_proposal_file(sets, {}, seed=3, directory=tmp_path)
    for ss in sets:
        from_file = dataset_proposals(ss, str(path), seed=3)
        builtin = dataset_proposals(ss, "oracle", seed=3)
        for stem in ss.stems:
            np.testing.assert_array_equal(from_file[stem].boxes, builtin[stem].boxes)
            np.testing.assert_array_equal(from_file[stem].scores, builtin[stem].scores)


def test_oracle_file_is_cached_and_keyed_by_inputs(tmp_path):
    sets = [_scene_set("train")]
    a = oracle_proposal_file(sets, {"jitter": 0.25}, seed=0, directory=tmp_path)
    mtime = a.stat().st_mtime_ns
    assert oracle_proposal_file(sets, {"jitter": 0.25}, seed=0, directory=tmp_path) == a
    assert a.stat().st_mtime_ns == mtime  # reused, not rewritten
    assert oracle_proposal_file(sets, {"jitter": 0.3}, seed=0, directory=tmp_path) != a
    assert oracle_proposal_file(sets, {"jitter": 0.25}, seed=1, directory=tmp_path) != a
    moved = _scene_set("train")
    moved.boxes["train_0"] = moved.boxes["train_0"] + 1.0
    assert oracle_proposal_file([moved], {"jitter": 0.25}, seed=0, directory=tmp_path) != a
    records = json.loads(a.read_text())
    assert {r["image_id"] for r in records} <= set(sets[0].stems)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_noisier_oracle_is_worse(tmp_path):
    sets = [_scene_set("test", n=40, seed=5)]
    ref = sets[0].boxes
    quality = {}
    for label, noise in {"default": {}, **STANDIN_NOISE}.items():
        path = oracle_proposal_file(sets, noise, seed=0, directory=tmp_path)
        props = dataset_proposals(sets[0], str(path), apply_filter=False, top_n=None)
        quality[label] = proposal_quality(props, ref)
    assert quality["oracle: more misses"]["recall"] < quality["default"]["recall"]
    assert quality["oracle: more false positives"]["precision"] < quality["default"]["precision"]
    assert quality["oracle: more false positives"]["proposals_per_image"] > quality["default"]["proposals_per_image"]
    assert quality["oracle: more jitter"]["recall"] < quality["default"]["recall"]


def test_oracle_file_rejects_bad_input(tmp_path):
    ss = _scene_set("train")
    with pytest.raises(ValueError, match="unknown option"):
        oracle_proposal_file([ss], {"jiter": 0.2}, directory=tmp_path)
    with pytest.raises(ValueError, match="more than one scene set"):
        oracle_proposal_file([ss, ss], {}, directory=tmp_path)


def test_proposal_quality_hand_computed():
    ref = {"a": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), "b": np.array([[0, 0, 4, 4]], float)}
    props = {"a": np.array([[0, 0, 10, 10], [50, 50, 60, 60], [21, 21, 31, 31]], float)}  # b: none
    q = proposal_quality(props, ref)
    # a: box 0 exact, box 1 IoU 81/119 = 0.68 >= 0.5 -> 2 matched; b: 0 of 1
    assert q["recall"] == pytest.approx(2 / 3)
    assert q["precision"] == pytest.approx(2 / 3)
    assert q["proposals_per_image"] == pytest.approx(1.5)
    strict = proposal_quality(props, ref, iou_threshold=0.9)
    assert strict["recall"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="iou_threshold"):
        proposal_quality(props, ref, iou_threshold=0)


def test_full_profile_sources_lists_existing_files(tmp_path):
    folder = tmp_path / "proposals"
    folder.mkdir()
    for part in ("train", "val"):
        (folder / f"efficientdet_d0_{part}.json").write_text("[]")
    (folder / "detr_resnet50_train.json").write_text("[]")  # val missing -> not listed
    settings = get_settings(profile="full", data_root=str(tmp_path))
    sources = full_profile_sources(settings)
    assert [(s.label, s.detector) for s in sources] == [("EfficientDet", "efficientdet_d0")]
    with pytest.raises(FileNotFoundError, match="SALRANK_DATA"):
        full_profile_sources(replace(settings, data_root=None))


def test_detector_swap_table_layout():
    sources = [ProposalSource("EfficientDet", "efficientdet_d0", paper_name="EfficientDet"),
               ProposalSource("noisy", "x.json")]
    once = {"EfficientDet": {"srcc": 0.5, "f1": 0.3}, "noisy": {"srcc": 0.4, "f1": 0.2}}
    retrained = {"noisy": {"srcc": 0.45, "f1": 0.25}}
    ref = {"a": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)}
    props = {"EfficientDet": {"a": ref["a"]}, "noisy": {"a": np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float)}}
    t = detector_swap_table(sources, once, retrained, proposals=props, reference=ref)
    assert list(t.index) == ["EfficientDet", "noisy"]
    assert list(t.columns) == [("proposals", "recall"), ("proposals", "precision"), ("proposals", "per image"),
                               ("trained once", "SRCC"), ("trained once", "F1"),
                               ("retrained per source", "SRCC"), ("retrained per source", "F1"),
                               ("paper", "SRCC"), ("paper", "F1")]
    assert t.loc["noisy", ("proposals", "recall")] == 0.5 and t.loc["EfficientDet", ("proposals", "precision")] == 1.0
    assert t.loc["noisy", ("trained once", "SRCC")] == 0.4
    assert np.isnan(t.loc["EfficientDet", ("retrained per source", "F1")])
    assert t.loc["EfficientDet", ("paper", "SRCC")] == 0.908 and np.isnan(t.loc["noisy", ("paper", "F1")])
    bare = detector_swap_table(sources[1:], once)
    assert list(bare.columns) == [("trained once", "SRCC"), ("trained once", "F1")]
    with pytest.raises(ValueError, match="duplicate"):
        detector_swap_table([sources[1], sources[1]], once)
