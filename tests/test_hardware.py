"""salrank.bench.hardware: FLOP counting, the matmul rate, network stubs and the host-overhead figure."""

from __future__ import annotations

import pytest
import torch

from salrank.bench.core import BenchConfig
from salrank.bench.hardware import (
    _stub_backbone,
    _stub_ranker,
    _StubDetector,
    _StubUnisal,
    bench_host_overhead,
    count_flops,
    matmul_rate,
)


def test_count_flops_by_hand():
    lin = torch.nn.Linear(7, 5, bias=False)
    assert count_flops(lin, torch.zeros(3, 7)) == 2 * 3 * 7 * 5
    a, b = torch.zeros(4, 6), torch.zeros(6, 9)
    assert count_flops(torch.matmul, a, b) == 2 * 4 * 6 * 9
    assert count_flops(torch.relu, a) == 0  # only matmul-like ops count


def test_matmul_rate_positive_and_one_sample_per_repeat():
    rates = matmul_rate(BenchConfig(repeats=2), n=64, repeats=2)
    assert len(rates) == 2 and all(r > 0 for r in rates)


def test_stubs_have_the_real_shapes():
    from salrank.models.backbones import load_backbone
    from salrank.models.unisal import network_size_for

    real = load_backbone("resnet18", pretrained=False, device="cpu")
    stub = _stub_backbone(real.dim, real.stride, torch.device("cpu"))
    x = torch.zeros(2, 3, 96, 128)
    with torch.no_grad():
        assert stub(x).shape == real(x).shape
        assert stub.pooled(x).shape == real.pooled(x).shape
    from PIL import Image

    im = Image.new("RGB", (640, 480))
    (f,) = _StubUnisal("cpu").features_per_image([im])
    h, w = network_size_for((480, 640))
    assert f.shape == (192, h // 8, w // 8)
    (det,) = _StubDetector(10, 0).detect([im])
    assert det.boxes.shape == (10, 4) and list(det.scores) == sorted(det.scores, reverse=True)
    assert (det.boxes[:, 2] <= 640).all() and (det.boxes[:, 3] <= 480).all()


def test_stub_ranker_keeps_ecs_and_acb():
    import numpy as np

    from salrank.bench.core import random_features
    from salrank.fosrnet.model import create_fosrnet

    model = _stub_ranker(create_fosrnet(appearance_dim=64))
    ranks = model.predict_ranks([random_features(np.random.default_rng(0), n, 64) for n in (10, 3)])
    assert sorted(ranks[0].tolist()) == list(range(1, 11))  # a permutation of 1..n, as the real head gives
    assert sorted(ranks[1].tolist()) == [1, 2, 3]


@pytest.mark.slow
def test_host_overhead_figures():
    out = {m.name: m for m in bench_host_overhead(BenchConfig(repeats=1), n_images=3)}
    assert set(out) == {f"{mode}_{path}_ms" for mode in ("crop", "roi") for path in ("per_image", "batched")}
    assert all(m.unit == "ms/image" and m.better == "lower" and m.median > 0 for m in out.values())
