"""salrank.profiles: the sample and full profiles, resolved once; nothing else branches on their names."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import salrank
from salrank import config
from salrank.analysis.experiments import Experiment
from salrank.fosrnet.model import FOSRNet
from salrank.profiles import FULL, PROFILES, SAMPLE, get_profile


def test_get_profile(monkeypatch):
    assert get_profile("sample") is SAMPLE and get_profile("full") is FULL
    monkeypatch.setenv("SALRANK_PROFILE", "full")
    assert get_profile() is FULL
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")
    assert tuple(PROFILES) == config.PROFILES  # the settings accept exactly these names


def test_profiles_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SAMPLE.epochs = 3
    with pytest.raises(TypeError):
        SAMPLE.head_kwargs["vit"]["width"] = 8


def test_full_is_the_papers_model_and_sample_narrows_it():
    """The full profile builds the paper's FOSRNet (no standardisation buffers, ViT width 384 x 4 blocks);
    the sample profile narrows the heads and standardises the features (a salrank addition)."""
    exp = Experiment("x")
    full = FOSRNet(exp.model_config(2048, FULL.head_kwargs, FULL.normalize))
    sample = FOSRNet(exp.model_config(512, SAMPLE.head_kwargs, SAMPLE.normalize))
    assert not any(k.startswith(("mean_", "std_")) for k in full.state_dict())
    assert {"mean_local", "std_appearance"} <= set(sample.state_dict())
    n_full = sum(p.numel() for p in full.parameters())
    n_sample = sum(p.numel() for p in sample.parameters())
    assert n_sample < n_full / 10
    assert (FULL.pretrained, SAMPLE.pretrained) == (True, "auto")
    assert FULL.backbone == "resnet101" and SAMPLE.backbone == "resnet18"


def test_detector_follows_the_dataset():
    assert SAMPLE.detector_for("synthsal") == FULL.detector_for("synthsal") == "oracle"
    assert SAMPLE.detector_for("salicon") == FULL.detector_for("salicon") == "efficientdet_d0"


def test_nothing_else_branches_on_the_profile_name():
    root = Path(salrank.__file__).parent
    pattern = re.compile(r"""profile\s*[!=]=\s*["']|["'](sample|full)["']\s*[!=]=\s*\w*profile""")
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py") if p.name not in ("profiles.py",)
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert offenders == []
