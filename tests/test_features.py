"""Per-proposal features (salrank.fosrnet.features): geometry, shapes, modes, the cache and its resumption."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from salrank.fosrnet import features as F
from salrank.fosrnet.features import (
    FeatureConfig,
    FeatureStore,
    ImageProposals,
    box_centers,
    box_geometry,
    enlarge_boxes,
    extract_features,
    features_of_images,
)
from salrank.fosrnet.model import create_fosrnet
from salrank.models.backbones import WeightsIdentity, feature_extractors

SIZE = (96, 128)  # (height, width)
CONFIG = FeatureConfig(unisal_network_size=SIZE, crop_size=32, roi_output=3)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def models():
    return feature_extractors(False, 0, "resnet18", "cpu")[:2]


def _boxes(rng, n):
    xy = rng.uniform(0, [100, 70], (n, 2))
    return np.concatenate([xy, xy + rng.uniform(4, 28, (n, 2))], axis=1)


def _items(n_images, counts, seed=0):
    rng = np.random.default_rng(seed)
    return [ImageProposals(f"img{i}", rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8), _boxes(rng, c),
                           rng.random(c)) for i, c in zip(range(n_images), counts, strict=True)]


def test_enlarge_boxes_hand_cases():
    # centre (20, 40), size 20 x 40 -> 30 x 60 about the same centre
    assert enlarge_boxes([[10, 20, 30, 60]], 1.5, (100, 100)).tolist() == [[5.0, 10.0, 35.0, 70.0]]
    # a corner box is clipped to the image: [-5, -5, 25, 25] -> [0, 0, 25, 25]
    assert enlarge_boxes([[0, 0, 20, 20]], 1.5, (100, 200)).tolist() == [[0.0, 0.0, 25.0, 25.0]]
    # the far edge clips at (width, height)
    assert enlarge_boxes([[180, 90, 200, 100]], 1.5, (100, 200)).tolist() == [[175.0, 87.5, 200.0, 100.0]]
    assert enlarge_boxes(np.zeros((0, 4)), 1.5, (10, 10)).shape == (0, 4)
    with pytest.raises(ValueError, match="scale"):
        enlarge_boxes([[0, 0, 1, 1]], 0, (10, 10))
    with pytest.raises(ValueError, match=r"\(K, 4\)"):
        enlarge_boxes([[0, 0, 1]], 1.5, (10, 10))


def test_centres_and_geometry_hand_case():
    b = [[0, 0, 64, 48], [32, 24, 96, 72]]
    assert box_centers(b, SIZE).tolist() == [[0.25, 0.25], [0.5, 0.5]]
    g = box_geometry(b, SIZE)
    np.testing.assert_allclose(g[0], [0.5, 0.5, 0.5])


@pytest.mark.parametrize("mode", ["crop", "roi"])
def test_shapes_for_0_1_4_200_proposals(models, mode):
    unisal, cnn = models
    counts = [0, 1, 4, 200]
    items = _items(4, counts)
    out = features_of_images(items, unisal, cnn, FeatureConfig(**{**CONFIG.__dict__, "mode": mode}))
    for rec, n, it in zip(out, counts, items, strict=True):
        assert rec["local"].shape == (n, 192) and rec["global"].shape == (n, 192)
        assert rec["appearance"].shape == (n, 512) and rec["centers"].shape == (n, 2)
        assert rec["boxes"].shape == (n, 4) and rec["scores"].shape == (n,) and rec["geometry"].shape == (n, 3)
        assert rec["image_size"] == SIZE
        assert all(np.isfinite(v).all() for k, v in rec.items() if k != "image_size")
        np.testing.assert_allclose(rec["scores"], it.scores, rtol=1e-6)
    # the global box contains the local one: different ROIs, different features (for boxes not filling the image)
    assert not np.allclose(out[3]["local"], out[3]["global"])


def test_local_feature_is_the_mean_of_f_u_on_whole_cells(models):
    """A box covering exactly feature cells [2, 5) x [1, 3) averages f_u over those cells (aligned ROIAlign)."""
    unisal, cnn = models
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    box = np.array([[2 * 8, 1 * 8, 5 * 8, 3 * 8]], float)  # stride 8 at network size = image size
    rec = features_of_images([ImageProposals("a", image, box)], unisal, cnn,
                             FeatureConfig(unisal_network_size=SIZE, crop_size=32, roi_output=2))[0]
    f_u = unisal.features_per_image([image], network_size=SIZE)[0]
    # 2 x 2 bins of a 3 x 2 cell box, adaptive sampling: the bilinear samples average to the box mean
    # only approximately at the bin edges, so compare with a tolerance relative to the feature scale
    expected = f_u[:, 1:3, 2:5].mean(dim=(1, 2)).numpy()
    assert np.abs(rec["local"][0] - expected).max() < 0.25 * np.abs(expected).max() + 1e-6


def test_crop_and_roi_modes_differ_but_are_deterministic(models):
    unisal, cnn = models
    items = _items(2, [3, 2], seed=1)
    crop1 = features_of_images(items, unisal, cnn, CONFIG)
    crop2 = features_of_images(items, unisal, cnn, CONFIG)
    roi = features_of_images(items, unisal, cnn, FeatureConfig(**{**CONFIG.__dict__, "mode": "roi"}))
    for a, b, c in zip(crop1, crop2, roi, strict=True):
        np.testing.assert_array_equal(a["appearance"], b["appearance"])
        np.testing.assert_array_equal(a["local"], c["local"])  # UNISAL part does not depend on the mode
        assert not np.allclose(a["appearance"], c["appearance"])


def test_cache_second_call_reads_it(models, tmp_path, monkeypatch):
    unisal, cnn = models
    items = _items(3, [2, 0, 5], seed=2)
    first = extract_features(items, unisal=unisal, backbone=cnn, config=CONFIG, cache=tmp_path, progress=False,
                             chunk_size=2)
    assert first.path is not None and (first.path / "manifest.json").is_file()
    assert not list(first.path.glob("chunk*"))  # merged and cleaned
    assert isinstance(first.arrays["local"], np.memmap)

    def boom(*a, **k):
        raise AssertionError("features recomputed despite the cache")

    monkeypatch.setattr(F, "features_of_images", boom)
    second = extract_features(items, unisal=unisal, backbone=cnn, config=CONFIG, cache=tmp_path, progress=False,
                              chunk_size=2)
    assert second.path == first.path
    for key in F.FIELDS:
        np.testing.assert_array_equal(first.arrays[key], second.arrays[key])
    assert second.stems == ["img0", "img1", "img2"] and second.counts.tolist() == [2, 0, 5]
    # another configuration or other boxes -> another cache entry
    monkeypatch.undo()
    other = extract_features(items[:2], unisal=unisal, backbone=cnn, config=CONFIG, cache=tmp_path, progress=False)
    assert other.path != first.path


def test_interrupted_extraction_resumes_with_identical_arrays(models, tmp_path, monkeypatch):
    unisal, cnn = models
    items = _items(5, [3, 1, 4, 0, 2], seed=4)
    reference = extract_features(items, unisal=unisal, backbone=cnn, config=CONFIG, cache=False, progress=False,
                                 chunk_size=2)

    class Interrupt(Exception):
        pass

    def stop_after_two(done, total):
        if done == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        extract_features(items, unisal=unisal, backbone=cnn, config=CONFIG, cache=tmp_path, progress=False,
                         chunk_size=2, on_chunk=stop_after_two)
    (directory,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(list(directory.glob("chunk2_*.npz"))) == 2 and not (directory / "manifest.json").exists()

    calls = []
    real = F.features_of_images
    monkeypatch.setattr(F, "features_of_images", lambda chunk, *a, **k: calls.append(len(chunk)) or real(chunk, *a, **k))
    resumed = extract_features(items, unisal=unisal, backbone=cnn, config=CONFIG, cache=tmp_path, progress=False,
                               chunk_size=2)
    assert calls == [1]  # only the last chunk (image 5) was computed
    for key in F.FIELDS:
        np.testing.assert_array_equal(np.asarray(resumed.arrays[key]), reference.arrays[key])
    np.testing.assert_array_equal(resumed.offsets, reference.offsets)


def test_store_feeds_fosrnet_and_round_trips(models, tmp_path):
    unisal, cnn = models
    items = _items(3, [6, 2, 0], seed=5)
    store = extract_features(items, unisal=unisal, backbone=cnn, config=CONFIG, cache=False, progress=False)
    store.save(tmp_path / "s")
    back = FeatureStore.load(tmp_path / "s")
    assert back.stems == store.stems and back.image_sizes.tolist() == [list(SIZE)] * 3
    torch.manual_seed(0)
    model = create_fosrnet(appearance_dim=512)
    ranks = model.predict_ranks(back.images())
    assert [sorted(r.tolist()) for r in ranks] == [[1, 2, 3, 4, 5, 6], [1, 2], []]
    sub = back.subset(["img1"])
    np.testing.assert_array_equal(sub.image(0)["appearance"], back.image("img1")["appearance"])


def test_bad_inputs(models, tmp_path):
    unisal, cnn = models
    with pytest.raises(ValueError, match="mode"):
        FeatureConfig(mode="pixels")
    bad = [ImageProposals("x", np.zeros((*SIZE, 3), np.uint8), np.array([[1.0, 2.0, 3.0]]))]
    with pytest.raises(ValueError, match="image x: boxes"):
        features_of_images(bad, unisal, cnn, CONFIG)
    dup = _items(2, [1, 1])
    dup = [dup[0], ImageProposals("img0", dup[1].image, dup[1].boxes)]
    with pytest.raises(ValueError, match="share a stem"):
        extract_features(dup, unisal=unisal, backbone=cnn, config=CONFIG, cache=False, progress=False)
    with pytest.raises(FileNotFoundError, match="manifest"):
        FeatureStore.load(tmp_path)


def test_features_record_the_weights_identity(models):
    unisal, cnn = models
    store = extract_features(_items(1, [2]), unisal=unisal, backbone=cnn, config=CONFIG, cache=False, progress=False)
    identity = WeightsIdentity.from_dict(store.meta["weights"])
    assert identity == WeightsIdentity(unisal.weights, cnn.weights) and identity.rebuild_options() == {
        "pretrained": False, "seed": 0}
    from salrank.models.unisal import load_unisal

    bare = load_unisal(pretrained=False, device="cpu")  # built without feature_extractors: no identity
    with pytest.raises(ValueError, match="feature_extractors"):
        extract_features(_items(1, [2]), unisal=bare, backbone=cnn, config=CONFIG, cache=False, progress=False)


# --- the batched path ------------------------------------------------------------------------------
def _mixed_items(seed=7):
    """Images of three sizes (two UNISAL network sizes, three crop input sizes), some without boxes."""
    rng = np.random.default_rng(seed)
    sizes = [(96, 128), (120, 90), (96, 128), (64, 64), (96, 128), (120, 90)]
    counts = [3, 0, 5, 2, 4, 1]
    items = []
    for i, (size, n) in enumerate(zip(sizes, counts, strict=True)):
        xy = rng.uniform(0, [size[1] - 10, size[0] - 10], (n, 2))
        boxes = np.concatenate([xy, np.minimum(xy + rng.uniform(4, 40, (n, 2)), [size[1], size[0]])], axis=1)
        items.append(ImageProposals(f"m{i}", rng.integers(0, 256, (*size, 3), dtype=np.uint8), boxes, rng.random(n)))
    return items


@pytest.mark.parametrize("mode", ["crop", "roi"])
def test_batched_features_equal_one_image_at_a_time(models, mode):
    """Batches of several images (mixed sizes; DataLoader workers) give the features of one image per call."""
    unisal, cnn = models
    items = _mixed_items()
    config = FeatureConfig(mode=mode, crop_size=64, roi_output=3)
    single = [features_of_images([it], unisal, cnn, config, batch_size=1)[0] for it in items]
    for batch_size, workers in ((1, 0), (4, 0), (32, 2)):
        batched = features_of_images(items, unisal, cnn, config, batch_size=batch_size, num_workers=workers)
        assert len(batched) == len(items)
        for a, b in zip(single, batched, strict=True):
            assert a["image_size"] == b["image_size"]
            for key in F.FIELDS:
                assert a[key].shape == b[key].shape and b[key].dtype == np.float32
                # fp32 on the CPU: equal up to the rounding of convolutions over other batch shapes
                np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-5, err_msg=f"{key} {batch_size}")
    # the batched path computes something: the appearance differs between images
    assert not np.allclose(single[0]["appearance"][0], single[2]["appearance"][0])


def test_decoding_normalises_like_float_numpy(models):
    from salrank.fosrnet.features import DecodedImage, _normalise, decode_image

    rgb = np.random.default_rng(1).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    d = decode_image(rgb)
    assert isinstance(d, DecodedImage) and d.size == SIZE and d.pixels.dtype == torch.uint8
    assert decode_image(d) is d  # already decoded for this configuration
    expected = (rgb.astype(np.float32) / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
        [0.229, 0.224, 0.225], np.float32)
    np.testing.assert_array_equal(_normalise([d.pixels])[0].permute(1, 2, 0).numpy(), expected)
    roi = decode_image(d, FeatureConfig(mode="roi", roi_image_size=(64, 64)))
    assert roi.pixels.shape == (3, 64, 64) and roi.rgb is d.rgb


def test_amp_changes_the_cache_key_only_when_on(models, tmp_path):
    unisal, cnn = models
    items = _items(2, [2, 3], seed=8)
    kw = dict(unisal=unisal, backbone=cnn, config=CONFIG, cache=tmp_path, progress=False)
    plain = extract_features(items, **kw)
    assert extract_features(items, amp="off", **kw).path == plain.path and "amp" not in plain.meta
    bf16 = extract_features(items, amp="bf16", **kw)
    assert bf16.path != plain.path and bf16.meta["amp"] == "bf16"
    # bfloat16 convolutions: close to float32, not equal
    a, b = np.asarray(plain.arrays["appearance"]), np.asarray(bf16.arrays["appearance"])
    assert not np.array_equal(a, b) and np.abs(a - b).max() < 0.1 * np.abs(a).max()


def test_store_npz_round_trip_is_byte_stable(models, tmp_path):
    unisal, cnn = models
    store = extract_features(_items(3, [2, 0, 4], seed=9), unisal=unisal, backbone=cnn, config=CONFIG, cache=False,
                             progress=False)
    store.save_npz(tmp_path / "a.npz")
    back = FeatureStore.load_npz(tmp_path / "a.npz")
    assert back.stems == store.stems and back.meta == json.loads(json.dumps(store.meta))
    for key in F.FIELDS:
        np.testing.assert_array_equal(back.arrays[key], store.arrays[key])
    back.save_npz(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_features_command_writes_the_store_of_the_sample(models, tmp_path, monkeypatch):
    from salrank.cli import main
    from salrank.data.sample import load_salicon_example_boxes, salicon_example_images

    monkeypatch.setenv("SALRANK_DEVICE", "cpu")
    out = tmp_path / "f.npz"
    assert main(["features", "--sample", "salicon", "--out", str(out), "--no-pretrained", "--backbone", "resnet18",
                 "--crop-size", "32", "--batch-size", "3"]) == 0
    store = FeatureStore.load_npz(out)
    images, boxes = salicon_example_images(), load_salicon_example_boxes()
    assert store.stems == sorted(images) and store.meta["backbone"] == "resnet18"
    unisal, cnn, _ = feature_extractors(False, 0, "resnet18", "cpu")
    stem = store.stems[1]
    direct = features_of_images([ImageProposals(stem, images[stem], boxes[stem])], unisal, cnn,
                                FeatureConfig(crop_size=32))[0]
    for key in F.FIELDS:
        np.testing.assert_allclose(store.image(stem)[key], direct[key], rtol=1e-5, atol=1e-5)
    with pytest.raises(SystemExit):
        main(["features", "--out", str(out)])  # no image source
    assert main(["features", "--images", str(tmp_path), "--out", str(out)]) == 2  # no --proposals


def test_maps_of_one_forward_are_batched_without_a_copy():
    from salrank.fosrnet.features import _as_batch

    out = torch.randn(5, 2, 3, 4)
    rows = _as_batch(list(out[1:4]))  # consecutive rows of one batch: a view
    assert torch.equal(rows, out[1:4]) and rows.data_ptr() == out[1].data_ptr()
    for maps in ([out[0], out[2]], [out[3], out[3]], [out[2], torch.randn(2, 3, 4)]):  # otherwise stacked
        assert torch.equal(_as_batch(maps), torch.stack(maps))
