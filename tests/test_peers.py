"""Peer datasets (ASSR, IRSR loaders), their instance-mask metrics, Table I evaluation and the
Table VII-VIII proposal comparison: hand-built trees and hand-computed cases."""

from __future__ import annotations

import enum
import json
import os
import pickle
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from salrank.analysis.peer_eval import (
    evaluate_peer_rank_maps,
    evaluate_peer_ranking,
    fosrnet_ranker,
    paper_table1,
    peer_roots,
    rank_by_area,
    rank_classes,
)
from salrank.analysis.proposal_comparison import (
    match_one_to_one,
    paper_table7,
    paper_table8,
    proposal_summary,
    relabel_comparison,
)
from salrank.config import get_settings
from salrank.data.peers import (
    PeerFormatError,
    assr_ranks,
    decode_segmentation,
    irsr_ranks,
    load_assr,
    load_irsr,
    make_demo_tree,
)
from salrank.metrics.peers import (
    image_mae,
    image_sor,
    load_rank_map,
    mean_mae,
    mean_sor,
    object_values,
    paint_rank_map,
)

H, W = 40, 60


def _jpg(path: Path, size=(H, W)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((*size, 3), np.uint8)).save(path)


def _square_polygon(x1, y1, x2, y2) -> list[list[float]]:
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def _hand_mask() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[5:15, 30:50] = True  # 10 x 20 = 200 pixels
    return m


def _compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _uncompressed_rle(mask: np.ndarray) -> dict:
    flat = mask.ravel(order="F").astype(np.int64)
    runs, current, count = [], 0, 0
    for v in flat:
        if v == current:
            count += 1
        else:
            runs.append(count)
            current, count = v, 1
    runs.append(count)
    return {"size": [H, W], "counts": runs}


# ----------------------------------------------------------------------------- ASSR


def _assr_tree(root: Path, split: str = "test", rank_orders=None, objects=None) -> Path:
    objects = objects or {
        "img_a": [
            {"bbox": [2, 3, 12, 13], "segmentation": _square_polygon(2, 3, 12, 13)},
            {"bbox": [30, 5, 50, 15], "segmentation": _compressed_rle(_hand_mask())},
            {"bbox": [0, 20, 10, 30], "segmentation": _uncompressed_rle(_hand_mask())},
            {"bbox": [40, 25, 59, 39], "segmentation": _square_polygon(40, 25, 59, 39)},
        ],
        "img_b": [{"bbox": [1, 1, 5, 5], "segmentation": _square_polygon(1, 1, 5, 5)}],
    }
    rank_orders = rank_orders or {"img_a": [0.8, 1.0, 0.5, 0.9], "img_b": [0.0]}
    records = []
    for stem, objs in objects.items():
        records.append({"img": stem, "object_data": objs})
        _jpg(root / "images" / split / f"{stem}.jpg")
        p = root / "rank_order" / split / f"{stem}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"rank_order": rank_orders[stem]}))
    (root / f"obj_seg_data_{split}.json").write_text(json.dumps(records))
    return root


def test_assr_boxes_ranks_and_masks(tmp_path):
    root = _assr_tree(tmp_path)
    (root / "gt" / "test").mkdir(parents=True)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "gt" / "test" / "img_a.png")
    ds = load_assr(root, "test")
    assert ds.name == "ASSR" and ds.stems == ["img_a", "img_b"] and len(ds) == 2
    a = ds["img_a"]
    assert a.boxes.dtype == np.float64
    np.testing.assert_array_equal(a.boxes[1], [30, 5, 50, 15])
    # 1.0 -> 1, 0.9 -> 2, 0.8 -> 3; 0.5 is not salient
    np.testing.assert_array_equal(a.ranks, [3, 1, 0, 2])
    np.testing.assert_array_equal(a.raw_ranks, [0.8, 1.0, 0.5, 0.9])
    np.testing.assert_array_equal(ds["img_b"].ranks, [0])
    assert a.image_path == root / "images" / "test" / "img_a.jpg"
    assert a.gt_map_path == root / "gt" / "test" / "img_a.png" and ds["img_b"].gt_map_path is None
    masks = a.masks()
    assert masks.shape == (4, H, W) and masks.dtype == bool
    np.testing.assert_array_equal(masks[1], _hand_mask())  # compressed RLE
    np.testing.assert_array_equal(masks[2], _hand_mask())  # uncompressed RLE
    assert masks[0].sum() == 100 and masks[0][3:13, 2:12].all()  # 10 x 10 polygon square
    assert a.size() == (H, W)  # read from the image header
    assert ds.summary()["salient objects"] == 3 and ds.summary()["objects"] == 5


def test_assr_filename_img_field_and_split_check(tmp_path):
    root = _assr_tree(tmp_path, split="val")
    data = json.loads((root / "obj_seg_data_val.json").read_text())
    data[0]["img"] = "img_a.jpg"  # a file name instead of a stem
    (root / "obj_seg_data_val.json").write_text(json.dumps(data))
    assert load_assr(root, "val").stems == ["img_a", "img_b"]
    with pytest.raises(ValueError, match="splits train, val, test"):
        load_assr(root, "validation")


def test_assr_malformed_inputs(tmp_path):
    root = _assr_tree(tmp_path / "mismatch", rank_orders={"img_a": [1.0, 0.9], "img_b": [0.0]})
    with pytest.raises(PeerFormatError, match=r"img_a\.json.*'rank_order' has 2 values.*4 objects"):
        load_assr(root, "test")

    root = _assr_tree(tmp_path / "range", rank_orders={"img_a": [1.0, 0.9, 2.0, 0.7], "img_b": [0.0]})
    with pytest.raises(PeerFormatError, match=r"img_a\.json.*\[0, 1\]"):
        load_assr(root, "test")

    root = _assr_tree(tmp_path / "missing_rank")
    (root / "rank_order" / "test" / "img_b.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"img_b\.json"):
        load_assr(root, "test")

    root = _assr_tree(tmp_path / "bbox", objects={"img_a": [{"bbox": [1, 2, 3]}]}, rank_orders={"img_a": [1.0]})
    with pytest.raises(PeerFormatError, match=r"obj_seg_data_test\.json: entry 0 \(img_a\) object 0 field 'bbox'"):
        load_assr(root, "test")

    root = _assr_tree(tmp_path / "flipped", objects={"img_a": [{"bbox": [5, 2, 3, 9]}]}, rank_orders={"img_a": [1.0]})
    with pytest.raises(PeerFormatError, match="x2 < x1"):
        load_assr(root, "test")

    root = _assr_tree(tmp_path / "json")
    (root / "obj_seg_data_test.json").write_text("[{")
    with pytest.raises(PeerFormatError, match=r"obj_seg_data_test\.json: not valid JSON"):
        load_assr(root, "test")

    root = _assr_tree(tmp_path / "noimg")
    (root / "images" / "test" / "img_b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"img_b\.jpg"):
        load_assr(root, "test")
    assert len(load_assr(root, "test", check_images=False)) == 2

    root = _assr_tree(tmp_path / "key")
    (root / "rank_order" / "test" / "img_a.json").write_text(json.dumps({"ranks": [1, 1, 1, 1]}))
    with pytest.raises(PeerFormatError, match="needs the key 'rank_order'"):
        load_assr(root, "test")

    with pytest.raises(FileNotFoundError, match="obj_seg_data_train.json"):
        load_assr(tmp_path / "nothing", "train")


def test_assr_bad_segmentation_named_on_decode(tmp_path):
    objs = {"img_a": [{"bbox": [0, 0, 5, 5], "segmentation": {"size": [10, 10], "counts": "xx"}},
                      {"bbox": [0, 0, 5, 5]}]}
    root = _assr_tree(tmp_path, objects=objs, rank_orders={"img_a": [1.0, 0.9]})
    image = load_assr(root, "test")["img_a"]  # loading is lazy: no error yet
    with pytest.raises(PeerFormatError, match=r"image 'img_a' object 0 field 'segmentation': RLE size"):
        image.masks()


# ----------------------------------------------------------------------------- IRSR


def _irsr_tree(root: Path, records, split: str = "test", pickled: bytes | None = None) -> Path:
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{split}.pkl").write_bytes(pickled if pickled is not None else pickle.dumps(records))
    for rec in records:
        _jpg(root / "Images" / split / "rgb" / Path(rec["file_name"]).name)
    return root


def _irsr_records():
    return [
        {"file_name": "some/where/COCO_val2014_000000000007.jpg", "height": H, "width": W,
         "annotations": [
             {"bbox": [10, 20, 30, 15], "segmentation": _square_polygon(10, 20, 40, 35), "is_person": True},
             {"bbox": [30, 5, 20, 10], "segmentation": _compressed_rle(_hand_mask()), "is_person": False},
             {"bbox": [0, 0, 5, 5], "segmentation": _uncompressed_rle(_hand_mask()), "is_person": False},
         ],
         "rank": [2, 0, 1]},
        {"file_name": "COCO_val2014_000000000003.jpg", "bbox_mode": 0,
         "annotations": [{"bbox": [1, 2, 11, 12], "segmentation": _square_polygon(1, 2, 11, 12)},
                         {"bbox": [5, 5, 9, 9], "segmentation": _square_polygon(5, 5, 9, 9)}],
         "rank": [0, 1]},
    ]


def test_irsr_boxes_ranks_and_masks(tmp_path):
    root = _irsr_tree(tmp_path, _irsr_records())
    ds = load_irsr(root, "test")
    assert ds.name == "IRSR" and ds.stems == ["COCO_val2014_000000000003", "COCO_val2014_000000000007"]
    a = ds["COCO_val2014_000000000007"]
    np.testing.assert_array_equal(a.boxes, [[10, 20, 40, 35], [30, 5, 50, 15], [0, 0, 5, 5]])  # xywh -> xyxy
    np.testing.assert_array_equal(a.ranks, [1, 3, 2])  # 2 = most salient of 3
    np.testing.assert_array_equal(a.is_person, [True, False, False])
    assert a.image_path == root / "Images" / "test" / "rgb" / "COCO_val2014_000000000007.jpg"
    assert a.image_size == (H, W)
    masks = a.masks()
    assert masks[0].sum() == 30 * 15
    np.testing.assert_array_equal(masks[1], _hand_mask())
    np.testing.assert_array_equal(masks[2], _hand_mask())
    b = ds["COCO_val2014_000000000003"]
    np.testing.assert_array_equal(b.boxes, [[1, 2, 11, 12], [5, 5, 9, 9]])  # bbox_mode 0 = XYXY_ABS
    np.testing.assert_array_equal(b.ranks, [2, 1])
    with pytest.raises(ValueError, match="splits train, test"):
        load_irsr(root, "val")


def test_irsr_detectron2_boxmode_without_detectron2(tmp_path, monkeypatch):
    class BoxMode(enum.IntEnum):
        XYXY_ABS = 0
        XYWH_ABS = 1
        XYXY_REL = 2

    module = types.ModuleType("detectron2.structures.boxes")
    BoxMode.__module__, BoxMode.__qualname__ = module.__name__, "BoxMode"
    module.BoxMode = BoxMode
    for name in ("detectron2", "detectron2.structures"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    records = _irsr_records()
    for rec in records:
        rec.pop("bbox_mode", None)
        for ann in rec["annotations"]:
            ann["bbox_mode"] = BoxMode.XYWH_ABS
    records[1]["annotations"][0]["bbox_mode"] = BoxMode.XYXY_ABS
    payload = pickle.dumps(records)
    records[1]["annotations"][0]["bbox_mode"] = BoxMode.XYXY_REL
    relative = pickle.dumps(records)
    monkeypatch.delitem(sys.modules, module.__name__)  # loading must not need detectron2
    root = _irsr_tree(tmp_path, records, pickled=payload)
    b = load_irsr(root, "test")["COCO_val2014_000000000003"]
    np.testing.assert_array_equal(b.boxes, [[1, 2, 11, 12], [5, 5, 14, 14]])

    _irsr_tree(tmp_path, records, pickled=relative)
    with pytest.raises(PeerFormatError, match="XYXY_REL is not supported"):
        load_irsr(root, "test")


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_irsr_malformed_inputs(tmp_path):
    root = _irsr_tree(tmp_path / "evil", [], pickled=pickle.dumps([_Evil()]))
    with pytest.raises(PeerFormatError, match=r"test\.pkl: not a readable.*refusing to load"):
        load_irsr(root, "test")

    records = _irsr_records()
    records[0]["rank"] = [2, 0]
    with pytest.raises(PeerFormatError, match=r"record 0 \(COCO_val2014_000000000007\.jpg\): field 'rank' has 2"):
        load_irsr(_irsr_tree(tmp_path / "len", records), "test")

    records = _irsr_records()
    records[1]["rank"] = [0, -1]
    with pytest.raises(PeerFormatError, match="non-negative integers"):
        load_irsr(_irsr_tree(tmp_path / "neg", records), "test")

    records = _irsr_records()
    del records[1]["annotations"][1]["bbox"]
    with pytest.raises(PeerFormatError, match=r"record 1 .* object 1: needs the field 'bbox'"):
        load_irsr(_irsr_tree(tmp_path / "nobbox", records), "test")

    records = _irsr_records()
    del records[0]["rank"]
    with pytest.raises(PeerFormatError, match=r"record 0: needs the fields"):
        load_irsr(_irsr_tree(tmp_path / "norank", records), "test")

    root = _irsr_tree(tmp_path / "dict", [], pickled=pickle.dumps({"a": 1}))
    with pytest.raises(PeerFormatError, match="expected a list of records"):
        load_irsr(root, "test")

    root = _irsr_tree(tmp_path / "truncated", [], pickled=pickle.dumps(_irsr_records())[:50])
    with pytest.raises(PeerFormatError, match="not a readable"):
        load_irsr(root, "test")

    root = _irsr_tree(tmp_path / "noimg", _irsr_records())
    (root / "Images" / "test" / "rgb" / "COCO_val2014_000000000003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="COCO_val2014_000000000003.jpg"):
        load_irsr(root, "test")


# ----------------------------------------------------------------------------- conversions, masks


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(6))).flatmap(lambda p: st.integers(1, 6).map(lambda n: p[:n])))
def test_irsr_ranks_property(values):
    n = len(values)
    dense = np.argsort(np.argsort(values))  # 0 = least salient among these
    np.testing.assert_array_equal(irsr_ranks(values), n - dense)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]), min_size=1, max_size=8))
def test_assr_ranks_property(values):
    v = np.array(values)
    r = assr_ranks(v)
    salient = v > 0.5
    assert (r[~salient] == 0).all()
    assert sorted(r[salient].tolist()) == list(range(1, int(salient.sum()) + 1))
    for i in np.flatnonzero(salient):  # a higher value never gets a worse rank
        for j in np.flatnonzero(salient):
            if v[i] > v[j]:
                assert r[i] < r[j]


def test_decode_segmentation_errors():
    with pytest.raises(PeerFormatError, match="even number"):
        decode_segmentation([[1, 2, 3, 4, 5]], (10, 10))
    with pytest.raises(PeerFormatError, match="polygon list or RLE"):
        decode_segmentation("abc", (10, 10))
    with pytest.raises(PeerFormatError, match="not a valid COCO segmentation"):
        decode_segmentation({"counts": "abc"}, (10, 10))


def test_demo_tree_round_trip(tmp_path):
    roots = make_demo_tree(tmp_path / "a", n_images=2, seed=3)
    again = make_demo_tree(tmp_path / "b", n_images=2, seed=3)
    assert (roots["ASSR"] / "obj_seg_data_test.json").read_bytes() == \
        (again["ASSR"] / "obj_seg_data_test.json").read_bytes()
    for split in ("train", "val", "test"):
        ds = load_assr(roots["ASSR"], split)
        assert len(ds) == 2
        for im in ds:
            assert 1 <= (im.ranks > 0).sum() <= 5
            gt = load_rank_map(im.gt_map_path)
            assert image_mae(paint_rank_map(im.masks(), im.ranks, "assr"), gt) == 0.0
            ys, xs = np.nonzero(im.masks()[0])
            assert im.boxes[0, 0] - 1 <= xs.min() and xs.max() <= im.boxes[0, 2]
    for split in ("train", "test"):
        ds = load_irsr(roots["IRSR"], split)
        for im in ds:
            assert (im.ranks > 0).all()
            gt = load_rank_map(im.gt_map_path)
            assert image_mae(paint_rank_map(im.masks(), im.ranks, "irsr"), gt) < 1 / 255


# ----------------------------------------------------------------------------- peer metrics


def _three_masks():
    m = np.zeros((3, 4, 6), bool)
    m[0, :, 0:3] = True  # 12 px
    m[1, :, 2:5] = True  # overlaps object 0 in column 2
    m[2, 0, 5] = True
    return m


def test_paint_rank_map_conventions():
    m = _three_masks()
    assr = paint_rank_map(m, [2, 1, 0], "assr")
    np.testing.assert_allclose(assr[:, 0], 229 / 255)
    np.testing.assert_allclose(assr[:, 2], 229 / 255)  # overlap: ASSR paints rank 1 first, rank 2 over it
    np.testing.assert_allclose(assr[0, 5], 0.0)  # rank 0 not painted
    # levels go by position in the order, as ASSR's loop over its sorted list: 6 -> 2nd -> 229
    assert paint_rank_map(m, [6, 1, 0], "assr")[0, 0] == 229 / 255
    six = np.zeros((6, 1, 6), bool)
    six[np.arange(6), 0, np.arange(6)] = True
    np.testing.assert_array_equal(paint_rank_map(six, [6, 5, 4, 3, 2, 1], "assr")[0] * 255,
                                  [0, 153, 178, 204, 229, 255])  # only five levels
    irsr = paint_rank_map(m, [1, 3, 2], "irsr")
    np.testing.assert_allclose([irsr[0, 0], irsr[0, 3], irsr[0, 5]], [1.0, 1 / 3, 2 / 3])
    assert irsr[0, 2] == pytest.approx(1 / 3)  # overlap: IRSR paints in list order, object 1 over 0
    with pytest.raises(ValueError, match="3 ranks for 2 masks"):
        paint_rank_map(m[:2], [1, 2, 3])
    with pytest.raises(ValueError, match="painting"):
        paint_rank_map(m, [1, 2, 3], "seqrank")


def test_object_values_cvpr_and_ijcv():
    mask = np.zeros((1, 2, 5), bool)
    mask[0] = True  # 10 pixels
    pred = np.array([[0.6, 0.6, 0.8, 0.8, 0.9], [0.9, 0, 0, 0, 0]])  # 6 non-zero > 5
    assert object_values(pred, mask, "cvpr")[0] == 0.6  # mode tie 0.6/0.8/0.9 -> smallest
    # IJCV: 8-bit levels as ASSR reads its PNG (0.9 * 255 -> 230), integer sum / pixel count
    assert object_values(pred, mask, "ijcv")[0] == (2 * 153 + 2 * 204 + 2 * 230) / 10 / 255
    pred[1, 0] = 0  # exactly 5 of 10 covered: not more than half
    assert object_values(pred, mask, "cvpr")[0] == 0.0


def test_image_sor_hand_cases():
    m = np.zeros((3, 3, 3), bool)
    for k in range(3):
        m[k, k] = True  # object k = row k
    reversed_map = np.array([[0.2] * 3, [0.5] * 3, [0.9] * 3])  # GT rank 1 gets the lowest value
    assert image_sor(reversed_map, m, [1, 2, 3]) == pytest.approx(-1.0)
    assert image_sor(reversed_map[::-1], m, [1, 2, 3], "ijcv") == pytest.approx(1.0)
    one = reversed_map.copy()
    one[1:] = 0
    assert image_sor(one, m, [1, 2, 3], "cvpr") == 1.0  # one object left
    assert np.isnan(image_sor(one, m, [1, 2, 3], "ijcv"))
    assert np.isnan(image_sor(np.zeros((3, 3)), m, [1, 2, 3]))
    assert image_sor(reversed_map, m, [1, 2, 0]) == pytest.approx(-1.0)  # rank 0 objects ignored
    assert image_sor(reversed_map, m, [1, 7, 2], top_k=5) == pytest.approx(-1.0)
    result = mean_sor([1.0, float("nan"), 0.0])
    assert result == {"sor": 0.5, "sor_normalised": 0.75, "n_images": 3, "n_used": 2}


def test_mae_hand_cases():
    assert image_mae([[0, 1], [0.5, 0.5]], np.zeros((2, 2))) == 0.5
    assert mean_mae([([[1.0]], [[0.0]]), ([[0.25]], [[0.0]])]) == 0.625
    with pytest.raises(ValueError, match="differ in shape"):
        image_mae(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_mae(np.full((2, 2), 255.0), np.zeros((2, 2)))


# ----------------------------------------------------------------------------- Table I evaluation


def test_rank_by_area():
    boxes = np.array([[0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 3, 3], [10, 10, 12, 12]], float)
    np.testing.assert_array_equal(rank_by_area(None, boxes), [3, 1, 2, 4])  # tie: lower index first


def test_evaluate_peer_ranking(tmp_path):
    objects = {"img_a": [{"bbox": [0, 0, 10, 10]}, {"bbox": [0, 0, 30, 30]}, {"bbox": [0, 0, 20, 20]},
                         {"bbox": [40, 0, 41, 1]}],
               "img_b": [{"bbox": [0, 0, 5, 5]}, {"bbox": [5, 5, 20, 20]}]}
    ranks = {"img_a": [0.8, 1.0, 0.9, 0.3], "img_b": [0.9, 1.0]}  # GT follows the area
    ds = load_assr(_assr_tree(tmp_path, objects=objects, rank_orders=ranks), "test")
    summary, table = evaluate_peer_ranking(ds, rank_by_area, progress=False)
    assert summary["srcc"] == pytest.approx(1.0) and summary["f1"] == pytest.approx(1.0)
    assert summary["sa_sor"] == pytest.approx(1.0) and summary["n_images"] == 2
    assert table["n_objects"].tolist() == [3, 2] and table["image"].tolist() == ["img_a", "img_b"]

    def smallest_first(image, boxes):
        return len(boxes) + 1 - rank_by_area(image, boxes)

    summary, _ = evaluate_peer_ranking(ds, smallest_first, progress=False)
    assert summary["srcc"] == pytest.approx(-1.0) and summary["sa_sor"] == pytest.approx(-1.0)

    summary, table = evaluate_peer_ranking(ds, rank_by_area, objects="all", progress=False)
    assert table["n_objects"].tolist() == [4, 2]
    with pytest.raises(ValueError, match="2 ranks for the 3 boxes of image 'img_a'"):
        evaluate_peer_ranking(ds, lambda image, boxes: np.array([1, 2]), progress=False)
    with pytest.raises(ValueError, match="rank < 1"):
        evaluate_peer_ranking(ds, lambda image, boxes: np.zeros(len(boxes), int), progress=False)


def test_evaluate_peer_ranking_all_objects_shares_one_class_scale(tmp_path):
    # GT ranks [1, 2, 3, 0, 0, 0], the ranker ranks all six boxes 1..6 by area. On one scale
    # (rank r -> 7 - r, rank 0 -> 0) classes 6, 5, 4 agree; classes 0 (3 GT), 1, 2, 3 (one
    # prediction each) score 0: macro F1 = 3 / 7. Rescaling each side by its own maximum gave 0.
    assert rank_classes([1, 2, 3, 0, 0, 0], 6).tolist() == [6, 5, 4, 0, 0, 0]
    with pytest.raises(ValueError, match="0..2"):
        rank_classes([1, 3], 2)
    sides = [60, 50, 40, 30, 20, 10]
    objects = {"img": [{"bbox": [0, 0, a, a]} for a in sides]}
    ds = load_assr(_assr_tree(tmp_path, objects=objects, rank_orders={"img": [1.0, 0.9, 0.8, 0.3, 0.2, 0.1]}),
                   "test")
    summary, table = evaluate_peer_ranking(ds, rank_by_area, objects="all", progress=False)
    assert summary["f1"] == pytest.approx(3 / 7)
    # Spearman = Pearson of the mid-ranks: GT (6, 5, 4, 2, 2, 2), prediction (6, 5, 4, 3, 2, 1)
    assert summary["srcc"] == pytest.approx(np.corrcoef([6, 5, 4, 2, 2, 2], [6, 5, 4, 3, 2, 1])[0, 1])
    assert summary["srcc"] == pytest.approx(0.94, abs=0.005) and summary["sa_sor_variant"] == "irsr"
    # salient objects only: the same three boxes, perfectly ranked
    summary, _ = evaluate_peer_ranking(ds, rank_by_area, progress=False)
    assert summary["f1"] == pytest.approx(1.0) and summary["srcc"] == pytest.approx(1.0)


def test_evaluate_peer_rank_maps(tmp_path):
    squares = [(0, 0, 20, 20), (25, 0, 35, 10), (40, 0, 45, 5)]  # disjoint, areas 400 > 100 > 25
    objects = {"img": [{"bbox": list(b), "segmentation": _square_polygon(*b)} for b in squares]}
    ds = load_assr(_assr_tree(tmp_path / "a", objects=objects, rank_orders={"img": [1.0, 0.9, 0.8]}), "test")
    result = evaluate_peer_rank_maps(ds, rank_by_area, progress=False)
    assert result["sor"] == pytest.approx(1.0) and result["mae"] == 0.0 and result["n_used"] == 1
    ds = load_assr(_assr_tree(tmp_path / "b", objects=objects, rank_orders={"img": [0.8, 0.9, 1.0]}), "test")
    result = evaluate_peer_rank_maps(ds, rank_by_area, variant="ijcv", progress=False)
    assert result["sor"] == pytest.approx(-1.0) and result["sor_normalised"] == pytest.approx(0.0)
    # MAE by hand: 400 px painted 255 instead of 204, 25 px 204 instead of 255, of 40 x 60 px
    assert result["mae"] == pytest.approx((400 * 51 + 25 * 51) / 255 / (H * W))


def test_peer_roots_and_missing_checkpoint(tmp_path):
    (tmp_path / "ASSR").mkdir()
    roots = peer_roots(get_settings(data_root=tmp_path))
    assert roots == {"ASSR": tmp_path / "ASSR", "IRSR": None}
    assert peer_roots(get_settings(data_root=tmp_path), irsr_root=tmp_path)["IRSR"] == tmp_path
    with pytest.raises(FileNotFoundError, match="IRSR root not found"):
        peer_roots(get_settings(), irsr_root=tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fosrnet_ranker(tmp_path / "model.pt", pretrained=False)


def test_paper_tables_lay_out_salrank_paper():
    from salrank import paper

    t1 = paper_table1()
    assert t1.shape == (3, 6) and list(t1.index) == list(paper.TABLE1)
    for i, (label, _) in enumerate(paper.TABLE1_DATASETS):
        for j, metric in enumerate(("SRCC", "F1")):
            assert t1[(label, metric)].tolist() == [v[2 * i + j] for v in paper.TABLE1.values()]
    t7 = paper_table7()
    assert list(t7.index) == ["SRCC", "F1", "FPS"]
    assert {m: tuple(t7[m]) for m in t7.columns} == paper.TABLE7
    t8 = paper_table8()
    assert list(t8.columns) == ["AP", "AP50", "SRCC", "F1", "FPS"]
    assert {m: tuple(t8.loc[m]) for m in t8.index} == paper.TABLE8


# ----------------------------------------------------------------------------- Tables VII-VIII


def test_match_one_to_one_prefers_global_optimum():
    a = np.array([[0, 0, 10, 10], [2, 0, 12, 10]], float)
    b = np.array([[1, 0, 11, 10], [3, 0, 13, 10]], float)
    # greedy from a[0] would take b[0] (IoU .82 vs .54); the total is better with a0-b0, a1-b1
    assert match_one_to_one(a, b, 0.5) == [(0, 0), (1, 1)]
    assert match_one_to_one(a, np.array([[50, 50, 60, 60]], float)) == []
    assert match_one_to_one(np.zeros((0, 4)), b) == []


def test_relabel_comparison_hand_case():
    pts = np.array([[10, 10], [20, 20], [30, 30], [70, 70]], float)  # 3 in A, 1 in B
    fixations = {"im": SimpleNamespace(points=pts, height=100, width=100)}
    a, b = [0, 0, 50, 50], [50, 50, 100, 100]
    sets = {
        "ref": {"im": np.array([a, b], float)},
        "shifted": {"im": np.array([b, [2, 0, 52, 50]], float)},  # other order, A moved slightly
        "elsewhere": {"im": np.array([[0, 60, 40, 100]], float)},
    }
    table = relabel_comparison(fixations, sets, "ref").set_index("proposals")
    assert table.loc["ref", "reference matched"] == 1.0 and table.loc["ref", "rank SRCC"] == pytest.approx(1.0)
    assert table.loc["shifted", "reference matched"] == 1.0
    assert table.loc["shifted", "same rank"] == 1.0 and table.loc["shifted", "same top-1"] == 1.0
    assert table.loc["shifted", "salient share"] == 1.0
    assert table.loc["elsewhere", "reference matched"] == 0.0
    assert table.loc["elsewhere", "salient share"] == 0.0  # no fixation inside
    assert np.isnan(table.loc["elsewhere", "same rank"]) and table.loc["elsewhere", "same top-1"] == 0.0
    assert proposal_summary(sets["ref"])["proposals/image (mean)"] == 2.0
    with pytest.raises(ValueError, match="reference 'x'"):
        relabel_comparison(fixations, sets, "x")
