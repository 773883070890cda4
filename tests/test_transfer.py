"""Applying a trained experiment to other proposals / images (Fig. 10 out-of-domain, Table VI)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from salrank.analysis.experiments import Experiment, ExperimentSetup, open_scene_set, run_experiment
from salrank.analysis.transfer import apply_experiment, experiment_rankings
from salrank.config import get_settings
from salrank.data.synthsal import SynthSalConfig, generate_dataset
from salrank.fosrnet.features import FeatureConfig


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, torch_one_thread):
    """A 1-epoch experiment on a tiny SynthSal (8/4/4 scenes of 96 x 128) with random extractors."""
    root = tmp_path_factory.mktemp("tiny-synthsal")
    config = SynthSalConfig(height=96, width=128, objects=(3, 6), observers=(5, 10), points_per_image=(60, 120))
    generate_dataset(root, n_train=8, n_val=4, n_test=4, seed=0, config=config, progress=False)
    setup = ExperimentSetup(profile="sample", dataset="synthsal", dataset_root=str(root), pretrained=False,
                            features=FeatureConfig(mode="roi", unisal_network_size=(96, 128), roi_image_size=(96, 128)),
                            preset="fast", train={"epochs": 1})
    settings = get_settings(profile="sample", cache_dir=str(tmp_path_factory.mktemp("cache")))
    result = run_experiment(Experiment("tiny"), settings, setup=setup)
    return result, setup, settings


def test_experiment_rankings_match_result(tiny):
    result, setup, settings = tiny
    rankings = experiment_rankings(result, open_scene_set("synthsal", "test", settings, synthsal_root=setup.dataset_root))
    assert [r.stem for r in rankings] == result.stems
    for r, pred, boxes in zip(rankings, result.pred_ranks, result.boxes, strict=True):
        np.testing.assert_array_equal(r.pred_ranks, pred)
        np.testing.assert_array_equal(r.boxes, boxes)
        assert r.image_size == (96, 128)
    with pytest.raises(KeyError, match="no image"):
        experiment_rankings(result, open_scene_set("synthsal", "val", settings, synthsal_root=setup.dataset_root))


def test_apply_reproduces_the_experiments_test_predictions(tiny):
    result, setup, settings = tiny
    test = open_scene_set("synthsal", "test", settings, synthsal_root=setup.dataset_root)
    out = apply_experiment(result, test, [setup.detector, "true"], settings=settings, setup=setup)
    same = out[setup.detector]
    assert [r.stem for r in same.rankings] == result.stems
    for r, pred, scores in zip(same.rankings, result.pred_ranks, result.gt_scores, strict=True):
        np.testing.assert_array_equal(r.pred_ranks, pred)
        np.testing.assert_allclose(r.gt_scores, scores)
    assert same.metrics["srcc"] == pytest.approx(result.metrics["acb"]["srcc"])  # apply_experiment: acb
    true = out["true"]
    for r in true.rankings:  # the scene set's own boxes, ranked 1..n
        np.testing.assert_allclose(r.boxes, test.boxes_of(r.stem), atol=1e-4)
        assert sorted(r.pred_ranks) == list(range(1, len(r.boxes) + 1))
    assert true.metrics["n_images"] == len(test)


def test_apply_checks_its_inputs(tiny):
    result, setup, settings = tiny
    test = open_scene_set("synthsal", "test", settings, synthsal_root=setup.dataset_root)
    with pytest.raises(ValueError, match="not run on this setup"):
        apply_experiment(result, test, settings=settings, setup=replace(setup, top_n=5))
    with pytest.raises(ValueError, match="no proposal source"):
        apply_experiment(result, test, [], settings=settings, setup=setup)
