"""FOSRNet training (salrank.fosrnet.train): targets, determinism, checkpoint-resume equivalence, learning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from salrank.data.scenes import SceneSet
from salrank.fosrnet.data import RankingSplit, prepare_split
from salrank.fosrnet.evaluate import evaluate_model, gt_values, pred_values
from salrank.fosrnet.features import FeatureConfig, FeatureStore
from salrank.fosrnet.losses import IGNORE_INDEX
from salrank.fosrnet.model import FOSRNet, FOSRNetConfig, create_fosrnet
from salrank.fosrnet.train import (
    SequenceDataset,
    Trainer,
    epoch_seed,
    load_checkpoint,
    train_config,
)
from salrank.models.backbones import WeightsIdentity, feature_extractors

SIZE = (96, 128)
FEATURES = FeatureConfig(unisal_network_size=SIZE, crop_size=64)
MODEL = FOSRNetConfig(appearance_dim=512, normalize=True)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """A tiny SynthSal (60 train / 20 val images of 96 x 128), oracle proposals, random backbones."""
    from salrank.data.synthsal import SynthSalConfig, generate_dataset

    root = tmp_path_factory.mktemp("tinysynth")
    ds = generate_dataset(root, n_train=60, n_val=20, n_test=0, seed=0, config=SynthSalConfig(height=96, width=128),
                          progress=False)
    unisal, cnn, _ = feature_extractors(False, 0, "resnet18", "cpu")
    out = {}
    for split in ("train", "val"):
        part = ds.load(split, cache=False)
        scenes = SceneSet("tiny", split, part.fixations, part.image_paths, part.boxes, part.salience)
        out[split] = prepare_split(scenes, unisal=unisal, backbone=cnn, detector="oracle", config=FEATURES,
                                   cache=tmp_path_factory.mktemp("features"), progress=False)
    return out


def _fit(train, val, out, epochs, resume=False, log=None, **kw):
    cfg = train_config("fast", epochs=epochs, batch_size=32, patience=None, **kw)
    trainer = Trainer(MODEL, cfg, train, val, out, progress=False, log=log)
    return trainer, trainer.fit(resume=resume)


class Interrupted(Exception):
    pass


def _interrupt_after_epoch_1(message):
    if message.startswith("epoch 1:"):  # logged after the epoch's checkpoint is on disk
        raise Interrupted


def test_sequence_targets_hand_case():
    """One image, 3 proposals (one sequence padded with 2 dummies); GT scores 0.1, 0.9, 0.5."""
    boxes = np.array([[0, 0, 10, 10], [50, 0, 60, 10], [20, 0, 30, 10]], np.float32)
    arrays = {"local": np.zeros((3, 192), np.float32), "global": np.zeros((3, 192), np.float32),
              "appearance": np.zeros((3, 512), np.float32), "centers": np.zeros((3, 2), np.float32),
              "boxes": boxes, "scores": np.ones(3, np.float32), "geometry": np.zeros((3, 3), np.float32)}
    store = FeatureStore(arrays, [0, 3], ["a"], [(100, 100)])
    data = SequenceDataset(store, [np.array([0.1, 0.9, 0.5])])
    # ACB order: Q_0 = proposal 0, then by centre distance: 2 (x=25), 1 (x=55)
    assert data.sequences.tolist() == [[0, 2, 1, -1, -1]]
    # 3 valid of k=5: classes 2..4 in ascending saliency: 0 -> 2, 2 -> 3, 1 -> 4; dummies ignored
    assert data.targets.tolist() == [[2, 3, 4, IGNORE_INDEX, IGNORE_INDEX]]
    feats, mask, targets = data.batch(torch.tensor([0]))
    assert mask.tolist() == [[False, False, False, True, True]] and feats["appearance"].shape == (1, 5, 512)


def test_evaluation_values():
    assert gt_values([0.1, 0.9, 0.0, 0.5]).tolist() == [1, 3, 0, 2]
    assert gt_values([0.0, 0.0]).tolist() == [0, 0]  # eq. 5 ties kept: no fixation = 0
    assert gt_values([0.2, 0.0, 0.7, 0.0, 0.0]).tolist() == [3, 0, 4, 0, 0]  # n - rank for rank > 0
    assert pred_values([2, 1, 4, 3]).tolist() == [2, 3, 0, 1]


def _store(n_per_image, d_r=16, seed=0):
    """A FeatureStore of random features, images of ``n_per_image`` proposals in a row (x = 10 i)."""
    rng = np.random.default_rng(seed)
    n = int(sum(n_per_image))
    boxes = np.concatenate([np.array([[10 * i, 0, 10 * i + 8, 8] for i in range(m)], np.float32)
                            for m in n_per_image])
    arrays = {"local": rng.normal(size=(n, 192)).astype(np.float32),
              "global": rng.normal(size=(n, 192)).astype(np.float32),
              "appearance": rng.normal(size=(n, d_r)).astype(np.float32),
              "centers": rng.random((n, 2), dtype=np.float32), "boxes": boxes,
              "scores": np.ones(n, np.float32), "geometry": rng.random((n, 3), dtype=np.float32)}
    offsets = np.concatenate([[0], np.cumsum(n_per_image)])
    stems = [f"im{i}" for i in range(len(n_per_image))]
    return FeatureStore(arrays, offsets, stems, [(100, 200)] * len(n_per_image))


def test_sequence_dataset_targets_agree_across_sequences():
    """The issue's n = 7 image: every pair of proposals keeps one order in all its sequences."""
    scores = np.array([0.5, 0.0, 0.3, 0.4, 0.2, 0.0, 0.1])
    data = SequenceDataset(_store([7]), [scores])
    assert len(data) == 7
    order: dict[tuple[int, int], bool] = {}
    for seq, tgt in zip(data.sequences.tolist(), data.targets.tolist(), strict=True):
        for a, ta in zip(seq, tgt, strict=True):
            for b, tb in zip(seq, tgt, strict=True):
                if a != b:
                    assert order.setdefault((a, b), ta > tb) == (ta > tb), (a, b)
    assert order[(5, 1)]  # the authors' rule: of the tied zeros the lower index is the less salient
    assert order[(0, 3)] and order[(3, 2)]  # real scores keep their order


def test_sequence_dataset_official_groups():
    """groups="official": one sequence per image, its first 5 proposals (short images padded)."""
    scores = [np.array([0.1, 0.0, 0.7, 0.0, 0.3, 0.9, 0.2]), np.array([0.4, 0.0, 0.6])]
    data = SequenceDataset(_store([7, 3]), scores, groups="official")
    assert data.sequences.tolist() == [[0, 1, 2, 3, 4], [7, 8, 9, -1, -1]]
    # image 0, first 5 scores [0.1, 0, 0.7, 0, 0.3]: sorted((score, index)) -> 1, 3, 0, 4, 2
    assert data.targets.tolist() == [[2, 0, 4, 1, 3], [3, 2, 4, IGNORE_INDEX, IGNORE_INDEX]]
    with pytest.raises(ValueError, match="groups"):
        SequenceDataset(_store([3]), [np.zeros(3)], groups="all")
    assert train_config("fast", groups="official").groups == "official"
    with pytest.raises(ValueError, match="groups"):
        train_config("fast", groups="all")


def test_evaluate_protocols_hand_case():
    """Two images: 6 proposals (scores with ties) and 3 (too short for the official unit)."""
    from salrank.fosrnet.evaluate import evaluate_ranks
    from salrank.metrics import official_from_classes

    store = _store([6, 3])
    gt = [np.array([0.0, 0.6, 0.0, 0.2, 0.0, 0.9]), np.array([0.0, 0.0, 0.0])]
    split = RankingSplit(store, gt, [np.zeros(6, np.int64), np.zeros(3, np.int64)])
    pred = [np.array([3, 2, 6, 4, 5, 1]), np.array([1, 2, 3])]
    off = evaluate_ranks(pred, split, protocol="official")
    # image 0, first 5: predicted order by rank [3, 2, 6, 4, 5] -> classes [4, 3, 0, 2, 1];
    # GT sorted((score, index)) of [0, .6, 0, .2, 0] -> classes [0, 4, 1, 3, 2]
    assert off == {**official_from_classes([[3, 4, 0, 2, 1]], [[0, 4, 1, 3, 2]]), "n_images_short": 1}
    assert off["protocol"] == "official" and off["n_groups"] == 1
    acb = evaluate_ranks(pred, split, protocol="acb")
    # image 1 has no fixation in any box: constant GT, excluded from SRCC and counted
    assert acb["protocol"] == "acb" and acb["n_constant_gt"] == 1 and acb["n_used_correlation"] == 1
    from salrank.fosrnet.evaluate import protocol_metrics

    both = {**acb, "official": off}
    assert protocol_metrics(both, "official") == off and protocol_metrics(both, "acb") == acb
    with pytest.raises(KeyError, match="official"):
        protocol_metrics(acb, "official")
    with pytest.raises(ValueError, match="protocol"):
        evaluate_ranks(pred, split, protocol="paper")
    with pytest.raises(ValueError, match="own NaN rule"):
        evaluate_ranks(pred, split, nan_policy="exclude", protocol="official")


def test_evaluate_model_official_equals_official_protocol():
    from salrank.fosrnet.evaluate import official_logits
    from salrank.metrics import official_protocol

    torch.manual_seed(0)
    model = create_fosrnet(FOSRNetConfig(appearance_dim=16, head_kwargs={"width": 32, "depth": 1, "num_heads": 2}))
    model.train()  # evaluate_model switches to eval mode itself (and back)
    gt = [np.random.default_rng(i).random(n) for i, n in enumerate([7, 5, 2, 6])]
    split = RankingSplit(_store([7, 5, 2, 6]), gt, [np.zeros(len(g), np.int64) for g in gt])
    out = evaluate_model(model, split, protocol="official")
    logits, keep = official_logits(model, split)
    assert keep.tolist() == [0, 1, 3] and logits.shape == (3, 5, 5)
    assert model.training
    with torch.no_grad():  # the same logits as one forward of the first 5 proposals of image 3
        image = split.features.image(3)
        direct = model.eval()({k: np.asarray(v)[None, :5] for k, v in image.items()})
    np.testing.assert_allclose(logits[2], direct[0].numpy(), atol=1e-5)
    expected = official_protocol(logits, np.stack([g[:5] for i, g in enumerate(gt) if i != 2]))
    assert out == {**expected, "n_images_short": 1}
    assert evaluate_model(model, split)["protocol"] == "acb"


def test_train_config_and_seeds():
    assert train_config("paper").batch_size == 1 and train_config("paper").optimizer == "sgd"
    assert train_config("fast", lr=0.5).lr == 0.5
    with pytest.raises(ValueError, match="preset"):
        train_config("slow")
    with pytest.raises(TypeError, match="unknown"):
        train_config("fast", learning_rate=1)
    grid = {(s, e): epoch_seed(s, e) for s in range(8) for e in range(64)}
    assert len(set(grid.values())) == len(grid)  # no two (seed, epoch) pairs share a seed
    assert all(0 <= v < 2**63 for v in grid.values())  # fits torch.manual_seed / numpy
    # the same in another process (no per-process hash randomisation or global RNG involved)
    code = "from salrank.fosrnet.train import epoch_seed; print(epoch_seed(3, 17), epoch_seed(0, 1))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "random"}).stdout.split()
    assert [int(v) for v in out] == [grid[3, 17], grid[0, 1]]


def test_normalization_and_geometry_additions():
    torch.manual_seed(0)
    model = FOSRNet(MODEL)
    rng = np.random.default_rng(0)
    arrays = {"local": rng.normal(3, 0.01, (50, 192)), "global": rng.normal(0, 5, (50, 192)),
              "appearance": rng.normal(1, 2, (50, 512))}
    model.set_normalization(arrays)
    feats = {"local": arrays["local"].mean(0, keepdims=True), "global": arrays["global"].mean(0, keepdims=True),
             "appearance": arrays["appearance"].mean(0, keepdims=True), "centers": np.zeros((1, 2))}
    x = model.embed(feats)
    assert torch.allclose(x[0, :384], torch.zeros(384), atol=1e-4)  # the mean maps to 0
    assert torch.allclose(x[0, 576:], torch.zeros(512), atol=1e-4)
    paper = FOSRNet(replace(MODEL, normalize=False))
    assert not any(k.startswith(("mean_", "std_")) for k in paper.state_dict())  # the paper's model: no buffers
    with pytest.raises(ValueError, match="normalize=False"):
        paper.set_normalization(arrays)
    geo = FOSRNet(replace(MODEL, use_geometry=True))
    assert geo.config.in_dim == MODEL.in_dim + 64
    assert geo.embed({**feats, "geometry": np.ones((1, 3))}).shape == (1, MODEL.in_dim + 64)
    with pytest.raises(KeyError, match="geometry"):
        geo.embed(feats)


def test_learning_on_synthsal(splits, tmp_path):
    """Random UNISAL + random ResNet18 features, oracle proposals, 60 train / 20 val images of 96 x 128.

    Measured (seed 0, 3 epochs, fast preset with 32 sequences per step, feature standardisation):
    untrained val SRCC 0.03, best trained val SRCC 0.47 (epochs: 0.47, 0.33, 0.41). Thresholds
    leave a wide margin: untrained < 0.2, trained > 0.3 and at least 0.2 above untrained.
    For scale: ranking by box area alone gives 0.55 on this split, by detector score 0.17.
    """
    train, val = splits["train"], splits["val"]
    trainer, summary = _fit(train, val, tmp_path / "run", epochs=3)
    torch.manual_seed(0)
    untrained = FOSRNet(MODEL)
    untrained.set_normalization(train.features.arrays)
    before = evaluate_model(untrained, val)["srcc"]
    after = summary["best_val_srcc"]
    assert before < 0.2
    assert after > 0.3 and after - before > 0.2, (before, after)
    model, ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert evaluate_model(model, val)["srcc"] == pytest.approx(after)
    assert WeightsIdentity.from_dict(ckpt["feature_meta"]["weights"]).label == (
        "UNISAL: random, seed 0; resnet18: random, seed 0")
    assert ckpt["model_config"]["normalize"] is True  # the whole config, additions included


def test_resume_gives_identical_weights_and_log(splits, tmp_path):
    train, val = splits["train"].subset(20), splits["val"].subset(8)
    _fit(train, val, tmp_path / "straight", epochs=2)
    with pytest.raises(Interrupted):
        _fit(train, val, tmp_path / "split", epochs=2, log=_interrupt_after_epoch_1)
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=False)["epoch"] == 1
    trainer, summary = _fit(train, val, tmp_path / "split", epochs=2, resume=True)
    assert summary["epochs"] == 2
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=False)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key

    def log(run):
        rows = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]

    assert log("straight") == log("split") and len(log("straight")) == 2
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    # a finished run resumed again trains nothing more
    _, again = _fit(train, val, tmp_path / "split", epochs=2, resume=True)
    assert again["epochs"] == 2 and log("split") == log("straight")


def test_seeded_determinism_and_config_mismatch(splits, tmp_path):
    train = splits["train"].subset(10)
    _fit(train, None, tmp_path / "a", epochs=1)
    _fit(train, None, tmp_path / "b", epochs=1)
    _fit(train, None, tmp_path / "c", epochs=1, seed=1)
    a, b, c = (torch.load(tmp_path / r / "last.pt", weights_only=False)["model"] for r in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError, match="training configuration differs"):
        _fit(train, None, tmp_path / "a", epochs=2, resume=True, lr=0.5)


def test_ranking_split_checks(splits):
    train = splits["train"]
    with pytest.raises(ValueError, match="GT score arrays"):
        RankingSplit(train.features, train.gt_scores[:-1], train.gt_ranks)


def test_divergence_stops_with_the_epoch_and_step(splits, tmp_path):
    """A NaN loss stops training with TrainingDivergedError naming the epoch and step; the epoch's
    checkpoint is not written."""
    from salrank.fosrnet.train import TrainingDivergedError

    class NanAtStep3(Trainer):
        calls = 0

        def batch_loss(self, feats, mask, targets):
            loss = super().batch_loss(feats, mask, targets)
            NanAtStep3.calls += 1
            return loss * float("nan") if NanAtStep3.calls == 3 else loss

    cfg = train_config("fast", epochs=2, batch_size=4, patience=None)
    trainer = NanAtStep3(MODEL, cfg, splits["train"].subset(10), None, tmp_path, progress=False)
    with pytest.raises(TrainingDivergedError, match=r"loss nan at epoch 1, step 3 .*lower lr"):
        trainer.fit()
    assert not (tmp_path / "last.pt").exists() and trainer.epoch == 0
