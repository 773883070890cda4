"""End-to-end ranking (salrank.fosrnet.pipeline) and the train / eval / rank commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from salrank.cli import main
from salrank.fosrnet.model import create_fosrnet
from salrank.fosrnet.pipeline import RankingPipeline, draw_ranking
from salrank.models.backbones import feature_extractors

SMALL = ["--unisal-size", "96", "128", "--crop-size", "64", "--no-progress"]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("SALRANK_CACHE", str(base / "cache"))
    monkeypatch.setenv("SALRANK_PROFILE", "sample")
    monkeypatch.setenv("SALRANK_WEIGHTS", str(base / "no-weights"))
    monkeypatch.setenv("TORCH_HOME", str(base / "torch-home"))
    monkeypatch.setenv("SALRANK_DEVICE", "cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from salrank.data.synthsal import SynthSalConfig, generate_dataset

    root = tmp_path_factory.mktemp("tinysynth")
    generate_dataset(root, n_train=10, n_val=6, n_test=4, seed=0, config=SynthSalConfig(height=96, width=128),
                     progress=False)
    return root


def test_pipeline_ranks_oracle_proposals_and_draws(tiny, tmp_path):
    from salrank.data.synthsal import load_synthsal
    from salrank.proposals import create_detector

    part = load_synthsal(tiny, "test", cache=False)
    detector = create_detector("oracle", true_boxes=part.boxes, score_threshold=0.0)
    torch.manual_seed(0)
    unisal, cnn, identity = feature_extractors(False, 0, "resnet18", "cpu")
    pipe = RankingPipeline(detector, unisal, cnn, create_fosrnet(appearance_dim=512))
    assert pipe.weights == identity
    pipe.feature_config = type(pipe.feature_config)(unisal_network_size=(96, 128), crop_size=64)
    paths = [part.image_paths[s] for s in part.stems[:2]]
    results = pipe.rank([str(p) for p in paths])
    assert [r.name for r in results] == [p.name for p in paths]
    for r in results:
        n = len(r.boxes)
        assert 1 <= n <= 10 and sorted(r.ranks.tolist()) == list(range(1, n + 1))
        assert r.image_size == (96, 128) and np.all(np.diff(r.scores) <= 0)  # highest score first
    out = draw_ranking(paths[0], results[0], tmp_path / "o.png")
    assert out.stat().st_size > 0


def test_cli_train_eval_rank(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--synthsal-root", str(tiny), "--epochs", "2", "--batch-size", "16", "--out", str(run),
                 *SMALL])
    assert code == 0
    out = capsys.readouterr().out
    assert "RANDOM weights" in out  # the sample profile falls back to random extractors, and says so
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["epochs"] == 2 and (run / "best.pt").is_file()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2

    result = tmp_path / "test.json"
    assert main(["eval", "--checkpoint", str(run / "best.pt"), "--synthsal-root", str(tiny), "--split", "test",
                 "--json", str(result), "--no-progress", "--protocol", "acb"]) == 0
    metrics = json.loads(result.read_text())
    assert metrics["n_images"] == 4 and -1 <= metrics["srcc"] <= 1 and 0 <= metrics["f1"] <= 1
    assert {"plcc", "rmse", "acc_top1", "acc_top2", "acc_top3", "sa_sor"} <= set(metrics)
    assert metrics["weights"] == "UNISAL: random, seed 0; resnet18: random, seed 0"
    assert metrics["protocol"] == "acb"
    assert main(["eval", "--checkpoint", str(run / "best.pt"), "--synthsal-root", str(tiny), "--split", "test",
                 "--json", str(result), "--no-progress"]) == 0  # default: the official protocol
    metrics = json.loads(result.read_text())
    assert metrics["protocol"] == "official" and "protocol: official" in capsys.readouterr().out
    assert metrics["n_groups"] + metrics["n_images_short"] == 4
    assert {"srcc", "plcc", "rmse", "f1", "acc_first", "acc_second", "acc_third"} <= set(metrics)

    image = next((tiny / "images" / "test").iterdir())
    ranked, overlay = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["rank", str(image), "--checkpoint", str(run / "best.pt"), "--no-pretrained", "--out", str(ranked),
                 "--overlay", str(overlay)]) == 0
    data = json.loads(ranked.read_text())["images"][0]
    assert sorted(data["ranks"]) == list(range(1, len(data["ranks"]) + 1))
    assert len(data["boxes"]) == len(data["ranks"]) and overlay.stat().st_size > 0


def test_rank_given_boxes_keeps_their_order_and_ranks_peer_images(tiny, tmp_path):
    """``rank_boxes`` (no detector) ranks exactly the boxes given, in their order; the Table I
    ranker built on it returns one rank per box of a peer-dataset image."""
    from salrank.analysis.peer_eval import fosrnet_ranker
    from salrank.data.peers import load_assr, make_demo_tree

    run = tmp_path / "run"
    assert main(["train", "--synthsal-root", str(tiny), "--epochs", "1", "--batch-size", "16", "--out", str(run),
                 *SMALL]) == 0
    pipe = RankingPipeline.from_checkpoint(run / "best.pt", detector=None, pretrained=False, log=None)
    image = next((tiny / "images" / "test").iterdir())
    boxes = np.array([[60, 40, 120, 90], [0, 0, 30, 30], [10, 50, 50, 95], [70, 5, 110, 35]], dtype=float)
    result = pipe.rank_boxes(image, boxes, name="x")
    np.testing.assert_array_equal(result.boxes, boxes)
    assert sorted(result.ranks.tolist()) == [1, 2, 3, 4]
    flipped = pipe.rank_boxes(image, boxes[::-1].copy(), scores=np.linspace(1, 0.5, 4))
    np.testing.assert_array_equal(flipped.boxes, boxes[::-1])
    with pytest.raises(ValueError, match="no detector"):
        pipe.rank([image])

    ds = load_assr(make_demo_tree(tmp_path / "peers", n_images=2)["ASSR"], "test")
    rank = fosrnet_ranker(run / "best.pt", pretrained=False)
    for peer_image in ds.images.values():
        ranks = rank(peer_image, peer_image.boxes)
        assert sorted(ranks.tolist()) == list(range(1, len(peer_image.boxes) + 1))


def test_rank_without_weights_fails_fast_with_the_weights_error(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("salrank.weights._reachable", lambda url, timeout=0: False)
    monkeypatch.setenv("SALRANK_PROFILE", "full")  # the sample profile falls back to random weights instead
    image = next((tiny / "images" / "test").iterdir())
    code = main(["rank", str(image), "--out", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "tf_efficientdet_d0" in err and "not found" in err and "put it at" in err
    assert "--no-pretrained" in err and "pretrained=False" not in err  # the CLI names its own flag
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


def test_cli_errors(tmp_path, capsys):
    assert main(["rank", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "r.json")]) == 2
    assert "image not found" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_rank_in_batches_equals_one_image_at_a_time():
    """The embedded SALICON examples ranked in batches (with DataLoader workers) get the ranks of
    one image per batch."""
    from salrank.data.sample import load_salicon_example_boxes, salicon_example_images
    from salrank.fosrnet.features import FeatureConfig
    from salrank.proposals import create_detector

    images = salicon_example_images()
    paths = [str(images[s]) for s in sorted(images)]
    detector = create_detector("oracle", true_boxes=load_salicon_example_boxes(), score_threshold=0.0)
    unisal, cnn, _ = feature_extractors(False, 0, "resnet18", "cpu")
    torch.manual_seed(0)
    model = create_fosrnet(appearance_dim=512)
    config = FeatureConfig(unisal_network_size=(96, 128), crop_size=64)
    results = {}
    for batch_size, workers in ((1, 0), (4, 2), (16, 0)):
        pipe = RankingPipeline(detector, unisal, cnn, model, config, batch_size=batch_size, num_workers=workers)
        results[batch_size] = pipe.rank(paths)
    for a, b, c in zip(results[1], results[4], results[16], strict=True):
        assert a.name == b.name == c.name and len(a.ranks) >= 2
        for other in (b, c):
            np.testing.assert_array_equal(other.boxes, a.boxes)
            np.testing.assert_array_equal(other.ranks, a.ranks)
    assert any(not np.array_equal(r.ranks, np.arange(1, len(r.ranks) + 1)) for r in results[1])  # not trivial
    with pytest.raises(ValueError, match="batch_size"):
        RankingPipeline(detector, unisal, cnn, model, batch_size=0)
