"""Tests of the SynthSal generator, dataset writer/loader and noisy oracle detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from salrank.data import synthsal
from salrank.data.salicon import load_salicon
from salrank.data.synthsal import (
    SynthSalConfig,
    generate_dataset,
    generate_scene,
    load_synthsal,
    oracle_detections,
    oracle_for_dataset,
    sample_synthsal,
    scene_seed,
    scene_stem,
)
from salrank.data.synthsal import dataset as synthsal_files  # where generate/sample_synthsal look names up

SMALL = {"n_train": 4, "n_val": 2, "n_test": 2}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SALRANK_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A small complete dataset (seed 0) that other tests compare against."""
    root = tmp_path_factory.mktemp("reference")
    generate_dataset(root, **SMALL, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def scenes() -> list:
    """40 default scenes (no files)."""
    return [generate_scene(scene_seed(7, "train", i)) for i in range(40)]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def _points_label(scene) -> np.ndarray:
    p = scene.fixations.points.astype(int)
    return scene.label_map[p[:, 1], p[:, 0]]


# ------------------------------------------------------------------------------ scenes


def test_scene_is_deterministic_and_seed_dependent():
    a = generate_scene(scene_seed(3, "val", 5))
    b = generate_scene(scene_seed(3, "val", 5))
    c = generate_scene(scene_seed(4, "val", 5))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label_map, b.label_map)
    np.testing.assert_array_equal(a.fixations.points, b.fixations.points)
    np.testing.assert_array_equal(a.fixations.observer, b.fixations.observer)
    assert a.objects == b.objects
    assert not np.array_equal(a.image, c.image)
    # the split name is part of the seed too
    assert not np.array_equal(a.image, generate_scene(scene_seed(3, "test", 5)).image)


def _check_scene(scene, cfg: SynthSalConfig) -> None:
    H, W = cfg.height, cfg.width
    K = len(scene.objects)
    assert cfg.objects[0] <= K <= cfg.objects[1]
    assert scene.image.shape == (H, W, 3) and scene.image.dtype == np.uint8
    assert scene.boxes.shape == (K, 4) and scene.salience.shape == (K,)
    assert set(np.unique(scene.label_map)) <= set(range(-1, K))
    for k, (obj, box) in enumerate(zip(scene.objects, scene.boxes, strict=True)):
        ys, xs = np.nonzero(scene.label_map == k)
        assert xs.size == obj["visible_area"] > 0, "every object is visible"
        assert obj["visible_area"] >= cfg.min_visible_fraction * obj["full_area"]
        # tight box of the visible mask, exclusive right/bottom, inside the image
        np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        assert 0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H
        f = obj["features"]
        expected = (cfg.w_contrast * f["colour_contrast"] + cfg.w_size * f["relative_size"]
                    + cfg.w_centre * f["centrality"] + cfg.w_random * f["random"])
        assert scene.salience[k] == pytest.approx(expected) == obj["salience"]
        assert f["relative_size"] == pytest.approx(min(1, np.sqrt(xs.size / (H * W)) / cfg.size_scale))
        assert all(0 <= v <= 1 for v in f.values())
    fx = scene.fixations
    assert fx.image_size == (H, W)
    assert cfg.points_per_image[0] <= len(fx) <= cfg.points_per_image[1]
    assert cfg.observers[0] <= fx.n_observers <= cfg.observers[1]
    assert np.all(np.diff(fx.observer) >= 0), "points grouped by observer"
    assert np.all(fx.points == np.round(fx.points)) and fx.inside().all()


def test_default_scene_structure(scenes):
    cfg = SynthSalConfig()
    for scene in scenes:
        _check_scene(scene, cfg)
    counts = {len(s.objects) for s in scenes}
    assert min(counts) <= 4 and max(counts) >= 9, "object counts span the range"
    assert len({o["shape"] for s in scenes for o in s.objects}) == len(synthsal.SHAPES)
    assert len({o["texture"] for s in scenes for o in s.objects}) == len(synthsal.TEXTURES)


def test_salicon_like_scene():
    scene = generate_scene(scene_seed(0, "train", 0), synthsal.SALICON_LIKE)
    _check_scene(scene, synthsal.SALICON_LIKE)
    assert len(scene.fixations) >= 8000 and scene.fixations.n_observers >= 50


def test_impossible_config_fails_clearly():
    cfg = SynthSalConfig(height=32, width=32, objects=(10, 10), observers=(1, 1), points_per_image=(5, 5))
    with pytest.raises(RuntimeError, match="could not place 10 objects"):
        generate_scene(0, cfg)


def test_salience_hand_computed_centrality_and_contrast():
    scene = generate_scene(scene_seed(0, "train", 0))
    H, W = scene.label_map.shape
    centre = np.array([(W - 1) / 2, (H - 1) / 2])
    for k, obj in enumerate(scene.objects):
        ys, xs = np.nonzero(scene.label_map == k)
        d = np.hypot(xs.mean() - centre[0], ys.mean() - centre[1])
        assert obj["features"]["centrality"] == pytest.approx(1 - d / np.hypot(*centre))
        x1, y1, x2, y2 = scene.boxes[k].astype(int)
        bw, bh = x2 - x1, y2 - y1
        ex1, ey1 = max(0, int(x1 - bw / 4)), max(0, int(y1 - bh / 4))
        ex2, ey2 = min(W, int(np.ceil(x2 + bw / 4))), min(H, int(np.ceil(y2 + bh / 4)))
        region = scene.image[ey1:ey2, ex1:ex2].astype(float)
        ring = region[scene.label_map[ey1:ey2, ex1:ex2] != k].mean(0)
        inner = scene.image[ys, xs].astype(float).mean(0)
        expected = min(1.0, np.linalg.norm(inner - ring) / SynthSalConfig().contrast_scale)
        assert obj["features"]["colour_contrast"] == pytest.approx(expected)


@settings(max_examples=20, deadline=None)
@given(
    height=st.integers(64, 160),
    width=st.integers(64, 160),
    lo=st.integers(1, 5),
    extra=st.integers(0, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_scene_invariants_property(height, width, lo, extra, seed):
    cfg = SynthSalConfig(height=height, width=width, objects=(lo, lo + extra), observers=(2, 5),
                         points_per_image=(20, 60), size_range=(0.15, 0.4))
    _check_scene(generate_scene(seed, cfg), cfg)


def test_planted_salience_is_recoverable(scenes):
    """Spearman between planted salience and fixation share (measured: mean 0.92 over 150)."""
    def mean_rho(scene_list):
        rhos = []
        for scene in scene_list:
            lab = _points_label(scene)
            share = np.bincount(lab[lab >= 0], minlength=len(scene.objects)) / lab.size
            rhos.append(spearmanr(scene.salience, share).statistic)
        return float(np.mean(rhos))

    assert mean_rho(scenes) >= 0.85
    # control: observers that ignore salience give a much weaker relation (measured ~0.3)
    blind = SynthSalConfig(salience_exponent=0.0)
    assert mean_rho([generate_scene(scene_seed(7, "train", i), blind) for i in range(20)]) < 0.6


def _centre_ratio(scene_list) -> float:
    """Mean distance to the centre of background points / of background pixels."""
    got, uniform = [], []
    for scene in scene_list:
        H, W = scene.label_map.shape
        c = np.array([(W - 1) / 2, (H - 1) / 2])
        lab = _points_label(scene)
        got.append(np.linalg.norm(scene.fixations.points[lab < 0] - c, axis=1).mean())
        ys, xs = np.nonzero(scene.label_map < 0)
        uniform.append(np.hypot(xs - c[0], ys - c[1]).mean())
    return float(np.mean(got) / np.mean(uniform))


def test_centre_bias(scenes):
    assert _centre_ratio(scenes) < 0.85  # measured 0.77
    # control: no centre component and no jitter -> background points are uniform noise
    cfg = SynthSalConfig(p_centre=0.0, jitter_px=0.0)
    ratio = _centre_ratio([generate_scene(scene_seed(7, "train", i), cfg) for i in range(15)])
    assert ratio == pytest.approx(1.0, abs=0.05)


def test_mixture_components():
    only_objects = SynthSalConfig(p_centre=0.0, p_noise=0.0, jitter_px=0.0)
    for i in range(5):
        assert (_points_label(generate_scene(i, only_objects)) >= 0).all()
    only_noise = SynthSalConfig(p_object=0.0, p_centre=0.0, points_per_image=(3000, 3000))
    on, area = [], []
    for i in range(5):
        scene = generate_scene(i, only_noise)
        on.append((_points_label(scene) >= 0).mean())
        area.append((scene.label_map >= 0).mean())
    assert np.mean(on) == pytest.approx(np.mean(area), abs=0.02)


def test_bad_config():
    with pytest.raises(ValueError, match="objects"):
        SynthSalConfig(objects=(0, 3))
    with pytest.raises(ValueError, match="shapes"):
        SynthSalConfig(shapes=("hexagon",))
    with pytest.raises(ValueError, match="points_per_image"):
        SynthSalConfig(observers=(20, 60), points_per_image=(10, 100))
    with pytest.raises(ValueError, match="mixture"):
        SynthSalConfig(p_object=-0.1)


# ------------------------------------------------------------------------------ datasets


def test_dataset_is_byte_identical_and_size_independent(reference, tmp_path):
    same = generate_dataset(tmp_path / "same", **SMALL, seed=0, progress=False)
    assert _files(same.root) == _files(reference)
    bigger = generate_dataset(tmp_path / "bigger", n_train=6, n_val=0, n_test=0, seed=0, progress=False)
    for i in range(SMALL["n_train"]):
        name = f"images/train/{scene_stem('train', i)}.jpg"
        assert (bigger.root / name).read_bytes() == (reference / name).read_bytes()
    small, big = load_synthsal(reference, "train", cache=False), bigger.load("train", cache=False)
    for stem in small.stems:
        np.testing.assert_array_equal(small.fixations[stem].points, big.fixations[stem].points)
        np.testing.assert_array_equal(small.boxes[stem], big.boxes[stem])
    other = generate_dataset(tmp_path / "other", **SMALL, seed=1, progress=False)
    assert (other.root / "fixations_train.json").read_bytes() != (reference / "fixations_train.json").read_bytes()


def test_no_images_mode_has_identical_annotations(reference, tmp_path):
    ds = generate_dataset(tmp_path / "noimg", **SMALL, seed=0, write_images=False, progress=False)
    assert not (ds.root / "images").exists()
    a, b = load_synthsal(reference, "val", cache=False), ds.load("val", cache=False)
    assert b.image_paths == {}
    for stem in a.stems:
        np.testing.assert_array_equal(a.fixations[stem].points, b.fixations[stem].points)
        np.testing.assert_array_equal(a.salience[stem], b.salience[stem])
        np.testing.assert_array_equal(a.boxes[stem], b.boxes[stem])


def test_round_trip_through_load_salicon(reference):
    split = load_synthsal(reference, "train", cache=False)
    raw = load_salicon(reference / "fixations_train.json", cache=False, progress=False)
    assert list(raw) == split.stems == [scene_stem("train", i) for i in range(SMALL["n_train"])]
    for i, stem in enumerate(split.stems):
        scene = generate_scene(scene_seed(0, "train", i))
        fx = raw[stem]
        np.testing.assert_array_equal(fx.points, scene.fixations.points)
        np.testing.assert_array_equal(fx.observer, scene.fixations.observer)
        assert fx.image_id == split.image_ids[stem] == 10_000_000 + i + 1
        np.testing.assert_array_equal(split.boxes[stem], scene.boxes)
        np.testing.assert_array_equal(split.salience[stem], scene.salience)
        np.testing.assert_array_equal(split.masks(stem), [scene.label_map == k for k in range(len(scene.objects))])
        image = np.asarray(__import__("PIL.Image").Image.open(split.image_paths[stem]))
        assert image.shape == scene.image.shape
        assert np.abs(image.astype(int) - scene.image).mean() < 8  # JPEG quality 92


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside pycocotools under numpy 2
def test_objects_file_is_valid_coco(reference):
    from pycocotools.coco import COCO

    coco = COCO(str(reference / "objects_test.json"))
    split = load_synthsal(reference, "test", cache=False)
    for stem, image_id in split.image_ids.items():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert len(anns) == len(split.boxes[stem])
        for ann, box, mask in zip(anns, split.boxes[stem], split.masks(stem), strict=True):
            assert ann["bbox"] == [box[0], box[1], box[2] - box[0], box[3] - box[1]]
            np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), mask)
            assert ann["area"] == mask.sum()


def test_workers_give_identical_output(reference, tmp_path):
    ds = generate_dataset(tmp_path / "par", **SMALL, seed=0, workers=2, progress=False)
    assert _files(ds.root) == _files(reference)


def test_complete_dataset_is_reused_without_writing(tmp_path):
    root = tmp_path / "ds"
    first = generate_dataset(root, n_train=2, n_val=1, n_test=1, progress=False)
    before = _mtimes(root)
    again = generate_dataset(root, n_train=2, n_val=1, n_test=1, progress=False)
    assert _mtimes(root) == before
    assert again.manifest == first.manifest and again.config == SynthSalConfig()
    with pytest.raises(FileExistsError, match="config hash"):
        generate_dataset(root, n_train=3, n_val=1, n_test=1, progress=False)
    assert _mtimes(root) == before
    generate_dataset(root, n_train=3, n_val=1, n_test=1, overwrite=True, progress=False)
    assert json.loads((root / "manifest.json").read_text())["splits"]["train"] == 3


def test_interrupted_generation_is_resumed(reference, tmp_path, monkeypatch):
    root = tmp_path / "ds"
    real_save = synthsal_files.save_salicon_json
    calls = []

    def failing_save(path, fixations, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # train finished, interrupted while finishing val
            raise KeyboardInterrupt
        real_save(path, fixations, **kwargs)

    monkeypatch.setattr(synthsal_files, "save_salicon_json", failing_save)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, **SMALL, seed=0, progress=False)
    monkeypatch.setattr(synthsal_files, "save_salicon_json", real_save)
    assert not (root / "manifest.json").exists() and (root / "generating.json").exists()
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_synthsal(root, "train")
    (root / "images/val" / f"{scene_stem('val', 1)}.jpg").unlink()  # never written
    before = _mtimes(root)
    generate_dataset(root, **SMALL, seed=0, progress=False)
    after = _mtimes(root)
    kept = [name for name in before if name.startswith(("images/train", "images/val", "fixations_train",
                                                         "objects_train"))]
    assert kept and all(after[name] == before[name] for name in kept), "finished work is not redone"
    assert _files(root) == _files(reference)


def test_stale_partial_directory_is_regenerated(reference, tmp_path):
    root = tmp_path / "ds"
    (root / "images/train").mkdir(parents=True)
    (root / "images/train" / f"{scene_stem('train', 0)}.jpg").write_bytes(b"not an image")
    (root / "images/train" / f"{scene_stem('train', 99)}.jpg").write_bytes(b"stale")
    (root / "fixations_train.json").write_text("{}")
    (root / "generating.json").write_text(json.dumps({"config_hash": "another"}))
    (root / "notes.txt").write_text("user file")
    generate_dataset(root, **SMALL, seed=0, progress=False)
    files = _files(root)
    assert files.pop("notes.txt") == b"user file"
    assert files == _files(reference)


def test_bad_dataset_arguments(reference, tmp_path):
    with pytest.raises(ValueError, match="n_train"):
        generate_dataset(tmp_path / "x", n_train=-1, progress=False)
    with pytest.raises(ValueError, match="image_format"):
        generate_dataset(tmp_path / "x", image_format="gif", progress=False)
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_synthsal(tmp_path, "train")
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_synthsal(reference, "dev")


def test_sample_synthsal_uses_the_cache(monkeypatch, tmp_path):
    from salrank.config import get_settings

    monkeypatch.setattr(synthsal_files, "SAMPLE_SPLITS", {"train": 2, "val": 1, "test": 1})
    settings = get_settings(cache_dir=tmp_path)
    ds = sample_synthsal(settings, progress=False)
    assert ds.root == tmp_path / "synthsal" / ds.config_hash
    assert ds.splits == {"train": 2, "val": 1, "test": 1} and ds.has_images
    before = _mtimes(ds.root)
    assert sample_synthsal(settings, progress=False).root == ds.root
    assert _mtimes(ds.root) == before


# ------------------------------------------------------------------------------ oracle


def _random_boxes(rng, n, H=480, W=640):
    wh = rng.uniform(10, 200, size=(n, 2))
    xy = rng.random((n, 2)) * ([W, H] - wh)
    return np.concatenate([xy, xy + wh], axis=1)


def test_oracle_exact_when_noise_free():
    boxes = np.array([[10, 20, 50, 80], [100, 100, 300, 200], [0, 0, 640, 480]], float)
    det, scores, labels, source = oracle_detections(boxes, (480, 640), 3, jitter=0, miss_rate=0,
                                                    false_positives=0, return_source=True)
    np.testing.assert_array_equal(det, boxes[source])
    assert sorted(source) == [0, 1, 2] and (labels == 1).all()
    assert np.all(np.diff(scores) <= 0) and np.all((scores > 0) & (scores <= 1))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 12), jitter=st.floats(0, 0.49),
       miss=st.floats(0, 1), fp=st.floats(0, 5))
def test_oracle_properties(seed, n, jitter, miss, fp):
    H, W = 480, 640
    truth = _random_boxes(np.random.default_rng(seed), n)
    det, scores, labels, source = oracle_detections(truth, (H, W), seed, jitter=jitter, miss_rate=miss,
                                                    false_positives=fp, return_source=True)
    again = oracle_detections(truth, (H, W), seed, jitter=jitter, miss_rate=miss, false_positives=fp)
    for x, y in zip(again, (det, scores, labels), strict=True):
        np.testing.assert_array_equal(x, y)
    assert det.shape == (len(scores), 4) and labels.dtype == np.int64
    assert np.all(np.diff(scores) <= 0) and np.all((scores > 0) & (scores <= 1))
    assert np.all(det[:, 2] > det[:, 0]) and np.all(det[:, 3] > det[:, 1])
    assert np.all(det >= 0) and np.all(det <= [W, H, W, H])
    tp = source >= 0
    assert len(set(source[tp])) == tp.sum()  # each true box detected at most once
    wh = truth[source[tp]][:, 2:] - truth[source[tp]][:, :2]
    bound = jitter * np.concatenate([wh, wh], axis=1) + 1e-9
    assert np.all(np.abs(det[tp] - truth[source[tp]]) <= bound)


def test_oracle_rates_match_parameters():
    rng = np.random.default_rng(0)
    n_images, per_image = 1500, 6
    missed = n_fp = 0
    tp_scores, fp_scores = [], []
    for i in range(n_images):
        truth = _random_boxes(rng, per_image)
        _, scores, _, source = oracle_detections(truth, (480, 640), i, miss_rate=0.2, false_positives=1.5,
                                                 return_source=True)
        missed += per_image - (source >= 0).sum()
        n_fp += (source < 0).sum()
        tp_scores += scores[source >= 0].tolist()
        fp_scores += scores[source < 0].tolist()
    assert missed / (n_images * per_image) == pytest.approx(0.2, abs=0.015)
    assert n_fp / n_images == pytest.approx(1.5, abs=0.1)
    assert np.mean(fp_scores) < np.mean(tp_scores) - 0.3
    assert oracle_detections(truth, (480, 640), 1)[1].tolist() != oracle_detections(truth, (480, 640), 2)[1].tolist()


def test_oracle_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        oracle_detections(np.zeros((3, 5)), (480, 640))
    with pytest.raises(ValueError, match="x2 > x1"):
        oracle_detections([[10, 10, 5, 20]], (480, 640))
    with pytest.raises(ValueError, match="jitter"):
        oracle_detections([[0, 0, 5, 5]], (480, 640), jitter=0.5)
    with pytest.raises(ValueError, match="miss_rate"):
        oracle_detections([[0, 0, 5, 5]], (480, 640), miss_rate=1.5)


def test_oracle_for_dataset(reference):
    split = load_synthsal(reference, "train", cache=False)
    records = oracle_for_dataset(split, seed=5, miss_rate=0.0, false_positives=0.0)
    assert len(records) == sum(len(b) for b in split.boxes.values())
    assert [r["image_id"] for r in records] == sorted(r["image_id"] for r in records)
    stem = split.stems[1]
    alone = oracle_for_dataset({stem: split.boxes[stem]}, image_size=split.image_size, seed=5,
                               miss_rate=0.0, false_positives=0.0)
    assert alone == [r for r in records if r["image_id"] == stem], "per-image seeds"
    for r in alone:
        assert set(r) == {"image_id", "bbox", "score", "category_id"} and r["category_id"] == 1
        x, y, w, h = r["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 640 + 1e-9
    assert [r["score"] for r in alone] == sorted((r["score"] for r in alone), reverse=True)
    with pytest.raises(ValueError, match="image_size"):
        oracle_for_dataset({stem: split.boxes[stem]})
