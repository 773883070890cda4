"""The one pretrained-or-random decision for FOSRNet's feature networks (salrank.models.backbones)."""

from __future__ import annotations

import hashlib

import pytest
import torch

from salrank.fosrnet.features import module_fingerprint
from salrank.models.backbones import (
    BACKBONES,
    NetworkWeights,
    WeightsIdentity,
    feature_extractors,
    load_backbone,
    weights_identity,
)
from salrank.weights import WeightsNotFoundError, get_spec

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty weights folder, no framework cache, no network: nothing pretrained can be found."""
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("salrank.weights._reachable", lambda url, timeout=0: False)
    (tmp_path / "weights").mkdir()
    return tmp_path / "weights"


def test_random_networks_are_seeded_and_labelled(offline):
    unisal, cnn, identity = feature_extractors(False, 3, "resnet18", "cpu")
    assert identity.label == "UNISAL: random, seed 3; resnet18: random, seed 3"
    assert identity.random and identity.rebuild_options() == {"pretrained": False, "seed": 3}
    assert cnn.dim == BACKBONES["resnet18"][1] == 512 and not any(p.requires_grad for p in cnn.parameters())
    again_u, again_c, again = feature_extractors(**identity.rebuild_options(), backbone="resnet18", device="cpu")
    assert again == identity
    assert module_fingerprint(again_c) == module_fingerprint(cnn)
    assert module_fingerprint(again_u) == module_fingerprint(unisal)
    other = feature_extractors(False, 4, "resnet18", "cpu")[1]
    assert module_fingerprint(other) != module_fingerprint(cnn)
    # the identity survives JSON-able storage (feature caches, checkpoints)
    assert WeightsIdentity.from_dict(identity.to_dict()) == identity
    assert weights_identity(False, 3, "resnet18") == identity


def test_auto_loads_the_files_present_and_names_them(offline, monkeypatch):
    """A ResNet18 file in the weights folder (a seeded random ResNet18 saved there), no UNISAL file."""
    import torchvision

    monkeypatch.setattr("salrank.weights.verify", lambda spec, path: None)  # our file is not torchvision's
    torch.manual_seed(7)
    reference = torchvision.models.resnet18(weights=None)
    path = offline / get_spec(BACKBONES["resnet18"][2]).filename
    torch.save(reference.state_dict(), path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    notes = []
    unisal, cnn, identity = feature_extractors("auto", 0, "resnet18", "cpu", log=notes.append)
    assert identity.appearance == NetworkWeights("resnet18", file=path.name, sha256=sha)
    assert identity.unisal == NetworkWeights("UNISAL", seed=0)
    assert identity.label == f"UNISAL: random, seed 0; resnet18: {path.name} (sha256 {sha})"
    assert len(notes) == 1 and "UNISAL" in notes[0] and "RANDOM" in notes[0]
    assert torch.equal(cnn.trunk[0].weight, reference.conv1.weight)  # the file's weights were loaded
    assert identity.rebuild_options() == {"pretrained": "auto", "seed": 0}
    assert weights_identity("auto", 0, "resnet18", offline) == identity
    assert feature_extractors("auto", 0, "resnet18", "cpu")[2] == identity


def test_pretrained_required_fails_naming_the_file(offline):
    with pytest.raises(WeightsNotFoundError, match="unisal_weights_best.pth"):
        feature_extractors(True, 0, "resnet18", "cpu")
    with pytest.raises(WeightsNotFoundError):
        weights_identity(True, 0, "resnet18")
    with pytest.raises(WeightsNotFoundError, match="resnet18"):
        load_backbone("resnet18", pretrained=True)


def test_bad_choices():
    with pytest.raises(ValueError, match="pretrained"):
        feature_extractors("yes", 0, "resnet18", "cpu")
    with pytest.raises(ValueError, match="backbone"):
        feature_extractors(False, 0, "vgg16", "cpu")
    with pytest.raises(ValueError, match="backbone"):
        load_backbone("vgg16", pretrained=False)
    with pytest.raises(ValueError, match="exactly one"):
        NetworkWeights("UNISAL")
    with pytest.raises(ValueError, match="exactly one"):
        NetworkWeights("UNISAL", file="x.pth", seed=0)
    with pytest.raises(ValueError, match="weights identity"):
        WeightsIdentity.from_dict({"unisal": {"network": "UNISAL", "seed": 0}})
    mixed = WeightsIdentity(NetworkWeights("UNISAL", seed=0), NetworkWeights("resnet18", seed=1))
    with pytest.raises(ValueError, match="different random seeds"):
        mixed.rebuild_options()
