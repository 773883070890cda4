"""salrank.analysis.detectors: detector specs, cached proposal collection, coverage studies, throughput."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import salrank.analysis.detectors as analysis
from salrank.analysis.detectors import (
    DetectorSpec,
    benchmark_detectors,
    build_detector,
    collect_proposals,
    coverage_curves,
    oracle_variants,
    run_coverage_study,
    with_paper_fps,
)
from salrank.data import Fixations
from salrank.data.scenes import SceneSet
from salrank.paper import TABLE4B_FPS
from salrank.proposals import Detections, Detector, filter_proposals

H, W = 60, 80


@pytest.fixture()
def scenes(tmp_path) -> SceneSet:
    rng = np.random.default_rng(0)
    fixations, images, boxes = {}, {}, {}
    for i in range(3):
        stem = f"img{i}"
        path = tmp_path / f"{stem}.png"
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(path)
        images[stem] = path
        fixations[stem] = Fixations(points=np.array([[5.0, 5.0]]), observer=np.zeros(1, np.int64), height=H, width=W)
        boxes[stem] = np.array([[2, 2, 30, 25], [40, 10, 70, 50], [10, 30, 35, 55]], float) + i
    return SceneSet(name="toy", split="all", fixations=fixations, images=images, boxes=boxes)


class FixedDetector(Detector):
    """Always the same two boxes; counts its calls."""

    name = "fixed"

    def __init__(self):
        super().__init__(device="cpu", score_threshold=0.0)
        self.calls = 0

    def _detect_batch(self, images, keys):
        self.calls += len(images)
        return [Detections(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float), np.array([0.9, 0.5]),
                           np.array([1, 1])) for _ in images]


# --------------------------------------------------------------------------- specs and building


def test_oracle_variants_have_distinct_seeds_and_noise():
    specs = oracle_variants(seed=5)
    assert [s.label for s in specs] == list(analysis.ORACLE_NOISE_LEVELS)
    assert [s.options["seed"] for s in specs] == [5, 6, 7, 8]
    assert all(s.name == "oracle" and not s.pretrained for s in specs)
    custom = oracle_variants({"a": {"jitter": 0.0}})
    assert custom == [DetectorSpec("a", "oracle", False, {"jitter": 0.0, "seed": 0})]


def test_build_detector_oracle_needs_scenes(scenes):
    spec = oracle_variants()[0]
    with pytest.raises(ValueError, match="scene set"):
        build_detector(spec)
    det = build_detector(spec, scenes)
    assert det.name == "oracle" and det.settings()["jitter"] == 0.05


def test_build_detector_random_weights_are_seeded():
    spec = DetectorSpec("ssd", "ssdlite320_mobilenet_v3_large", pretrained=False)
    a = build_detector(spec, seed=1, device="cpu")
    b = build_detector(spec, seed=1, device="cpu")
    c = build_detector(spec, seed=2, device="cpu")
    pa, pb, pc = (next(d.model.parameters()).detach().numpy() for d in (a, b, c))
    assert np.array_equal(pa, pb) and not np.array_equal(pa, pc)
    assert a.settings()["init_seed"] == 1 and c.settings()["init_seed"] == 2


# --------------------------------------------------------------------------- collect_proposals


def test_collect_proposals_matches_direct_detection_and_filter(scenes):
    det = build_detector(DetectorSpec("o", "oracle", False, {"false_positives": 3.0, "seed": 4}), scenes)
    got = collect_proposals(det, scenes)
    assert list(got) == scenes.stems
    for stem in scenes.stems:
        raw = det.detect([scenes.image(stem)], keys=[stem])[0]
        keep = filter_proposals(raw.boxes, raw.scores, (H, W)).keep
        assert np.allclose(got[stem].boxes, raw.boxes[keep], atol=0.01)
        assert np.all(np.diff(got[stem].scores) <= 0)


def test_collect_proposals_caches_per_settings(scenes, tmp_path):
    det = FixedDetector()
    cache = tmp_path / "cache"
    first = collect_proposals(det, scenes, ["img0", "img1"], cache_dir=cache)
    assert det.calls == 2 and len(list(cache.glob("fixed-*.json"))) == 1
    again = collect_proposals(det, scenes, ["img0", "img1"], cache_dir=cache)
    assert det.calls == 2  # read from the cache
    assert np.array_equal(again["img1"].boxes, first["img1"].boxes)
    collect_proposals(det, scenes, ["img0"], cache_dir=cache)  # another image list: another file
    det.max_detections = 1  # other settings: another file
    one = collect_proposals(det, scenes, ["img0"], cache_dir=cache)
    assert det.calls == 4 and len(list(cache.glob("fixed-*.json"))) == 3
    assert len(one["img0"]) == 1
    unfiltered = collect_proposals(FixedDetector(), scenes, ["img0"], apply_filter=False)
    assert len(unfiltered["img0"]) == 2
    with pytest.raises(KeyError, match="no image file"):
        collect_proposals(det, SceneSet("x", "all", scenes.fixations, {}, scenes.boxes))


# --------------------------------------------------------------------------- coverage


def test_coverage_curves_hand_case():
    ref = {"a": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), "b": np.array([[0, 0, 4, 4]], float)}
    other = {"a": np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float), "b": np.array([[0, 0, 4, 2]], float)}
    curves = coverage_curves({"ref": ref, "other": other, "same": ref}, "ref", iou_thresholds=[0.5, 0.6],
                             top_k=5)
    assert list(curves.columns[:2]) == ["detector", "threshold"] and set(curves["detector"]) == {"other", "same"}
    o = curves[curves["detector"] == "other"].set_index("threshold")
    # a: 1 of 2 covered at any threshold; b: IoU = 8 / 16 = 0.5 -> covered at 0.5, not at 0.6
    assert o.loc[0.5, "coverage"] == pytest.approx(2 / 3) and o.loc[0.6, "coverage"] == pytest.approx(1 / 3)
    assert (o["n_images"] == 2).all()
    assert np.allclose(curves[curves["detector"] == "same"]["coverage"], 1.0)


def test_coverage_curves_errors():
    ref = {"a": np.zeros((1, 4))}
    with pytest.raises(KeyError):
        coverage_curves({"x": ref}, "ref")
    with pytest.raises(ValueError, match="shares no image"):
        coverage_curves({"ref": ref, "x": {"b": np.zeros((1, 4))}}, "ref")
    with pytest.raises(ValueError, match="besides the reference"):
        coverage_curves({"ref": ref}, "ref")


def test_run_coverage_study_with_skips(scenes, monkeypatch, tmp_path):
    real_build = analysis.build_detector

    def build(spec, scene_set=None, **kw):
        if spec.name == "needs_extra":
            raise ImportError("needs the optional package 'nothing'")
        if spec.name == "fixed":
            return FixedDetector()
        return real_build(spec, scene_set, **kw)

    monkeypatch.setattr(analysis, "build_detector", build)
    specs = [*oracle_variants()[:2], DetectorSpec("extra", "needs_extra"),
             DetectorSpec("slow", "fixed", False), DetectorSpec("short", "fixed", False, max_images=1)]
    ref = specs[1].label
    study = run_coverage_study(specs, ref, scenes, cache_dir=tmp_path, iou_thresholds=[0.5], top_k=(5, 10),
                               max_seconds_per_image=0.0)
    assert study.reference == ref
    assert set(study.proposals) == {specs[0].label, ref}
    assert "nothing" in study.skipped["extra"] and "too slow" in study.skipped["slow"]
    assert set(study.curves["detector"]) == {specs[0].label} and len(study.curves) == 2
    no_budget = run_coverage_study(specs[:2] + specs[4:], ref, scenes, cache_dir=tmp_path, iou_thresholds=[0.5])
    short = no_budget.curves[no_budget.curves["detector"] == "short"]
    assert (short["n_images"] == 1).all() and list(no_budget.proposals["short"]) == ["img0"]
    with pytest.raises(KeyError):
        run_coverage_study(specs[:1], "nope", scenes)
    with pytest.raises(ValueError, match="unique"):
        run_coverage_study([specs[0], specs[0]], specs[0].label, scenes)
    with pytest.raises(ImportError):
        run_coverage_study(specs[:3], "extra", scenes)


# --------------------------------------------------------------------------- throughput


def test_benchmark_detectors_rows_and_notes():
    names = ["ssdlite320_mobilenet_v3_large"]
    if importlib.util.find_spec("ultralytics") is None:
        names.append("yolov5su")
    bench = benchmark_detectors(names, image_size=(64, 64), repeats=1, warmup=0, device="cpu")
    assert list(bench["detector"]) == names
    ssd = bench.iloc[0]
    assert ssd["weights"] == "random" and ssd["images_per_s"] > 0 and ssd["image_size"] == "64x64"
    assert ssd["images_per_s_min"] <= ssd["images_per_s"] <= ssd["images_per_s_max"]
    if len(names) == 2:
        yolo = bench.iloc[1]
        assert np.isnan(yolo["images_per_s"]) and "ultralytics" in yolo["note"] and yolo["paper_name"] == "YOLOv5"


def test_benchmark_detectors_falls_back_without_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tmp_path))
    monkeypatch.setattr("salrank.weights._reachable", lambda url, timeout=3.0: False)
    monkeypatch.setattr("salrank.weights._hub_checkpoint_dir", lambda: tmp_path / "hub")
    bench = benchmark_detectors(["ssdlite320_mobilenet_v3_large"], pretrained=True, image_size=(64, 64),
                                repeats=1, warmup=0, device="cpu")
    row = bench.iloc[0]
    assert row["weights"] == "random" and "no pretrained weights" in row["note"] and row["images_per_s"] > 0
    strict = benchmark_detectors(["ssdlite320_mobilenet_v3_large"], pretrained=True, fallback_random=False,
                                 image_size=(64, 64), repeats=1, warmup=0, device="cpu")
    assert np.isnan(strict.iloc[0]["images_per_s"]) and strict.iloc[0]["weights"] == ""


def test_with_paper_fps_joins_on_the_paper_names():
    bench = pd.DataFrame({"detector": ["efficientdet_d0", "ssdlite320_mobilenet_v3_large"],
                          "paper_name": ["EfficientDet", ""], "images_per_s": [10.0, 50.0]})
    table = with_paper_fps(bench)
    assert len(table) == len(TABLE4B_FPS) + 1
    eff = table[table["detector"] == "efficientdet_d0"].iloc[0]
    assert eff["paper_fps"] == TABLE4B_FPS["EfficientDet"] and eff["images_per_s"] == 10.0
    assert eff["label"] == "EfficientDet / efficientdet_d0"
    assert table.iloc[0]["label"] == "Sparse RCNN"
    assert list(table["paper_name"].iloc[: len(TABLE4B_FPS)]) == list(TABLE4B_FPS)
    last = table.iloc[-1]
    assert last["detector"] == "ssdlite320_mobilenet_v3_large" and np.isnan(last["paper_fps"])
    assert last["label"] == "ssdlite320_mobilenet_v3_large"


def test_build_detector_passes_the_spec_options_on(scenes):
    # build_detector calls create_detector: what can go wrong is dropping the spec's seed or noise,
    # so check that each of them reaches the detector and changes its output
    spec = oracle_variants()[2]
    det = build_detector(spec, scenes)
    assert {k: det.settings()[k] for k in spec.options} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in spec.options.items()}
    a = det.detect([scenes.image("img1")], keys=["img1"])[0]
    reseeded = build_detector(DetectorSpec("o", "oracle", False, {**spec.options, "seed": spec.options["seed"] + 1}),
                              scenes).detect([scenes.image("img1")], keys=["img1"])[0]
    assert not (len(a) == len(reseeded) and np.allclose(a.boxes, reseeded.boxes))
    default_noise = build_detector(DetectorSpec("o", "oracle", False, {"seed": spec.options["seed"]}),
                                   scenes).detect([scenes.image("img1")], keys=["img1"])[0]
    assert not (len(a) == len(default_noise) and np.allclose(a.boxes, default_noise.boxes))
