"""Cached experiments (salrank.analysis.experiments): cache hits, determinism, shuffled GT, tables, bad specs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from salrank.analysis import experiments as ex
from salrank.analysis.experiments import (
    METRIC_COLUMNS,
    Experiment,
    ExperimentSetup,
    experiment_key,
    profile_setup,
    run_experiment,
    run_experiments,
    shuffle_gt_within_images,
)
from salrank.config import get_settings
from salrank.fosrnet.data import RankingSplit
from salrank.fosrnet.features import FeatureConfig, FeatureStore
from salrank.fosrnet.train import Trainer
from salrank.paper import TABLE2_ROWS
from salrank.profiles import FULL, SAMPLE

SMALL_HEADS = {
    "vit": {"width": 32, "depth": 1, "num_heads": 2},
    "reg": {"width": 32, "depth": 1, "num_heads": 2},
    "fc": {"hidden": 32},
    "gcn": {"hidden": 32},
}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A tiny SynthSal (24 train / 8 val / 10 test scenes of 96 x 128)."""
    from salrank.data.synthsal import SynthSalConfig, generate_dataset

    root = tmp_path_factory.mktemp("tinysynth")
    generate_dataset(
        root,
        n_train=24,
        n_val=8,
        n_test=10,
        seed=0,
        config=SynthSalConfig(height=96, width=128),
        progress=False,
    )
    return root


@pytest.fixture(scope="module")
def setup(tiny_root):
    base = profile_setup(get_settings(profile="sample", device="cpu"))
    return replace(
        base,
        dataset_root=str(tiny_root),
        limits=(None, None, None),
        pretrained=False,
        features=FeatureConfig(mode="roi", unisal_network_size=(96, 128), roi_image_size=(96, 128)),
        head_kwargs=SMALL_HEADS,
        train={"epochs": 2, "batch_size": 32},
    )


@pytest.fixture()
def settings(tmp_path):
    return get_settings(profile="sample", device="cpu", cache_dir=tmp_path / "cache")


def test_cache_hit_returns_identical_results_without_training(setup, settings, monkeypatch):
    first = run_experiment(Experiment("vit", {"head": "vit"}), settings, setup=setup)
    assert not first.cached and first.checkpoint.is_file()
    assert first.metrics["protocol"] == "official"  # the authors' unit first, beside the paper's numbers
    assert first.metrics["n_groups"] + first.metrics["n_images_short"] == 10
    assert first.metrics["acb"]["protocol"] == "acb" and first.metrics["acb"]["n_images"] == 10
    assert len(first.stems) == 10 and len(first.history) == 2
    stamp = first.checkpoint.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("retrained on a cache hit")

    monkeypatch.setattr(Trainer, "fit", no_training)
    monkeypatch.setattr(ex.runner, "_split", no_training)  # a hit reads no data either
    again = run_experiment(Experiment("same spec, other label"), settings, setup=setup)
    assert again.cached and again.key == first.key and again.experiment.name == "same spec, other label"
    assert again.metrics == first.metrics and again.history == first.history and again.stems == first.stems
    for a, b in zip(
        first.pred_ranks + first.boxes + first.gt_scores,
        again.pred_ranks + again.boxes + again.gt_scores,
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert first.checkpoint.stat().st_mtime_ns == stamp
    # the cached ranks are those of the cached checkpoint
    monkeypatch.undo()
    model = again.load_model()
    from salrank.fosrnet.evaluate import evaluate_model

    assert again.row()["experiment"] == "same spec, other label"
    test = _test_split(setup, settings)
    assert again.metrics["acb"]["srcc"] == pytest.approx(evaluate_model(model, test, protocol="acb")["srcc"])
    assert again.metrics["srcc"] == pytest.approx(evaluate_model(model, test, protocol="official")["srcc"])


def _test_split(setup, settings, gamma=0.2, beta=0.5):
    return ex.prepare._split(setup, settings, 2, setup.detector, gamma, beta, False, None)


def test_interrupted_run_resumes_from_its_checkpoint(setup, settings, monkeypatch):
    exp = Experiment("fc", {"head": "fc"})
    first = run_experiment(exp, settings, setup=setup)
    (first.directory / "result.json").unlink()  # as if killed after training, before the result was written

    def no_epoch(self):
        raise AssertionError("trained again although last.pt holds every epoch")

    monkeypatch.setattr(Trainer, "train_epoch", no_epoch)
    again = run_experiment(exp, settings, setup=setup)
    assert not again.cached and again.metrics == first.metrics and again.history == first.history


def test_same_seed_is_deterministic_and_seed_matters(setup, tmp_path):
    exp = Experiment("gcn", {"head": "gcn"}, seed=3)
    a = run_experiment(
        exp, get_settings(profile="sample", device="cpu", cache_dir=tmp_path / "a"), setup=setup
    )
    b = run_experiment(
        exp, get_settings(profile="sample", device="cpu", cache_dir=tmp_path / "b"), setup=setup
    )
    assert a.key == b.key and a.directory != b.directory and not b.cached
    assert a.metrics == b.metrics
    for x, y in zip(a.pred_ranks, b.pred_ranks, strict=True):
        np.testing.assert_array_equal(x, y)
    other = run_experiment(
        replace(exp, seed=4),
        get_settings(profile="sample", device="cpu", cache_dir=tmp_path / "a"),
        setup=setup,
    )
    assert other.key != a.key
    wa, wo = a.load_model().state_dict(), other.load_model().state_dict()
    assert not all(torch.equal(wa[k], wo[k]) for k in wa)


def _store(counts):
    n = sum(counts)
    arrays = {
        "local": np.zeros((n, 192), np.float32),
        "global": np.zeros((n, 192), np.float32),
        "appearance": np.zeros((n, 8), np.float32),
        "centers": np.zeros((n, 2), np.float32),
        "boxes": np.tile([0, 0, 10, 10], (n, 1)).astype(np.float32),
        "scores": np.ones(n, np.float32),
        "geometry": np.zeros((n, 3), np.float32),
    }
    return FeatureStore(
        arrays,
        np.concatenate([[0], np.cumsum(counts)]),
        [f"im{i}" for i in range(len(counts))],
        [(10, 10)] * len(counts),
    )


def test_shuffle_gt_permutes_within_images_and_is_seeded():
    counts = [6, 1, 0, 7, 5]
    rng = np.random.default_rng(0)
    scores = [rng.random(n) for n in counts]
    ranks = [np.argsort(np.argsort(-s)) + 1 for s in scores]
    split = RankingSplit(_store(counts), scores, ranks)
    out = shuffle_gt_within_images(split, seed=1)
    changed = 0
    for s, r, s2, r2 in zip(scores, ranks, out.gt_scores, out.gt_ranks, strict=True):
        assert sorted(s2) == sorted(s)  # the same labels, within the same image
        assert sorted(zip(s2, r2, strict=True)) == sorted(
            zip(s, r, strict=True)
        )  # scores and ranks move together
        changed += not np.array_equal(s, s2)
    assert changed >= 2 and out.features is split.features
    again = shuffle_gt_within_images(split, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(out.gt_scores, again.gt_scores, strict=True))
    for other in (shuffle_gt_within_images(split, seed=2), shuffle_gt_within_images(split, seed=1, stream=1)):
        assert not all(np.array_equal(a, b) for a, b in zip(out.gt_scores, other.gt_scores, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(split.gt_scores, scores, strict=True))  # input untouched


def test_shuffle_gt_trains_on_shuffled_labels_and_tests_on_real_ones(setup, settings, monkeypatch):
    seen = {}
    original = Trainer.__init__

    def spy(self, model_config, config, train, val=None, *args, **kwargs):
        seen["train"], seen["val"] = train, val
        original(self, model_config, config, train, val, *args, **kwargs)

    monkeypatch.setattr(Trainer, "__init__", spy)
    real = run_experiment(Experiment("real", {"head": "fc"}, seed=5), settings, setup=setup)
    real_train = seen.pop("train")
    shuffled = run_experiment(
        Experiment("shuffled", {"head": "fc"}, seed=5, shuffle_gt=True), settings, setup=setup
    )
    assert shuffled.key != real.key
    expected = shuffle_gt_within_images(real_train, 5, stream=0)
    for a, b in zip(seen["train"].gt_scores, expected.gt_scores, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(seen["train"].gt_scores, real_train.gt_scores, strict=True)
    )
    for a, b in zip(shuffled.gt_scores, real.gt_scores, strict=True):  # the test labels are the real ones
        np.testing.assert_array_equal(a, b)


def test_run_experiments_table(setup, settings):
    exps = [Experiment("row 1", TABLE2_ROWS[1]), Experiment("fc gamma 0.5", {"head": "fc"}, gamma=0.5)]
    df = run_experiments(exps, settings, setup=setup)
    assert list(df.columns) == [
        "experiment",
        "head",
        "gamma",
        "beta",
        "detector",
        "shuffle_gt",
        "seed",
        "protocol",
        *METRIC_COLUMNS,
        "best_epoch",
        "epochs",
        "train_s",
        "cached",
        "key",
    ]
    assert df["experiment"].tolist() == ["row 1", "fc gamma 0.5"] and df["head"].tolist() == ["fc", "fc"]
    assert df["gamma"].tolist() == [0.2, 0.5] and (df["detector"] == "oracle").all()
    assert (df["protocol"] == "official").all()  # n_images = the official groups: images with >= 5 proposals
    assert df["n_images"].between(1, 10).all() and df["srcc"].between(-1, 1).all() and df["f1"].between(0, 1).all()
    assert not df["cached"].any() and df["key"].nunique() == 2
    assert run_experiments(exps, settings, setup=setup)["cached"].all()
    with pytest.raises(ValueError, match="duplicate"):
        run_experiments([exps[0], exps[0]], settings, setup=setup)


def test_result_accessors_agree_with_the_metrics(setup, settings):
    res = run_experiment(Experiment("fc", {"head": "fc"}), settings, setup=setup)
    per = res.per_image()
    assert isinstance(per, pd.DataFrame) and list(per.index) == res.stems
    used = per[~per["constant_gt"].astype(bool)]
    assert used["srcc"].fillna(0).mean() == pytest.approx(res.metrics["acb"]["srcc"])  # per image: acb
    one = res.image(res.stems[3])
    assert one["boxes"].shape == (len(one["pred_ranks"]), 4)
    assert sorted(one["pred_ranks"].tolist()) == list(range(1, len(one["pred_ranks"]) + 1))
    info = json.loads((res.directory / "result.json").read_text())
    assert info["spec"]["model"]["head"] == "fc" and info["setup"]["dataset"] == "synthsal"


def test_cache_key_covers_what_changes_results(setup):
    settings = get_settings(profile="sample")
    base = experiment_key(Experiment("a"), setup, settings)
    assert (
        experiment_key(Experiment("b", {"head": "vit"}), setup, settings) == base
    )  # name and defaults don't count
    assert experiment_key(Experiment("row 7", TABLE2_ROWS[7]), setup, settings) == base
    assert experiment_key(Experiment("a"), replace(setup, device="cuda", threads=4), settings) == base
    for changed in (
        Experiment("a", gamma=0.5),
        Experiment("a", beta=0.4),
        Experiment("a", {"head": "gcn"}),
        Experiment("a", detector="true"),
        Experiment("a", shuffle_gt=True),
        Experiment("a", seed=1),
        Experiment("a", train={"lr": 0.01}),
        Experiment("a", {"normalize": False}),
    ):
        assert experiment_key(changed, setup, settings) != base, changed
    assert experiment_key(Experiment("a"), replace(setup, limits=(10, None, None)), settings) != base
    assert experiment_key(Experiment("a"), replace(setup, head_kwargs={}), settings) != base


def test_bad_specs_raise_clearly():
    with pytest.raises(ValueError, match=r"Experiment 'x': unknown model option\(s\) \['use_psf'\]"):
        Experiment("x", {"use_psf": False})
    with pytest.raises(ValueError, match=r"unknown train option\(s\) \['learning_rate'\]"):
        Experiment("x", train={"learning_rate": 1})
    with pytest.raises(ValueError, match="unknown head 'mlp'"):
        Experiment("x", {"head": "mlp"})
    with pytest.raises(ValueError, match="at least one of"):
        Experiment("x", {"use_pse": False, "use_local": False, "use_global": False, "use_pe": False})
    with pytest.raises(ValueError, match="Experiment 'x'.*widht"):
        Experiment("x", {"head_kwargs": {"widht": 3}})
    with pytest.raises(ValueError, match="gamma"):
        Experiment("x", gamma=-0.1)
    with pytest.raises(ValueError, match="non-empty"):
        Experiment("")
    with pytest.raises(TypeError, match="mapping"):
        Experiment("x", model=[("head", "fc")])
    with pytest.raises(TypeError, match="expected an Experiment"):
        run_experiment({"name": "x"})
    with pytest.raises(ValueError, match="ExperimentSetup.dataset"):
        ExperimentSetup(profile="sample", dataset="coco")
    with pytest.raises(ValueError, match=r"ExperimentSetup.train: unknown option\(s\) \['epoch'\]"):
        ExperimentSetup(profile="sample", dataset="synthsal", train={"epoch": 3})
    with pytest.raises(TypeError, match="unknown options"):
        profile_setup(get_settings(profile="sample"), limit=3)


def test_profile_setups_and_defaults():
    sample = profile_setup(get_settings(profile="sample", device="cpu"))
    assert (sample.dataset, sample.detector, sample.backbone, sample.preset) == (
        "synthsal",
        "oracle",
        "resnet18",
        "fast",
    )
    assert sample.limits == SAMPLE.limits == (150, 50, 100) and sample.threads == 1 and sample.device == "cpu"
    assert sample.normalize and sample.train == {"epochs": 12} and sample.pretrained == "auto"
    assert sample.head_kwargs["vit"] == {"width": 128, "depth": 2, "num_heads": 4}
    full = profile_setup(get_settings(profile="full", device="cpu"))
    assert (full.dataset, full.detector, full.backbone, full.pretrained, full.preset) == (
        "salicon",
        "efficientdet_d0",
        "resnet101",
        True,
        "paper",
    )
    assert full.limits == (None, None, None) and full.head_kwargs == {} and full.features == FeatureConfig()
    assert not full.normalize and full.train == {}  # the paper's model has no standardisation
    # a dataset override brings its proposal source; an explicit detector wins
    assert profile_setup(get_settings(profile="full"), dataset="synthsal").detector == "oracle"
    assert profile_setup(get_settings(profile="sample"), dataset="salicon").detector == "efficientdet_d0"
    assert profile_setup(get_settings(profile="sample"), dataset="salicon", detector="true").detector == "true"
    # an explicit profile object instead of the settings' name
    assert profile_setup(get_settings(profile="sample"), FULL).backbone == "resnet101"
    with pytest.raises(ValueError, match="pretrained"):
        replace(sample, pretrained="yes")


# --- salrank.analysis.ablations -------------------------------------------------------------------------
def test_ablation_tables_hand_case():
    from salrank.analysis.ablations import reg_vs_cls_table, summarise, table2_table

    df = pd.DataFrame({"row": [3, 3, 1], "srcc": [0.2, 0.4, 0.5], "f1": [0.1, 0.3, 0.6]})
    s = summarise(df, "row")
    assert list(s.index) == [3, 1] and s.loc[3, "srcc"] == pytest.approx(0.3)
    assert s.loc[3, "srcc_sd"] == pytest.approx(np.std([0.2, 0.4], ddof=1)) and np.isnan(s.loc[1, "srcc_sd"])
    assert s["n_seeds"].tolist() == [2, 1]
    t = table2_table(df)
    assert t.loc[3, ["PSE", "LF", "GF", "PE", "TEB", "HA"]].tolist() == ["✘", "✔", "✔", "✘", "✘", "✘"]
    assert t.loc[1, "SRCC (paper)"] == 0.778 and t.loc[3, "F1 (ours)"] == pytest.approx(0.2)
    assert "SRCC sd" in t.columns
    with pytest.raises(KeyError, match="missing columns"):
        summarise(df, "gamma")

    rv = pd.DataFrame(
        {
            "gamma": [0.1, 0.1, 0.8, 0.8],
            "model": ["Ours (Cls.)", "Ours (Reg.)"] * 2,
            "srcc": [0.5, 0.3, 0.4, 0.4],
            "f1": [0.3, 0.2, 0.2, 0.25],
        }
    )
    t = reg_vs_cls_table(rv)
    assert list(t.index) == ["0.1", "0.8", "mean"]
    assert t.loc["0.1", "SRCC gain (ours)"] == pytest.approx(0.2) and t.loc[
        "0.8", "F1 gain (ours)"
    ] == pytest.approx(-0.05)
    assert (
        t.loc["mean", "SRCC gain (ours)"] == pytest.approx(0.1) and t.loc["0.8", "SRCC Cls. (paper)"] == 0.896
    )
    with pytest.raises(ValueError, match="lacks"):
        reg_vs_cls_table(rv.iloc[:3])


def test_heads_and_gamma_tables_pick_their_slices():
    from salrank.analysis.ablations import gamma_table, heads_table

    df = pd.DataFrame(
        {
            "head": ["fc", "vit", "vit", "gcn"],
            "gamma": [0.2, 0.2, 0.5, 0.5],
            "srcc": [0.1, 0.2, 0.3, 0.4],
            "f1": [0.5, 0.6, 0.7, 0.8],
        }
    )
    h = heads_table(df)
    assert (
        list(h.index) == ["FC", "ViT"]
        and h.loc["ViT", "SRCC (paper)"] == 0.908
        and h.loc["FC", "F1 (ours)"] == 0.5
    )
    g = gamma_table(df)
    assert (
        list(g.index) == [0.2, 0.5] and g.loc[0.5, "SRCC (ours)"] == 0.3 and g.loc[0.5, "F1 (paper)"] == 0.701
    )
    with pytest.raises(ValueError, match="no results"):
        heads_table(df, gamma=0.8)


def test_run_table2_grid(setup, settings):
    from salrank.analysis.ablations import run_reg_vs_cls, run_table2, table2_table

    res = run_table2(settings, setup=setup, seeds=[0, 1], rows=[1, 5])
    assert res["row"].tolist() == [1, 1, 5, 5] and res["seed"].tolist() == [0, 1, 0, 1]
    assert res["experiment"].tolist() == [
        "row 1 (seed 0)",
        "row 1 (seed 1)",
        "row 5 (seed 0)",
        "row 5 (seed 1)",
    ]
    t = table2_table(res)
    assert list(t.index) == [1, 5] and t.loc[5, "SRCC (ours)"] == pytest.approx(res["srcc"][2:].mean())
    with pytest.raises(ValueError, match="unknown Table II rows"):
        run_table2(settings, setup=setup, rows=[8])
    rv = run_reg_vs_cls(settings, setup=setup, gammas=[0.5])
    assert rv["model"].tolist() == ["Ours (Cls.)", "Ours (Reg.)"] and rv["head"].tolist() == ["vit", "reg"]


def test_describe_setup_names_the_weights_and_the_additions(setup, tmp_path, monkeypatch):
    from salrank.analysis.experiments import describe_setup

    monkeypatch.setattr("salrank.weights._reachable", lambda url, timeout=0: False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    settings = get_settings(profile="sample", weights_dir=tmp_path)
    said = describe_setup(setup, settings)
    assert said["weights"] == "UNISAL: random, seed 0; resnet18: random, seed 0"
    assert any("standardisation" in line and "salrank addition" in line for line in said["extra"])
    full = profile_setup(get_settings(profile="full", device="cpu"))
    said = describe_setup(full, get_settings(profile="full", weights_dir=tmp_path))
    assert said["weights"].startswith("MISSING") and "unisal" in said["weights"]
    assert not any("standardisation" in line for line in said["extra"])
    assert not any("narrowed" in line for line in said["extra"])  # the paper's heads
