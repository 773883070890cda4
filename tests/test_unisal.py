"""UNISAL: official state-dict layout, forward-pass invariants, preprocessing, boxes, loading."""

from __future__ import annotations

import ast
import math
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision.ops import roi_align

from salrank.models import unisal
from salrank.models.unisal import (
    UNISAL,
    boxes_to_feature_coords,
    feature_scale,
    gaussian_prior_maps,
    initial_gaussians,
    initial_smoothing_kernel,
    load_unisal,
    network_size_for,
    preprocess,
    roi_boxes,
    to_rgb_image,
)
from salrank.weights import WeightsNotFoundError

KEYS_TSV = Path(__file__).parent / "data" / "unisal_state_dict_keys.tsv"  # the released state dict's keys


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth synthetic RGB image with a bright blob (uint8)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.2, 0.8, 2) * (height, width)
    blob = np.exp(-(((y - cy) / (0.2 * height)) ** 2 + ((x - cx) / (0.2 * width)) ** 2))
    base = rng.uniform(0, 80, 3)
    return np.clip(base + 170 * blob[..., None] * rng.uniform(0.5, 1, 3), 0, 255).astype(np.uint8)


def _randomise_(model: torch.nn.Module, seed: int) -> None:
    """Perturb every float parameter and buffer (BN statistics included), deterministically."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                noise = torch.randn(t.shape, generator=gen) * 0.05
                t.copy_(t.abs() + 0.5 + noise if "running_var" in name else t + noise)


@pytest.fixture(scope="module")
def model() -> UNISAL:
    torch.manual_seed(0)
    m = UNISAL()
    _randomise_(m, seed=1)
    return m.eval()


# --- official layout --------------------------------------------------------------------------------
def test_state_dict_matches_official_checkpoint_layout():
    expected = []
    for line in KEYS_TSV.read_text().splitlines():
        name, shape, dtype = line.split("\t")
        expected.append((name, tuple(ast.literal_eval(shape)), dtype))
    assert len(expected) == 835
    got = [(k, tuple(v.shape), str(v.dtype)) for k, v in UNISAL().state_dict().items()]
    assert got == expected  # names, order, shapes and dtypes, entry for entry


def test_official_initial_values():
    m = UNISAL()
    g = initial_gaussians()
    assert g.shape == (16, 2, 2)
    expected_rows = [((a, -1.5), (b, -1.5)) for a in (0.25, 0.5, 0.75) for b in (0.25, 0.5, 0.75)]
    expected_rows += [((0.5, 0.0), (b, -1.5)) for b in (0.25, 0.5, 0.75)]
    expected_rows += [((a, -1.5), (0.5, 0.0)) for a in (0.25, 0.5, 0.75)]
    expected_rows += [((0.5, 0.0), (0.5, 0.0))]
    assert torch.equal(g, torch.tensor(expected_rows))
    for src in ("dhf1k", "hollywood", "ucfsports", "salicon"):
        assert torch.equal(getattr(m, f"coarse_gaussians_{src}").data, g)
        assert torch.equal(getattr(m, f"smoothing_{src}").weight.data, initial_smoothing_kernel())
    k = initial_smoothing_kernel()[0, 0].double()
    assert k.shape == (41, 41) and k.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert divmod(int(k.argmax()), 41) == (20, 20)
    assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0))
    # neighbour / centre = exp(-0.5 * (0.025 / e^-2)^2): grid step 1/40, std e^-2
    assert (k[20, 21] / k[20, 20]).item() == pytest.approx(
        math.exp(-0.5 * (0.025 / math.exp(-2)) ** 2), rel=1e-5
    )


def test_gaussian_prior_maps_hand_values():
    params = torch.tensor([[[0.5, 0.0], [0.5, 0.0]], [[0.0, math.log(0.5)], [1.0, math.log(2.0)]]])
    maps = gaussian_prior_maps(params, 3, 3)
    assert maps.shape == (2, 3, 3)
    assert maps[0, 1, 1].item() == pytest.approx(6.0)
    assert maps[0, 0, 0].item() == pytest.approx(6 * math.exp(-0.25))  # two factors exp(-0.5 * 0.5^2)
    # mu_y 0, std_y 0.5; mu_x 1, std_x 2: at (y=0.5, x=0) -> 6 exp(-0.5) exp(-0.125)
    assert maps[1, 1, 0].item() == pytest.approx(6 * math.exp(-0.5) * math.exp(-0.125))


def test_domain_batch_norms_are_selected_by_source(model):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = model(x, source="SALICON")
        b = model(x, source="DHF1K")
    assert not torch.allclose(a, b)
    assert model.skip_2x.expansion[1].source == "DHF1K"
    with pytest.raises(ValueError, match="unknown source"):
        model(x, source="salicon")


# --- size rule and preprocessing ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image_size", "expected"),
    [
        ((480, 640), (288, 384)),
        ((640, 480), (384, 288)),
        ((500, 500), (320, 320)),
        ((1080, 1920), (256, 416)),
    ],
)
def test_network_size_hand_cases(image_size, expected):
    assert network_size_for(image_size) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000))
def test_network_size_rule_is_valid_and_closest(height, width):
    h, w = network_size_for((height, width))
    n1, n2 = h // 32, w // 32
    assert (h % 32, w % 32) == (0, 0)
    assert 7 <= n1 <= 13 and 7 <= n2 <= 13 and 100 <= n1 * n2 <= 120
    ar = height / width

    def score(a, b):
        return min(ar, a / b) / max(ar, a / b)

    best = max(score(a, b) for a in range(7, 14) for b in range(7, 14) if 100 <= a * b <= 120)
    assert score(n1, n2) == pytest.approx(best, rel=1e-12)


def test_preprocess_matches_imagenet_normalisation():
    img = _image(96, 128)
    pre = preprocess(img)
    assert pre.image_size == (96, 128) and pre.network_size == (288, 384)
    assert pre.tensor.shape == (3, 288, 384) and pre.tensor.dtype == torch.float32
    resized = np.asarray(Image.fromarray(img).resize((384, 288), Image.Resampling.LANCZOS), np.float64) / 255
    expected = (resized - np.array(unisal.IMAGENET_MEAN)) / np.array(unisal.IMAGENET_STD)
    np.testing.assert_allclose(pre.tensor.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="multiples of 32"):
        preprocess(img, network_size=(100, 128))


def test_input_conversion_and_bad_inputs(tmp_path):
    gray = _image(20, 30)[..., 0]
    rgb = to_rgb_image(gray)
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb), np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(np.asarray(to_rgb_image(gray[..., None])), np.asarray(rgb))
    rgba = np.dstack([_image(20, 30), np.full((20, 30), 7, np.uint8)])
    assert np.array_equal(np.asarray(to_rgb_image(rgba)), rgba[..., :3])
    path = tmp_path / "img.png"
    Image.fromarray(gray).save(path)
    assert np.array_equal(np.asarray(to_rgb_image(path)), np.asarray(rgb))
    with pytest.raises(ValueError, match="uint8"):
        to_rgb_image(gray.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_rgb_image(np.zeros((4, 5, 2), np.uint8))
    with pytest.raises(TypeError):
        to_rgb_image(123)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        to_rgb_image(tmp_path / "missing.png")


# --- forward pass ---------------------------------------------------------------------------------------
def test_predict_shapes_and_normalisation_for_many_sizes(model):
    sizes = [(480, 640), (75, 100), (123, 457), (640, 360)]  # 4:3, tiny 4:3, wide, portrait
    images = [_image(h, w, seed=i) for i, (h, w) in enumerate(sizes)]
    maps = model.predict(images)
    assert len(maps) == len(sizes)
    for (h, w), smap in zip(sizes, maps, strict=True):
        assert smap.probability.shape == (h, w) and smap.saliency_uint8.shape == (h, w)
        assert smap.probability.dtype == np.float32 and smap.saliency_uint8.dtype == np.uint8
        assert smap.image_size == (h, w)
        assert smap.network_size == network_size_for((h, w))
        assert float(smap.probability.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)
        assert smap.probability.min() >= 0
        assert smap.saliency_uint8.max() == 255
        # the 0-255 map is the probability map rescaled by its maximum (truncated like the official code)
        rescaled = smap.probability / smap.probability.max() * 255
        assert np.abs(rescaled - smap.saliency_uint8).max() <= 1.0
    assert maps[0].network_size == maps[1].network_size == (288, 384)
    assert maps[3].network_size[0] > maps[3].network_size[1]


def test_predict_single_image_equals_official_forward(model):
    img = _image(120, 160)
    smap = model.predict(img)
    x = preprocess(img).tensor[None, None]
    with torch.no_grad():
        log_p = model(x, target_size=(120, 160))
    assert log_p.shape == (1, 1, 1, 120, 160)
    np.testing.assert_allclose(smap.probability, log_p[0, 0, 0].exp().numpy(), rtol=1e-4, atol=1e-9)


def test_predict_batches_images_of_the_same_network_size(model, monkeypatch):
    images = [_image(480, 640, seed=1), _image(240, 320, seed=2), _image(400, 300, seed=3)]
    alone = model.predict(images[1])
    calls = []
    original = UNISAL.forward_features

    def counting(self, batch, source="SALICON"):
        calls.append(tuple(batch.shape))
        return original(self, batch, source)

    monkeypatch.setattr(UNISAL, "forward_features", counting)
    together = model.predict(images, batch_size=8)
    assert sorted(calls) == [(1, 3, 384, 288), (2, 3, 288, 384)]
    assert [m.image_size for m in together] == [(480, 640), (240, 320), (400, 300)]
    np.testing.assert_allclose(alone.probability, together[1].probability, rtol=1e-4, atol=1e-9)
    calls.clear()
    model.predict(images[:2], batch_size=1, network_size=(64, 96))
    assert calls == [(1, 3, 64, 96)] * 2


def test_features_shape_and_determinism(model):
    images = [_image(480, 640, seed=4), _image(240, 320, seed=5)]
    f1 = model.features(images)
    assert f1.shape == (2, 192, 36, 48)
    p1, p2 = (model.predict(images[0], network_size=(64, 96)) for _ in range(2))
    assert np.array_equal(p1.probability, p2.probability)  # deterministic in eval mode
    portrait = _image(160, 120)
    with pytest.raises(ValueError, match="network sizes"):
        model.features([images[1], portrait])
    per_image = model.features_per_image([images[1], portrait])
    assert [tuple(f.shape) for f in per_image] == [(192, 36, 48), (192, 48, 36)]
    assert torch.allclose(per_image[0], f1[1], atol=1e-5)  # batch-independent


def test_predict_restores_training_mode():
    m = UNISAL()
    m.train()
    m.predict(_image(30, 40))
    assert m.training


def test_grayscale_input_equals_replicated_rgb(model):
    gray = _image(90, 120)[..., 1]
    rgb = np.repeat(gray[..., None], 3, axis=2)
    a, b, c = model.predict([gray, Image.fromarray(gray, mode="L"), rgb], network_size=(96, 128))
    assert np.array_equal(a.probability, c.probability) and np.array_equal(b.probability, c.probability)


def test_fast_smoothing_equals_literal_smoothing(model):
    f_u = torch.randn(2, 192, 12, 16)
    with torch.no_grad():
        model.fast_smoothing = True
        fast = model.saliency_logits(f_u, (96, 128))
        model.fast_smoothing = False
        literal = model.saliency_logits(f_u, (96, 128))
        model.fast_smoothing = True
    assert fast.shape == literal.shape == (2, 1, 96, 128)
    assert torch.allclose(fast, literal, atol=1e-5 * literal.abs().max().item())


def test_recurrent_path_runs_only_for_sequences(model):
    x = torch.randn(1, 2, 3, 64, 64)
    with torch.no_grad():
        seq = model(x, source="DHF1K")
        still = model(x[:, :1], source="DHF1K")
        assert seq.shape == (1, 2, 1, 64, 64)
        assert torch.allclose(seq.exp().sum(dim=(-1, -2)), torch.ones(1, 2, 1))
        saved = model.post_rnn[0].weight.clone()
        model.post_rnn[0].weight.mul_(3.0)
        try:
            assert torch.equal(model(x[:, :1], source="DHF1K"), still)  # the GRU is bypassed
            assert not torch.allclose(model(x, source="DHF1K"), seq)
        finally:
            model.post_rnn[0].weight.copy_(saved)


# --- boxes on f_u ------------------------------------------------------------------------------------------
def test_box_mapping_hand_values():
    assert feature_scale((480, 640), (288, 384)) == pytest.approx((0.075, 0.075))
    fb = boxes_to_feature_coords([[0, 0, 640, 480], [64, 48, 128, 96]], (480, 640), (288, 384))
    torch.testing.assert_close(fb, torch.tensor([[0.0, 0.0, 48.0, 36.0], [4.8, 3.6, 9.6, 7.2]]))
    sy, sx = feature_scale((100, 300), network_size_for((100, 300)))  # aspect not kept exactly
    assert sy != sx
    rois = roi_boxes([[[0, 0, 10, 10]], [[1, 2, 3, 4], [5, 6, 7, 8]]], [(480, 640)] * 2, [(288, 384)] * 2)
    assert rois.shape == (3, 5) and rois[:, 0].tolist() == [0.0, 1.0, 1.0]


def test_roi_align_on_mapped_boxes_samples_the_box_area():
    # a feature map holding each cell's centre x (j + 0.5): the mean inside a box is its centre x
    f_u = (torch.arange(48, dtype=torch.float32) + 0.5).expand(1, 1, 36, 48).contiguous()
    box = [160.0, 120.0, 320.0, 240.0]  # original 480 x 640 pixels -> f_u [12, 9, 24, 18]
    rois = roi_boxes([[box]], [(480, 640)], [(288, 384)])
    pooled = roi_align(f_u, rois, output_size=(4, 4), spatial_scale=1.0, aligned=True)
    assert pooled.mean().item() == pytest.approx(18.0, abs=1e-4)
    assert pooled[0, 0, 0, 0].item() == pytest.approx(12 + 12 / 8, abs=1e-4)  # first bin centre


# --- loading and the offline path ----------------------------------------------------------------------------
def test_strict_save_load_round_trip(tmp_path, model):
    path = tmp_path / "unisal_weights_best.pth"
    torch.save(model.state_dict(), path)
    fresh = UNISAL()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model(x)
        assert not torch.allclose(fresh.eval()(x), expected)
        fresh.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        assert torch.equal(fresh.eval()(x), expected)

    loaded = load_unisal(weights=path, device="cpu")
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    loaded_from_dir = load_unisal(weights=tmp_path, device="cpu")
    assert torch.equal(loaded_from_dir.cnn.features[0][0].weight, model.cnn.features[0][0].weight)


def test_load_rejects_a_mismatching_checkpoint(tmp_path):
    state = UNISAL().state_dict()
    del state["rnn.cell_list.0.drop_mask_1"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="drop_mask_1"):
        load_unisal(weights=path, device="cpu")


def _block_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_offline_without_weights_fails_fast_and_names_the_file(tmp_path, monkeypatch):
    _block_network(monkeypatch)
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    start = time.monotonic()
    with pytest.raises(WeightsNotFoundError, match="unisal_weights_best.pth"):
        load_unisal(device="cpu")
    assert time.monotonic() - start < 30  # no network wait (a hang guard, not a speed target)
    with pytest.raises(WeightsNotFoundError, match="nothere.pth"):
        load_unisal(weights=tmp_path / "nothere.pth", device="cpu")


def test_random_init_never_touches_files_or_network(monkeypatch):
    _block_network(monkeypatch)
    m = load_unisal(pretrained=False, device="cpu")
    assert isinstance(m, UNISAL) and not m.training
    with pytest.raises(ValueError, match="pretrained=False"):
        load_unisal(weights="x.pth", pretrained=False)


def test_benchmark_smoke():
    from salrank.bench.unisal import benchmark

    res = benchmark(batch_size=1, repeats=2, image_size=(48, 64), network_size=(64, 96), warmup=0)
    assert res["network_size"] == (64, 96)
    for key in ("predict_images_per_s", "features_images_per_s", "predict_direct_smoothing_images_per_s"):
        stats = res[key]
        assert 0 < stats["min"] <= stats["median"] <= stats["max"]
    assert res["fast_smoothing_speedup"] > 0
