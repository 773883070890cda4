"""SALICON readers/writers: round trips, the shipped examples, malformed files, dropping, cache."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.io import savemat

from salrank.bench.fixations import benchmark_load
from salrank.data import (
    Fixations,
    SaliconFormatError,
    SaliconPointsDroppedWarning,
    load_salicon,
    load_salicon_examples,
    salicon_examples_dir,
    save_salicon_json,
    save_salicon_mat,
)
from salrank.data import salicon as salicon_module

EXAMPLES_JSON = salicon_examples_dir() / "fixations.json"


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _official(images, annotations) -> dict:
    return {"info": {}, "type": "fixations", "images": images, "annotations": annotations}


def _image(image_id=7, name="COCO_val2014_000000000007.jpg", h=480, w=640) -> dict:
    return {"id": image_id, "file_name": name, "height": h, "width": w}


def _load(path, **kw):
    kw.setdefault("cache", False)
    kw.setdefault("progress", False)
    return load_salicon(path, **kw)


# ----------------------------------------------------------------------------- hand-made JSON


def test_json_rowcol_one_based_to_xy_zero_based(tmp_path):
    ann = {"image_id": 7, "worker_id": 3, "fixations": [[1, 1], [480, 640], [10, 20]]}
    fx = _load(_write_json(tmp_path / "f.json", _official([_image()], [ann])))
    assert list(fx) == ["COCO_val2014_000000000007"]
    f = fx["COCO_val2014_000000000007"]
    np.testing.assert_array_equal(f.points, [[0, 0], [639, 479], [19, 9]])
    assert f.points.dtype == np.float64 and f.observer.dtype == np.int64
    np.testing.assert_array_equal(f.observer, [3, 3, 3])
    assert (f.height, f.width, f.image_id) == (480, 640, 7)
    assert f.file_name == "COCO_val2014_000000000007.jpg"
    assert len(f) == 3 and f.n_observers == 1 and f.image_size == (480, 640)


def test_json_string_image_id_encoded_fixations_and_floats(tmp_path):
    anns = [
        {"image_id": "7", "worker_id": 1, "fixations": "[[2, 3], [4.5, 5.25]]"},
        {"image_id": 7, "worker_id": "2", "fixations": [[1.0, 2.0]]},
        {"image_id": " 7", "worker_id": 5, "fixations": "[]"},
    ]
    f = _load(_write_json(tmp_path / "f.json", _official([_image()], anns)))["COCO_val2014_000000000007"]
    np.testing.assert_array_equal(f.points, [[2, 1], [4.25, 3.5], [1, 0]])
    np.testing.assert_array_equal(f.observer, [1, 1, 2])
    assert f.n_observers == 2
    np.testing.assert_array_equal(f.of_observer(1), [[2, 1], [4.25, 3.5]])


def test_json_large_and_mixed_values_keep_precision(tmp_path):
    anns = [
        {"image_id": 7, "worker_id": 1, "fixations": [[40000, 70000], [1, 2]]},  # beyond int16
        {"image_id": 7, "worker_id": 2, "fixations": [[2, 3.75]]},
    ]
    data = _official([_image(h=50000, w=80000)], anns)
    f = _load(_write_json(tmp_path / "f.json", data))["COCO_val2014_000000000007"]
    np.testing.assert_array_equal(f.points, [[69999, 39999], [1, 0], [2.75, 1]])


def test_json_image_without_annotations_is_kept_empty(tmp_path):
    data = _official([_image(), _image(8, "b.jpg", 10, 20)], [])
    fx = _load(_write_json(tmp_path / "f.json", data))
    assert list(fx) == ["COCO_val2014_000000000007", "b"]
    assert fx["b"].points.shape == (0, 2) and fx["b"].image_size == (10, 20)


# ----------------------------------------------------------------------------- round trips


def _fixations(points, observer, h=480, w=640, **kw) -> Fixations:
    return Fixations(np.asarray(points, float).reshape(-1, 2), np.asarray(observer, np.int64), h, w, **kw)


def test_json_round_trip_exact_including_string_like_inputs(tmp_path):
    data = {
        "COCO_val2014_000000000042": _fixations([[0, 0], [639, 479], [1.5, 2.25]], [4, 4, 9]),
        "img_b": _fixations([[3, 4]], [1], h=20, w=30, file_name="img_b.png"),
        "img_c": _fixations([], [], h=5, w=6),
    }
    path = tmp_path / "out.json"
    save_salicon_json(path, data, image_ids={"img_b": 99})
    raw = json.loads(path.read_text())
    assert {im["id"] for im in raw["images"]} == {42, 99, 100}
    assert [a["worker_id"] for a in raw["annotations"]] == [4, 9, 1]
    assert raw["annotations"][2]["fixations"] == [[5, 4]]  # [row, col] 1-based, ints when integral
    back = _load(path)
    assert list(back) == list(data)
    for stem, fx in data.items():
        np.testing.assert_array_equal(back[stem].points, fx.points)
        np.testing.assert_array_equal(back[stem].observer, fx.observer)
        assert back[stem].image_size == fx.image_size
    assert back["img_b"].file_name == "img_b.png" and back["img_b"].image_id == 99
    assert back["COCO_val2014_000000000042"].image_id == 42


def test_json_writer_groups_points_by_observer(tmp_path):
    fx = _fixations([[1, 1], [2, 2], [3, 3], [4, 4]], [7, 5, 7, 5])
    save_salicon_json(tmp_path / "o.json", {"a": fx})
    back = _load(tmp_path / "o.json")["a"]
    np.testing.assert_array_equal(back.observer, [7, 7, 5, 5])
    np.testing.assert_array_equal(back.points, [[1, 1], [3, 3], [2, 2], [4, 4]])


def test_json_writer_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "keep.json"
    path.write_text("previous")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(salicon_module.json, "dumps", boom)
    with pytest.raises(RuntimeError):
        save_salicon_json(path, {"a": _fixations([[1, 1]], [0])})
    assert path.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_mat_round_trip_fixations_and_raw(tmp_path):
    fx = _fixations([[0, 0], [10.5, 20], [639, 479]], [0, 0, 1], file_name="x.jpg")
    raw = {0: np.array([[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]), 1: np.array([[1.0, 2.0]])}
    path = save_salicon_mat(tmp_path, "COCO_val2014_000000102625", fx, raw=raw)
    assert path == tmp_path / "COCO_val2014_000000102625.mat"
    back = _load(path)["COCO_val2014_000000102625"]
    np.testing.assert_array_equal(back.points, fx.points)
    np.testing.assert_array_equal(back.observer, [0, 0, 1])
    assert back.image_size == (480, 640) and back.image_id == 102625
    raw_back = _load(path, raw=True)["COCO_val2014_000000102625"]
    np.testing.assert_array_equal(raw_back.points, np.concatenate([raw[0], raw[1]]))
    np.testing.assert_array_equal(raw_back.observer, [0, 0, 0, 1])


def test_mat_directory_sorted_by_name_and_explicit_file_path(tmp_path):
    save_salicon_mat(tmp_path, "b", _fixations([[1, 2]], [0], h=10, w=10))
    save_salicon_mat(tmp_path / "a.mat", "a", _fixations([], [], h=10, w=10))
    (tmp_path / "notes.txt").write_text("ignored")
    fx = _load(tmp_path)
    assert list(fx) == ["a", "b"]
    assert len(fx["a"]) == 0 and fx["a"].image_id is None
    np.testing.assert_array_equal(fx["b"].points, [[1, 2]])


def test_mat_as_scipy_writes_it_with_squeezable_shapes(tmp_path):
    """A file written directly with scipy (one observer, one point, int values) still reads."""
    gaze = np.zeros((2, 1), dtype=[("location", object), ("timestamp", object), ("fixations", object)])
    gaze[0, 0] = (np.array([[3, 4]], dtype=np.uint16), np.array([[0]]), np.array([[3, 4]], dtype=np.uint16))
    gaze[1, 0] = (np.zeros((0, 2)), np.zeros((0, 1)), np.zeros((0, 0)))
    savemat(tmp_path / "s.mat", {"image": "s", "resolution": np.array([480, 640]), "gaze": gaze})
    f = _load(tmp_path / "s.mat")["s"]
    np.testing.assert_array_equal(f.points, [[2, 3]])
    np.testing.assert_array_equal(f.observer, [0])


xs = st.integers(0, 64 * 639).map(lambda v: v / 64)  # dyadic: exact through +1 / -1
ys = st.integers(0, 64 * 479).map(lambda v: v / 64)
point_sets = st.lists(st.tuples(xs, ys, st.integers(0, 5)), max_size=40)


@settings(max_examples=40, deadline=None)
@given(point_sets)
def test_hypothesis_round_trip_both_formats(rows):
    rows = sorted(rows, key=lambda r: r[2])  # writers group by observer; keep that order
    pts = np.array([[x, y] for x, y, _ in rows], dtype=float).reshape(-1, 2)
    observer = np.array([o for *_, o in rows], dtype=np.int64)
    fx = Fixations(pts, observer, 480, 640)
    with tempfile.TemporaryDirectory() as tmp:
        save_salicon_json(Path(tmp) / "f.json", {"COCO_1": fx})
        back = _load(Path(tmp) / "f.json")["COCO_1"]
        np.testing.assert_array_equal(back.points, pts)
        np.testing.assert_array_equal(back.observer, observer)
        save_salicon_mat(tmp, "COCO_1", fx)
        back = _load(Path(tmp) / "COCO_1.mat")["COCO_1"]
        np.testing.assert_array_equal(back.points, pts)
        dense = np.unique(observer, return_inverse=True)[1]  # .mat numbers observers 0, 1, ...
        np.testing.assert_array_equal(back.observer, dense)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 639.99), st.floats(0, 479.99)), min_size=1, max_size=20))
def test_hypothesis_json_round_trip_arbitrary_floats_within_rounding(xy):
    pts = np.array(xy, dtype=float)
    fx = Fixations(pts, np.zeros(len(pts), np.int64), 480, 640)
    with tempfile.TemporaryDirectory() as tmp:
        save_salicon_json(Path(tmp) / "f.json", {"a": fx})
        back = _load(Path(tmp) / "f.json")["a"]
    assert len(back) == len(pts)
    np.testing.assert_allclose(back.points, pts, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------- shipped examples


def test_examples_counts_and_coordinate_ranges():
    raw = json.loads(EXAMPLES_JSON.read_text())
    anns_per_image = Counter(a["image_id"] for a in raw["annotations"])
    points_per_image = Counter()
    for a in raw["annotations"]:
        points_per_image[a["image_id"]] += len(a["fixations"])
    fx = load_salicon_examples()
    assert len(fx) == 10 and len(raw["annotations"]) == 610
    assert sum(len(f) for f in fx.values()) == 73630
    for stem, f in fx.items():
        assert stem == Path(f.file_name).stem and stem.startswith("COCO_train2014_")
        assert f.n_observers == anns_per_image[f.image_id]
        assert len(f) == points_per_image[f.image_id]
        x, y = f.points[:, 0], f.points[:, 1]
        assert (x >= 0).all() and (x < f.width).all() and (y >= 0).all() and (y < f.height).all()
    first = fx["COCO_train2014_000000123855"]
    # the file's first annotation starts with [row, col] = [242, 314]
    np.testing.assert_array_equal(first.points[0], [313, 241])
    assert first.observer[0] == raw["annotations"][0]["worker_id"]


# ----------------------------------------------------------------------------- malformed inputs


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (_official([{"id": 7, "file_name": "a.jpg", "width": 640}], []), "'height'"),
        ({"images": [_image()]}, "'annotations'"),
        (_official([_image()], [{"image_id": 7, "worker_id": 1}]), "'fixations'"),
        (_official([_image()], [{"image_id": 7, "fixations": []}]), "'worker_id'"),
        (_official([_image()], [{"image_id": 7, "worker_id": 1, "fixations": [["a", "b"]]}]), "fixations"),
        (_official([_image()], [{"image_id": 7, "worker_id": 1, "fixations": [[1, None]]}]), "fixations"),
        (_official([_image()], [{"image_id": 7, "worker_id": 1, "fixations": [[1, 2, 3]]}]), "fixations"),
        (_official([_image()], [{"image_id": 7, "worker_id": 1, "fixations": [[1], [2, 3]]}]), "fixations"),
        (_official([_image()], [{"image_id": 7, "worker_id": 1, "fixations": "[[1, 2]"}]), "fixations"),
        (_official([_image()], [{"image_id": 7, "worker_id": 1, "fixations": 5}]), "fixations"),
        (
            _official([_image()], [{"image_id": 7, "worker_id": 1, "fixations": [[1, float("nan")]]}]),
            "fixations",
        ),
        (_official([_image()], [{"image_id": 8, "worker_id": 1, "fixations": []}]), "image_id"),
        (_official([_image()], [{"image_id": "x7", "worker_id": 1, "fixations": []}]), "image_id"),
        (_official([_image(), _image()], []), "images[1].id"),
        (_official([_image(h=0)], []), "images[0]"),
    ],
)
def test_malformed_json_names_file_and_field(tmp_path, data, field):
    path = _write_json(tmp_path / "bad.json", data)
    with pytest.raises(SaliconFormatError) as err:
        _load(path, cache=tmp_path / "cache")
    assert str(path) in str(err.value) and field in str(err.value)
    assert not any((tmp_path / "cache").iterdir())  # nothing cached from a failed parse


def test_malformed_json_field_index_is_reported(tmp_path):
    anns = [
        {"image_id": 7, "worker_id": 1, "fixations": [[1, 1]]},
        {"image_id": 7, "worker_id": 2, "fixations": [["oops", 1]]},
    ]
    with pytest.raises(SaliconFormatError, match=r"annotations\[1\]\.fixations"):
        _load(_write_json(tmp_path / "bad.json", _official([_image()], anns)))


def test_bad_json_text_and_missing_file(tmp_path):
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(SaliconFormatError, match="broken.json.*not valid JSON"):
        _load(tmp_path / "broken.json")
    (tmp_path / "latin1.json").write_bytes(b'{"images": [], "annotations": [], "info": "\xff"}')
    with pytest.raises(SaliconFormatError, match="latin1.json"):
        _load(tmp_path / "latin1.json")
    with pytest.raises(FileNotFoundError):
        _load(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="raw=True"):
        _load(EXAMPLES_JSON, raw=True)


def test_malformed_mat_files(tmp_path):
    savemat(tmp_path / "nogaze.mat", {"resolution": np.array([480, 640])})
    with pytest.raises(SaliconFormatError, match="nogaze.mat.*'gaze'"):
        _load(tmp_path / "nogaze.mat")
    gaze = np.zeros((1, 1), dtype=[("location", object), ("timestamp", object), ("fixations", object)])
    gaze[0, 0] = (np.zeros((0, 2)), np.zeros((0, 1)), np.array([[1.0, 2.0, 3.0]]))
    savemat(tmp_path / "shape.mat", {"resolution": np.array([480, 640]), "gaze": gaze})
    with pytest.raises(SaliconFormatError, match=r"shape.mat.*gaze\(1\)\.fixations"):
        _load(tmp_path / "shape.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(SaliconFormatError, match="junk.mat"):
        _load(tmp_path / "junk.mat")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(SaliconFormatError, match="no .mat files"):
        _load(empty)


# ----------------------------------------------------------------------------- out-of-image points


def test_out_of_image_points_dropped_with_one_warning(tmp_path):
    anns = [
        # rows/cols 1-based: 0 -> -1 (out), 481 -> 480 (out for h=480), 640 -> 639 (in)
        {"image_id": 7, "worker_id": 1, "fixations": [[0, 5], [5, 5], [481, 1], [480, 640]]},
        {"image_id": 8, "worker_id": 1, "fixations": [[1, 11], [2, 2]]},  # w=10: col 11 -> x=10 out
        {"image_id": 8, "worker_id": 2, "fixations": [[-3, -3]]},
    ]
    path = _write_json(tmp_path / "f.json", _official([_image(), _image(8, "b.jpg", 10, 10)], anns))
    for cache in (tmp_path / "cache", tmp_path / "cache"):  # cold, then cached: same warning
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fx = load_salicon(path, cache=cache, progress=False)
        dropped = [w for w in caught if issubclass(w.category, SaliconPointsDroppedWarning)]
        assert len(dropped) == 1 and "dropped 4 point" in str(dropped[0].message)
        np.testing.assert_array_equal(fx["COCO_val2014_000000000007"].points, [[4, 4], [639, 479]])
        np.testing.assert_array_equal(fx["b"].points, [[1, 1]])
        np.testing.assert_array_equal(fx["b"].observer, [1])


def test_no_warning_when_everything_is_inside():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SaliconPointsDroppedWarning)
        load_salicon_examples()


# ----------------------------------------------------------------------------- cache


def _assert_same(a: dict[str, Fixations], b: dict[str, Fixations]) -> None:
    assert list(a) == list(b)
    for stem in a:
        np.testing.assert_array_equal(a[stem].points, b[stem].points)
        np.testing.assert_array_equal(a[stem].observer, b[stem].observer)
        assert a[stem].points.dtype == b[stem].points.dtype == np.float64
        assert (a[stem].image_size, a[stem].image_id, a[stem].file_name) == (
            b[stem].image_size,
            b[stem].image_id,
            b[stem].file_name,
        )


def test_cache_returns_identical_arrays_without_parsing(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    fresh = load_salicon(EXAMPLES_JSON, cache=cache, progress=False)
    assert len(list(cache.glob("*.npz"))) == 1

    def must_not_parse(*args, **kwargs):
        raise AssertionError("parsed again despite a valid cache entry")

    monkeypatch.setattr(salicon_module, "_parse_json", must_not_parse)
    cached = load_salicon(EXAMPLES_JSON, cache=cache, progress=False)
    _assert_same(fresh, cached)


def test_cache_invalidated_when_source_changes(tmp_path):
    src = tmp_path / "f.json"
    cache = tmp_path / "cache"
    save_salicon_json(src, {"a": _fixations([[1, 2]], [0])})
    assert len(load_salicon(src, cache=cache, progress=False)["a"]) == 1
    st_before = src.stat()
    save_salicon_json(src, {"a": _fixations([[1, 2], [3, 4]], [0, 1])})
    os.utime(src, ns=(st_before.st_atime_ns, st_before.st_mtime_ns + 10**9))
    again = load_salicon(src, cache=cache, progress=False)["a"]
    np.testing.assert_array_equal(again.points, [[1, 2], [3, 4]])
    assert len(list(cache.glob("*.npz"))) == 1  # the stale entry was replaced, not accumulated
    # same size, different content and mtime -> still rebuilt
    save_salicon_json(src, {"a": _fixations([[5, 6], [7, 8]], [0, 1])})
    os.utime(src, ns=(st_before.st_atime_ns, st_before.st_mtime_ns + 2 * 10**9))
    np.testing.assert_array_equal(
        load_salicon(src, cache=cache, progress=False)["a"].points, [[5, 6], [7, 8]]
    )


def test_cache_for_mat_directory_sees_new_files(tmp_path):
    data, cache = tmp_path / "mats", tmp_path / "cache"
    save_salicon_mat(data, "a", _fixations([[1, 1]], [0]))
    assert list(load_salicon(data, cache=cache, progress=False)) == ["a"]
    save_salicon_mat(data, "b", _fixations([[2, 2]], [0]))
    assert list(load_salicon(data, cache=cache, progress=False)) == ["a", "b"]
    raw = load_salicon(data, raw=True, cache=cache, progress=False)  # separate entry for raw
    assert list(raw) == ["a", "b"] and len(list(cache.glob("*.npz"))) == 2


def test_corrupt_cache_entry_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    fresh = load_salicon(EXAMPLES_JSON, cache=cache, progress=False)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"garbage")
    _assert_same(fresh, load_salicon(EXAMPLES_JSON, cache=cache, progress=False))
    assert entry.stat().st_size > 1000


def test_cache_true_uses_the_configured_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SALRANK_CACHE", str(tmp_path / "root"))
    load_salicon(EXAMPLES_JSON, progress=False)
    assert len(list((tmp_path / "root" / "salicon").glob("*.npz"))) == 1


def test_benchmark_load_reports_consistent_numbers(tmp_path):
    result = benchmark_load(n_images=3, points_per_image=50, observers=4, workdir=tmp_path)
    assert result["n_images"] == 3 and result["n_points"] == 150
    assert result["json_mb"] > 0 and result["cache_mb"] > 0
    assert result["speedup"] == pytest.approx(result["parse_s"] / result["cached_s"])
    assert list(tmp_path.iterdir()) == []  # temp files cleaned up


@pytest.mark.parametrize(
    "points",
    [
        [[0.1, 0.2], [639.9, 479.7], [1 / 3, 2 / 3]],  # non-integral: stored as float64
        [[0, 0], [639, 479], [300, 200]],  # integral: stored compactly, read back exactly
    ],
)
def test_cache_is_exact_for_integral_and_fractional_points(tmp_path, points):
    src, cache = tmp_path / "f.mat", tmp_path / "cache"
    fx = _fixations(points, [0, 70_000, 70_000])
    save_salicon_mat(src, "f", fx)
    first = load_salicon(src, cache=cache, progress=False)
    second = load_salicon(src, cache=cache, progress=False)
    _assert_same(first, second)
    np.testing.assert_allclose(second["f"].points, fx.points, rtol=0, atol=1e-12)  # 1-based storage
    assert second["f"].observer.dtype == np.int64
