"""Table III-B's multi-task proxy: detection targets by hand, the joint trainer against the plain one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from salrank.analysis.multitask import (
    MultiTaskTrainer,
    box_deltas,
    detection_targets,
    split_detection_targets,
    table3b_table,
)
from salrank.fosrnet.data import RankingSplit
from salrank.fosrnet.features import FeatureStore
from salrank.fosrnet.model import FOSRNetConfig
from salrank.fosrnet.train import Trainer, train_config
from salrank.paper import TABLE2

SMALL = FOSRNetConfig(appearance_dim=8, head_kwargs={"width": 32, "depth": 1, "num_heads": 2})


def test_box_deltas_and_detection_targets_by_hand():
    # proposal 10 x 20 centred (5, 10); target 20 x 20 centred (10, 10): dx = 5/10, dy = 0, dw = log 2
    np.testing.assert_allclose(box_deltas([[0, 0, 10, 20]], [[0, 0, 20, 20]]), [[0.5, 0.0, math.log(2), 0.0]])
    proposals = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [50, 50, 60, 60], [0, 0, 10, 4]], float)
    refs = np.array([[0, 0, 10, 10], [48, 50, 60, 60]], float)
    obj, deltas = detection_targets(proposals, refs)
    # IoU with the best reference: 1, 0.5 (counts, >= 0.5), 100/120 = .83, 0.4 (does not)
    assert obj.tolist() == [1.0, 1.0, 1.0, 0.0]
    np.testing.assert_allclose(deltas[0], 0.0)
    np.testing.assert_allclose(deltas[2], [-0.1, 0.0, math.log(1.2), 0.0])
    np.testing.assert_allclose(deltas[1], [0.0, 0.5, 0.0, math.log(2)])
    assert detection_targets(proposals, np.zeros((0, 4)))[0].tolist() == [0.0] * 4


def _split(seed: int = 0, counts=(6, 5, 7, 4), with_ref: bool = True) -> RankingSplit:
    rng = np.random.default_rng(seed)
    n = sum(counts)
    xy = rng.uniform(0, 80, size=(n, 2))
    wh = rng.uniform(5, 20, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    arrays = {
        "local": rng.normal(size=(n, 192)).astype(np.float32),
        "global": rng.normal(size=(n, 192)).astype(np.float32),
        "appearance": rng.normal(size=(n, 8)).astype(np.float32),
        "centers": ((boxes[:, :2] + boxes[:, 2:]) / 200).astype(np.float32),
        "boxes": boxes,
        "scores": np.ones(n, np.float32),
        "geometry": np.zeros((n, 3), np.float32),
    }
    offsets = np.concatenate([[0], np.cumsum(counts)])
    store = FeatureStore(arrays, offsets, [f"im{i}" for i in range(len(counts))], [(100, 100)] * len(counts))
    scores = [rng.random(c) for c in counts]
    ranks = [np.argsort(np.argsort(-s)) + 1 for s in scores]
    refs = [boxes[s:e][:2] + 1.0 for s, e in zip(offsets[:-1], offsets[1:], strict=True)] if with_ref else None
    return RankingSplit(store, scores, ranks, refs, [np.array([1, 2])] * len(counts) if with_ref else None, "tiny")


def _weights(trainer) -> dict:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_zero_detection_weight_trains_the_ranking_only_model(tmp_path, torch_one_thread):
    cfg = train_config(epochs=2, batch_size=4, patience=None)
    split = _split()
    plain = Trainer(SMALL, cfg, split, None, tmp_path / "a", progress=False, log=None)
    plain.fit()
    joint0 = MultiTaskTrainer(SMALL, cfg, split, None, tmp_path / "b", progress=False, log=None, detection_weight=0.0)
    joint0.fit()
    joint1 = MultiTaskTrainer(SMALL, cfg, split, None, tmp_path / "c", progress=False, log=None, detection_weight=1.0)
    joint1.fit()
    a, b, c = _weights(plain), _weights(joint0), _weights(joint1)
    assert a.keys() == b.keys() == c.keys()  # checkpoints hold the ranking model only
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert any(not torch.allclose(a[k], c[k], atol=1e-4) for k in a)  # the detection task moved the trunk


def test_detection_loss_is_learned(tmp_path, torch_one_thread):
    split = _split(1)
    trainer = MultiTaskTrainer(SMALL, train_config(epochs=1, batch_size=8, lr=1e-2, patience=None), split, None, tmp_path,
                               progress=False, log=None, detection_weight=1.0)
    feats, mask, targets = trainer.data.batch(torch.arange(len(trainer.data)))
    trainer.model.eval()
    trainer.detection.eval()
    with torch.no_grad():
        before = trainer.joint_loss(feats, mask, targets)
    for _ in range(8):
        trainer.train_epoch()
    trainer.model.eval()
    with torch.no_grad():
        after = trainer.joint_loss(feats, mask, targets)
    assert after["detection"] < 0.5 * before["detection"]
    assert torch.isclose(after["total"], after["rank"] + after["detection"])


def test_multitask_errors(tmp_path):
    cfg = train_config(epochs=1, batch_size=4)
    with pytest.raises(ValueError, match="no reference boxes"):
        MultiTaskTrainer(SMALL, cfg, _split(with_ref=False), None, tmp_path, progress=False, log=None)
    fc = FOSRNetConfig(appearance_dim=8, head="fc", head_kwargs={"hidden": 16})
    with pytest.raises(ValueError, match="no shared transformer trunk"):
        MultiTaskTrainer(fc, cfg, _split(), None, tmp_path, progress=False, log=None)
    with pytest.raises(ValueError, match="detection_weight"):
        MultiTaskTrainer(SMALL, cfg, _split(), None, tmp_path, progress=False, log=None, detection_weight=-1)
    with pytest.raises(ValueError, match="no reference boxes"):
        split_detection_targets(_split(with_ref=False))


def test_table3b_layout():
    t = table3b_table({"srcc": 0.5, "f1": 0.4}, {"srcc": 0.3, "f1": 0.2})
    assert list(t.index) == ["Detection + Ranking", "Detection -> Ranking"]
    assert t.loc["Detection + Ranking", "SRCC (PPA, paper)"] == 0.841
    assert t.loc["Detection -> Ranking", "F1 (PPA, paper)"] == 0.695
    # FOSRNet's single-task row is the headline result, Table II row 7
    assert (t.loc["Detection -> Ranking", "SRCC (FOSRNet, paper)"],
            t.loc["Detection -> Ranking", "F1 (FOSRNet, paper)"]) == TABLE2[7]
    assert t.loc["Detection + Ranking", "SRCC (this run)"] == 0.3 and t.loc["Detection -> Ranking", "F1 (this run)"] == 0.4
