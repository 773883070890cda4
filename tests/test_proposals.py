"""Detector backends, the paper's proposal filtering and the coverage analysis."""

from __future__ import annotations

import importlib.util
import socket
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import box_iou

from salrank.proposals import (
    Detections,
    coverage_rate,
    create_detector,
    detector_info,
    filter_proposals,
    list_detectors,
)
from salrank.weights import WeightsNotFoundError, get_spec

TORCHVISION = [
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "ssd300_vgg16",
    "ssdlite320_mobilenet_v3_large",
]


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def assert_well_formed(det: Detections, height: int, width: int) -> None:
    assert len(det) > 0, "a random-weight detector with score_threshold=0 should return boxes"
    assert det.boxes.shape == (len(det), 4) and det.boxes.dtype == np.float32
    assert np.isfinite(det.boxes).all() and np.isfinite(det.scores).all()
    assert (det.boxes[:, 0] >= 0).all() and (det.boxes[:, 1] >= 0).all()
    assert (det.boxes[:, 2] <= width).all() and (det.boxes[:, 3] <= height).all()
    assert (det.boxes[:, 2] >= det.boxes[:, 0]).all() and (det.boxes[:, 3] >= det.boxes[:, 1]).all()
    assert ((det.scores >= 0) & (det.scores <= 1)).all()
    assert (np.diff(det.scores) <= 0).all(), "scores must be in descending order"
    assert det.labels.dtype == np.int64 and ((det.labels >= 0) & (det.labels <= 90)).all()


# --- registry ---------------------------------------------------------------------------------


def test_registry_lists_every_backend_family_with_aliases():
    names = list_detectors()
    assert [f"efficientdet_d{d}" for d in range(8)] == list_detectors("efficientdet_d*")
    assert set(TORCHVISION) <= set(names)
    assert {"yolov5su", "detr_resnet50", "oracle"} <= set(names)
    assert detector_info("EfficientDet").name == "efficientdet_d0"
    assert detector_info("faster-rcnn").name == "fasterrcnn_resnet50_fpn"
    with pytest.raises(KeyError, match="unknown detector 'nope'.*efficientdet_d0"):
        create_detector("nope")
    for name in names:  # every weight name a detector refers to is registered
        if detector_info(name).weights:
            get_spec(detector_info(name).weights)


def test_detections_sorts_by_score_and_rejects_ragged_input():
    det = Detections([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], [0.2, 0.9, 0.5], [1, 2, 3])
    assert det.scores.tolist() == pytest.approx([0.9, 0.5, 0.2])
    assert det.labels.tolist() == [2, 3, 1]
    assert det.boxes[0].tolist() == [1, 1, 2, 2]
    with pytest.raises(ValueError, match="2 boxes, 1 scores"):
        Detections(np.zeros((2, 4)), [0.1], [1, 1])


def test_bad_images_are_rejected_with_their_index():
    det = create_detector("ssdlite320_mobilenet_v3_large", pretrained=False, device="cpu")
    with pytest.raises(ValueError, match="image 1: expected dtype uint8"):
        det.detect([random_image(20, 20), np.zeros((20, 20, 3), np.float32)])
    with pytest.raises(ValueError, match="image 0: expected an HxWx3 array"):
        det.detect([np.zeros((20, 20), np.uint8)])


# --- backends, offline with random weights -------------------------------------------------------


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_backend_offline_output_is_well_formed(name):
    torch.manual_seed(0)
    small = {} if name.startswith("ssd") else {"min_size": 96, "max_size": 128}
    if name.startswith("fasterrcnn"):  # fewer region proposals: the box head dominates the CPU time
        small["model_options"] = {"rpn_pre_nms_top_n_test": 200, "rpn_post_nms_top_n_test": 50}
    det = create_detector(name, pretrained=False, device="cpu", score_threshold=0.0, max_detections=20, **small)
    from PIL import Image

    images = [random_image(70, 110, seed=1), Image.fromarray(random_image(90, 60, seed=2))]
    if name == "ssd300_vgg16":  # a fixed 300 x 300 VGG16 input: one image is enough CPU time
        images = images[1:]
    out = det.detect(images, batch_size=2)
    assert len(out) == len(images)
    assert_well_formed(out[-1], 90, 60)
    if len(out) == 2:
        assert_well_formed(out[0], 70, 110)
    assert len(out[0]) <= 20


def test_efficientdet_d0_offline_output_and_box_mapping():
    """Boxes come back in original pixels: the detector's boxes times the resize scale equal the
    raw effdet boxes on the same prepared input (clipped to the image's region of the input)."""
    torch.manual_seed(0)
    det = create_detector("efficientdet_d0", pretrained=False, device="cpu", score_threshold=0.0)
    assert det.input_size == (512, 512)
    assert sum(p.numel() for p in det.model.parameters()) / 1e6 == pytest.approx(3.9, abs=0.06)
    image = random_image(128, 256, seed=3)  # fits the 512 x 512 input at scale 2, padded below
    (out,) = det.detect([image])
    assert_well_formed(out, 128, 256)

    x, scale = det._prepare(image)
    assert scale == 2.0 and x.shape == (3, 512, 512)
    assert np.all(x[:, 256:, :] == 0), "the padding is the ImageNet mean (0 after normalisation)"
    with torch.inference_mode():
        raw = det.model(torch.from_numpy(x)[None]).numpy()[0]
    raw = raw[raw[:, 4] > 0]
    raw_boxes = raw[:, :4].copy()
    raw_boxes[:, 0::2] = raw_boxes[:, 0::2].clip(0, 512)
    raw_boxes[:, 1::2] = raw_boxes[:, 1::2].clip(0, 256)
    # the two runs rank equal-score boxes alike; compare the top boxes
    order = np.argsort(-raw[:, 4], kind="stable")[:10]
    np.testing.assert_allclose(out.boxes[:10] * 2.0, raw_boxes[order], atol=1e-3)
    np.testing.assert_allclose(out.scores[:10], raw[order, 4], atol=1e-6)


# published parameter counts (Tan et al., EfficientDet, CVPR 2020, Table 2), in millions
EFFDET_PARAMS_M = {1: 6.6, 2: 8.1, 3: 12.0, 4: 20.7, 5: 33.7, 6: 51.9, 7: 51.9}


@pytest.mark.parametrize("d", sorted(EFFDET_PARAMS_M))
def test_efficientdet_d1_to_d7_construct_offline_at_their_published_size(d):
    det = create_detector(f"efficientdet_d{d}", pretrained=False, device="cpu")
    n = sum(p.numel() for p in det.model.parameters()) / 1e6
    assert n == pytest.approx(EFFDET_PARAMS_M[d], abs=0.06)
    assert det.input_size == detector_info(f"efficientdet_d{d}").image_size


@pytest.mark.parametrize("name", ["fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn"])
def test_torchvision_pretrained_layout_matches_torchvision_trained_model(name, monkeypatch):
    """The model we load published weights into has torchvision's trained layout: same modules
    (frozen batch norms), same state-dict keys, same eps; torchvision builds the reference from
    its COCO weight enum, here fed our state dict instead of a download."""
    import torchvision
    from torchvision.models import get_model_weights
    from torchvision.ops import FrozenBatchNorm2d

    from salrank.proposals.backends.torchvision import build_torchvision_model

    mine = build_torchvision_model(name, pretrained_layout=True)
    state = mine.state_dict()
    monkeypatch.setattr(get_model_weights(name), "get_state_dict", lambda self, *a, **k: state)
    ref = torchvision.models.get_model(name, weights="COCO_V1")
    assert [type(m).__name__ for m in mine.modules()] == [type(m).__name__ for m in ref.modules()]
    assert list(mine.state_dict()) == list(ref.state_dict())

    def eps(model):
        return [m.eps for m in model.modules() if isinstance(m, (FrozenBatchNorm2d, torch.nn.BatchNorm2d))]

    assert eps(mine) == eps(ref)
    assert sum(p.numel() for p in mine.parameters()) == get_model_weights(name).COCO_V1.meta["num_params"]


def test_pretrained_load_from_an_explicit_file(tmp_path):
    from salrank.proposals.backends.torchvision import build_torchvision_model

    torch.manual_seed(1)
    source = build_torchvision_model("ssdlite320_mobilenet_v3_large", pretrained_layout=True)
    file = tmp_path / get_spec("ssdlite320_mobilenet_v3_large.tv_coco").filename
    torch.save(source.state_dict(), file)
    det = create_detector("ssdlite320_mobilenet_v3_large", weights=file, check_hash=False, device="cpu")
    for (k, a), b in zip(source.state_dict().items(), det.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    from salrank.weights import ChecksumError

    with pytest.raises(ChecksumError, match="does not match"):  # our file is not the published one
        create_detector("ssdlite320_mobilenet_v3_large", weights=file, device="cpu")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network, no weight folder, an empty torch cache."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


@pytest.mark.parametrize("name", ["efficientdet_d0", "fasterrcnn_resnet50_fpn"])
def test_pretrained_offline_fails_fast_naming_the_file(offline, name):
    spec = get_spec(detector_info(name).weights)
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as err:
        create_detector(name, pretrained=True, device="cpu")
    assert time.perf_counter() - start < 10.0
    message = str(err.value)
    assert spec.url in message
    assert str(offline / "weights" / spec.filename) in message
    assert "not reachable" in message


@pytest.mark.parametrize("name,module", [("yolov5su", "ultralytics"), ("detr_resnet50", "transformers")])
def test_optional_detectors_name_their_extra_when_missing(name, module):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed")
    with pytest.raises(ImportError, match=r"salrank\[extras\]"):
        create_detector(name, pretrained=False)


def test_oracle_backend_matches_synthsal_and_is_batch_independent():
    from salrank.data import synthsal  # the package's own module: an import error must fail, not skip
    true = {
        "a": np.array([[10, 10, 50, 40], [60, 20, 90, 70]], float),
        "b": np.array([[5, 5, 30, 30]], float),
        "c": np.zeros((0, 4)),
    }
    images = {"a": random_image(80, 100), "b": random_image(60, 50), "c": random_image(40, 40)}
    det = create_detector("oracle", true_boxes=true, seed=7, jitter=0.05, miss_rate=0.0)
    keys = list(images)
    together = det.detect([images[k] for k in keys], keys=keys, batch_size=3)
    one_by_one = [det.detect([images[k]], keys=[k])[0] for k in keys]
    for x, y in zip(together, one_by_one, strict=True):
        np.testing.assert_array_equal(x.boxes, y.boxes)
        np.testing.assert_array_equal(x.scores, y.scores)
    records = synthsal.oracle_for_dataset(
        {"a": true["a"]}, image_size=(80, 100), seed=7, jitter=0.05, miss_rate=0.0
    )
    expected = np.array([[r["bbox"][0], r["bbox"][1], r["bbox"][0] + r["bbox"][2], r["bbox"][1] + r["bbox"][3]]
                         for r in records])
    np.testing.assert_allclose(together[0].boxes, expected, atol=1e-4)
    assert len(together[0]) >= 2  # no misses with miss_rate=0
    with pytest.raises(ValueError, match="needs keys="):
        det.detect([images["a"]])
    with pytest.raises(KeyError, match="no true boxes for image 'zzz'"):
        det.detect([images["a"]], keys=["zzz"])


# --- filtering ----------------------------------------------------------------------------------

IMAGE = (100, 100)  # height, width: area 10,000


def test_filter_hand_case_applies_every_rule_in_order():
    boxes = np.array(
        [
            [0, 0, 90, 90],  # 0: 81% of the image -> too large
            [10, 10, 14, 14],  # 1: area 16 < 20 -> tiny
            [10, 10, 50, 50],  # 2: kept
            [12, 12, 52, 52],  # 3: IoU 0.82 with 2, lower score -> duplicate
            [60, 60, 90, 90],  # 4: kept
            [60, 10, 90, 40],  # 5: kept (best score)
            [0, 60, 30, 90],  # 6: kept
            [40, 60, 60, 80],  # 7: touches 4, IoU 0 -> kept
        ],
        float,
    )
    scores = np.array([0.99, 0.98, 0.9, 0.8, 0.7, 0.95, 0.5, 0.6])
    res = filter_proposals(boxes, scores, IMAGE)
    assert res.keep.tolist() == [5, 2, 4, 7, 6]
    assert (res.dropped_large, res.dropped_small, res.dropped_duplicate, res.dropped_top_n) == (1, 1, 1, 0)
    assert not res.needs_padding and res.num_dummies == 0

    top3 = filter_proposals(boxes, scores, IMAGE, top_n=3)
    assert top3.keep.tolist() == [5, 2, 4] and top3.dropped_top_n == 2

    no_nms = filter_proposals(boxes, scores, IMAGE, iou_threshold=None)
    assert no_nms.keep.tolist() == [5, 2, 3, 4, 7, 6]

    strict = filter_proposals(boxes, scores, IMAGE, min_area=1000)  # only 2, 3 (1600 px^2) and 4-6 (900: no)
    assert strict.keep.tolist() == [2]
    assert strict.needs_padding and strict.num_dummies == 4


def test_filter_boundaries_and_options():
    boxes = np.array([[0, 0, 60, 100], [0, 0, 61, 100], [0, 0, 3, 50], [10, 10, 15, 14]], float)
    scores = np.array([0.5, 0.6, 0.7, 0.8])
    res = filter_proposals(boxes, scores, IMAGE, iou_threshold=None)
    # exactly 60% stays, 61% goes; the 3 x 50 box (150 px^2) and the 5 x 4 box (20 px^2) stay
    assert res.keep.tolist() == [3, 2, 0]
    assert filter_proposals(boxes, scores, IMAGE, min_side=4, iou_threshold=None).keep.tolist() == [3, 0]
    assert filter_proposals(boxes, scores, IMAGE, min_area_frac=0.01, iou_threshold=None).keep.tolist() == [2, 0]
    assert filter_proposals(boxes, scores, IMAGE, max_area_frac=1.0, iou_threshold=None).keep.tolist() == [3, 2, 1, 0]


def test_filter_drops_invalid_boxes_and_breaks_ties_by_index():
    boxes = np.array([[0, 0, 10, 10], [np.nan, 0, 10, 10], [5, 5, 4, 20], [20, 20, 30, 30], [40, 40, 50, 50]])
    scores = np.array([0.5, 0.9, 0.9, 0.5, 0.5])
    res = filter_proposals(boxes, scores, IMAGE)
    assert res.keep.tolist() == [0, 3, 4]
    assert res.dropped_small == 2
    empty = filter_proposals(np.zeros((0, 4)), np.zeros(0), IMAGE)
    assert empty.keep.tolist() == [] and empty.num_dummies == 5


def test_filter_rejects_bad_input():
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        filter_proposals(np.zeros((3, 3)), np.zeros(3), IMAGE)
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        filter_proposals(np.zeros((3, 4)), np.zeros(2), IMAGE)
    with pytest.raises(ValueError, match="image_size"):
        filter_proposals(np.zeros((1, 4)), np.zeros(1), (0, 10))
    with pytest.raises(ValueError, match="top_n"):
        filter_proposals(np.zeros((1, 4)), np.zeros(1), IMAGE, top_n=0)


coords = st.floats(0, 200, allow_nan=False, width=32)
box_lists = st.lists(st.tuples(coords, coords, coords, coords, st.floats(0, 1, width=32)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(box_lists, st.sampled_from([0.3, 0.5, 0.7]), st.integers(1, 12))
def test_filter_properties(raw, iou, top_n):
    arr = np.array([[min(a, c), min(b, d), max(a, c), max(b, d)] for a, b, c, d, _ in raw], float).reshape(-1, 4)
    scores = np.array([s for *_, s in raw], float)
    size = (150, 200)
    res = filter_proposals(arr, scores, size, iou_threshold=iou, top_n=top_n)
    keep = res.keep
    assert len(set(keep.tolist())) == len(keep) <= top_n
    assert (np.diff(scores[keep]) <= 0).all()
    kept = arr[keep]
    area = (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])
    assert (area <= 0.6 * size[0] * size[1]).all() and (area >= 20).all()
    if len(keep) > 1:
        iou_m = box_iou(torch.from_numpy(kept), torch.from_numpy(kept)).numpy()
        np.fill_diagonal(iou_m, 0)
        assert iou_m.max() <= iou + 1e-9
    assert res.num_dummies == max(0, 5 - len(keep))


# --- coverage -----------------------------------------------------------------------------------


def test_coverage_hand_case():
    reference = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0, 0, 10, 10]])]
    other = [np.array([[0, 0, 10, 10], [20, 20, 30, 35]]), np.zeros((0, 4))]  # IoU 1 and 2/3; nothing
    df = coverage_rate(reference, other, iou_thresholds=[0.5, 0.7, 1.0], top_k=[1, 2])
    assert list(df.columns)[:3] == ["threshold", "top_k", "coverage"]
    got = {(r.top_k, r.threshold): (r.coverage, r.mean_image_coverage, r.matched, r.reference) for r in df.itertuples()}
    assert got[(2, 0.5)] == pytest.approx((2 / 3, 0.5, 2, 3))
    assert got[(2, 0.7)] == pytest.approx((1 / 3, 0.25, 1, 3))
    assert got[(2, 1.0)] == pytest.approx((1 / 3, 0.25, 1, 3))
    assert got[(1, 0.5)] == pytest.approx((1 / 2, 0.5, 1, 2))


def test_coverage_uses_only_the_other_detectors_top_k():
    reference = [np.array([[0, 0, 10, 10]])]
    other = [np.array([[50, 50, 60, 60], [0, 0, 10, 10]])]
    df = coverage_rate(reference, other, iou_thresholds=[0.9], top_k=(1, 2)).set_index("top_k")
    assert df.loc[1, "coverage"] == 0.0 and df.loc[2, "coverage"] == 1.0
    assert len(coverage_rate(reference, other)) == 2 * 11  # thresholds 0.5, 0.55, ..., 1.0 for k = 5, 10
    with pytest.raises(ValueError, match="1 reference images but 2 other"):
        coverage_rate(reference, other * 2)
