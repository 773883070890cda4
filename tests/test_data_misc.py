"""Fixation maps, the paper's splits, the image loader and the embedded sample."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.ndimage import gaussian_filter

from salrank.data import (
    Fixations,
    ImageReadError,
    SplitSizeWarning,
    binary_fixation_map,
    fixation_map,
    image_size,
    load_coco_boxes,
    load_image,
    load_salicon_example_boxes,
    load_salicon_examples,
    paper_splits,
    salicon_example_images,
    salicon_examples_dir,
)


def _fx(points, h=48, w=64) -> Fixations:
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    return Fixations(pts, np.zeros(len(pts), np.int64), h, w)


# ----------------------------------------------------------------------------- fixation maps


def test_single_point_peaks_at_one_at_its_pixel():
    m = fixation_map(_fx([[10, 20]]), sigma=3.0)
    assert m.shape == (48, 64) and m.dtype == np.float64
    assert m[20, 10] == 1.0
    assert np.unravel_index(np.argmax(m), m.shape) == (20, 10)
    assert m.min() == 0.0
    assert m[20, 13] == pytest.approx(np.exp(-9 / (2 * 9)), rel=1e-3)  # one sigma away: e^-1/2
    assert m[20, 7] == pytest.approx(m[20, 13]) and m[23, 10] == pytest.approx(m[20, 13])


def test_rounding_to_nearest_pixel_and_duplicates_count_once():
    b = binary_fixation_map(_fx([[1.4, 2.6], [1.5, 0.49], [1.2, 2.8], [63.7, 47.2], [-0.7, 5]]))
    expected = np.zeros((48, 64))
    expected[3, 1] = 1  # (1.4, 2.6) and (1.2, 2.8) share a pixel
    expected[0, 2] = 1  # halves round up
    assert b[3, 1] == 1 and b[0, 2] == 1 and b.sum() == 2  # (63.7 -> 64) and (-0.7 -> -1) are outside
    np.testing.assert_array_equal(b, expected)


def test_empty_fixations_give_zeros():
    m = fixation_map(_fx([]), sigma=19.0)
    assert m.shape == (48, 64) and not m.any()
    assert not fixation_map(np.zeros((0, 2)), image_size=(5, 6)).any()


def test_sigma_zero_is_the_binary_map_and_negative_sigma_rejected():
    fx = _fx([[0, 0], [5, 7], [63, 47]])
    np.testing.assert_array_equal(fixation_map(fx, sigma=0), binary_fixation_map(fx))
    with pytest.raises(ValueError, match="sigma"):
        fixation_map(fx, sigma=-1)


def test_matches_salicon_api_recipe_min_max_scaled():
    pts = np.array([[3, 4], [40, 30], [41, 30], [60, 2]], dtype=float)
    binary = np.zeros((48, 64))
    binary[pts[:, 1].astype(int), pts[:, 0].astype(int)] = 1
    blurred = gaussian_filter(binary, 5.0)
    expected = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    np.testing.assert_allclose(fixation_map(pts, 5.0, image_size=(48, 64)), expected)
    with pytest.raises(ValueError, match="image_size"):
        fixation_map(pts)


def test_every_pixel_fixated_gives_ones():
    ys, xs = np.mgrid[0:4, 0:5]
    m = fixation_map(np.stack([xs.ravel(), ys.ravel()], 1), 1.0, image_size=(4, 5))
    np.testing.assert_array_equal(m, np.ones((4, 5)))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 31), st.integers(0, 23)), min_size=1, max_size=15))
def test_fixation_map_range_and_peak_on_a_fixation(xy):
    m = fixation_map(np.array(xy, float), 2.0, image_size=(24, 32))
    assert m.min() >= 0 and m.max() == pytest.approx(1.0)
    r, c = np.unravel_index(np.argmax(m), m.shape)
    # the maximum of a sum of equal Gaussians lies within sigma-scale reach of some fixation
    assert min(abs(c - x) + abs(r - y) for x, y in xy) <= 4


# ----------------------------------------------------------------------------- splits


def test_paper_splits_sizes_and_rule():
    train = [f"COCO_train2014_{i:012d}" for i in range(10_000)]
    val = [f"COCO_val2014_{i:012d}" for i in range(5_000)][::-1]  # order given must not matter
    with warnings.catch_warnings():
        warnings.simplefilter("error", SplitSizeWarning)
        s = paper_splits(train, val)
    assert [len(s[k]) for k in ("train", "val", "test")] == [10_000, 1_200, 3_800]
    assert s["val"][0] == "COCO_val2014_000000000000" and s["val"][-1] == "COCO_val2014_000000001199"
    assert s["test"][0] == "COCO_val2014_000000001200"
    assert paper_splits(train[::-1], sorted(val)) == s


def test_paper_splits_small_inputs_warn_and_are_deterministic():
    val = ["c", "a", "b", "e", "d"]
    with pytest.warns(SplitSizeWarning, match="2 train / 5 val"):
        s = paper_splits(["t2", "t1"], val, n_val=2)
    assert s == {"train": ["t1", "t2"], "val": ["a", "b"], "test": ["c", "d", "e"]}
    with pytest.warns(SplitSizeWarning):
        assert paper_splits([], ["b", "a"])["val"] == ["a", "b"]


def test_paper_splits_reject_duplicates_and_overlap():
    with pytest.raises(ValueError, match="duplicated"):
        paper_splits(["a", "a"], ["b"])
    with pytest.raises(ValueError, match="both train and val"):
        paper_splits(["a", "b"], ["b", "c"])


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("mode", "color", "fmt", "expected"),
    [
        ("L", 128, "PNG", (128, 128, 128)),
        ("RGBA", (10, 20, 30, 0), "PNG", (10, 20, 30)),
        ("LA", (70, 255), "PNG", (70, 70, 70)),
        ("CMYK", (0, 0, 0, 0), "JPEG", (255, 255, 255)),
        ("I;16", 65535, "PNG", (255, 255, 255)),
        ("1", 1, "PNG", (255, 255, 255)),
    ],
)
def test_load_image_converts_to_rgb(tmp_path, mode, color, fmt, expected):
    path = tmp_path / f"img.{fmt.lower()}"
    Image.new(mode, (7, 5), color).save(path, fmt)
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (7, 5)
    np.testing.assert_allclose(np.asarray(img)[2, 3], expected, atol=2)
    assert image_size(path) == (5, 7)


def test_load_image_palette_and_cmyk_colour(tmp_path):
    pal = Image.new("P", (4, 3))
    pal.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    pal.paste(1, (0, 0, 4, 3))
    pal.save(tmp_path / "p.png")
    assert np.asarray(load_image(tmp_path / "p.png"))[1, 1].tolist() == [200, 100, 50]
    Image.new("CMYK", (4, 3), (255, 0, 0, 0)).save(tmp_path / "c.tif")  # full cyan
    assert np.asarray(load_image(tmp_path / "c.tif"))[1, 1].tolist() == [0, 255, 255]


def test_unreadable_missing_and_truncated_images(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ImageReadError, match="text.jpg"):
        load_image(tmp_path / "text.jpg")
    with pytest.raises(ImageReadError, match="text.jpg"):
        image_size(tmp_path / "text.jpg")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError):
        load_image(tmp_path)  # a directory


# ----------------------------------------------------------------------------- embedded sample


def test_sample_images_match_fixations():
    images = salicon_example_images()
    fixations = load_salicon_examples()
    assert len(images) == 10 and sorted(images) == sorted(fixations)
    for stem, path in images.items():
        assert image_size(path) == fixations[stem].image_size
    first = load_image(images["COCO_train2014_000000123067"])
    assert first.mode == "RGB" and first.size == (640, 480)
    attribution = (salicon_examples_dir() / "ATTRIBUTION.md").read_text()
    assert all(f"images/{stem}.jpg" in attribution for stem in images)


def test_load_coco_boxes_converts_xywh_to_xyxy(tmp_path):
    data = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "dir/b.jpg"}],
        "annotations": [
            {"image_id": 1, "bbox": [10, 20, 30, 40], "category_id": 1},
            {"image_id": "1", "bbox": [0.5, 0, 1, 2.5], "category_id": 3},
        ],
    }
    (tmp_path / "boxes.json").write_text(json.dumps(data))
    boxes = load_salicon_example_boxes(tmp_path / "boxes.json")
    np.testing.assert_array_equal(boxes["a"], [[10, 20, 40, 60], [0.5, 0, 1.5, 2.5]])
    assert boxes["b"].shape == (0, 4) and boxes["a"].dtype == np.float64


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"annotations": []}, "images"),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 2, "bbox": [0, 0, 1, 1]}],
            },
            "image_id",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 1, "bbox": [0, 0, 1]}],
            },
            "bbox",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"image_id": 1, "bbox": [0, 0, -1, 1]}],
            },
            "bbox",
        ),
        ({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1}]}, "bbox"),
    ],
)
def test_load_coco_boxes_malformed(tmp_path, data, field):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=field) as err:
        load_coco_boxes(path)
    assert str(path) in str(err.value)


def test_example_boxes_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="example boxes not found"):
        load_salicon_example_boxes(tmp_path / "boxes.json")


def test_shipped_example_boxes():
    path = salicon_examples_dir() / "boxes.json"
    assert path.is_file(), f"boxes.json is part of the package and is missing: {path}"
    boxes = load_salicon_example_boxes()
    fixations = load_salicon_examples()
    assert set(boxes) <= set(fixations)
    for stem, b in boxes.items():
        h, w = fixations[stem].image_size
        assert b.shape[1] == 4 and (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
        assert (b[:, :2] >= 0).all() and (b[:, 2] <= w + 1e-6).all() and (b[:, 3] <= h + 1e-6).all()
