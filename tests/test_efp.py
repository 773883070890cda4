"""salrank.analysis.efp: EFP map sources, map folders and the Fig. 9 curves (SRCC/F1 vs lambda)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from salrank.analysis.efp import (
    DEFAULT_LAMS,
    LazyMaps,
    best_lambda,
    centre_bias_map,
    centre_bias_maps,
    compare_efp_models,
    efp_binary_map,
    efp_curves,
    fixation_maps,
    load_map_folder,
    load_unisal_or_random,
    read_map,
    save_map_folder,
    unisal_maps,
)
from salrank.data import Fixations
from salrank.data.scenes import SceneSet
from salrank.gt import efp_ranks

# A 100 x 100 image with three 30 x 30 boxes in a row; 30, 20 and 10 distinct fixated pixels in
# them, so RA-SRGT (equal sizes) ranks them A = 1, B = 2, C = 3 at every gamma.
H = W = 100
BOXES = np.array([[0, 0, 30, 30], [35, 0, 65, 30], [70, 0, 100, 30]], dtype=float)


def _points() -> np.ndarray:
    pts = []
    for (x1, _, _, _), n in zip(BOXES, (30, 20, 10), strict=True):
        pts += [(x1 + 2 + (i % 10) * 2, 2 + (i // 10) * 5) for i in range(n)]
    return np.asarray(pts, dtype=float)


def _scene_set(extra: dict | None = None) -> SceneSet:
    pts = _points()
    fixations = {"s": Fixations(points=pts, observer=np.zeros(len(pts), np.int64), height=H, width=W)}
    boxes = {"s": BOXES}
    for stem, (p, b) in (extra or {}).items():
        fixations[stem] = Fixations(points=p, observer=np.zeros(len(p), np.int64), height=H, width=W)
        boxes[stem] = b
    return SceneSet(name="toy", split="all", fixations=fixations, images={}, boxes=boxes)


def _block_map(c_rows: int = 10) -> np.ndarray:
    """1 over all of box A, the top half (15 rows) of box B and the top ``c_rows`` rows of box C."""
    m = np.zeros((H, W))
    m[0:30, 0:30] = 1
    m[0:15, 35:65] = 1
    m[0:c_rows, 70:100] = 1
    return m


def _row(df: pd.DataFrame, gamma: float, lam: float) -> pd.Series:
    sel = df[np.isclose(df["gamma"], gamma) & np.isclose(df["lambda"], lam)]
    assert len(sel) == 1
    return sel.iloc[0]


# --------------------------------------------------------------------------- centre_bias_map


def test_centre_bias_peak_at_centre_and_normalised():
    m = centre_bias_map((5, 7))
    assert m.shape == (5, 7)
    assert m.max() == pytest.approx(1.0)
    assert np.unravel_index(m.argmax(), m.shape) == (2, 3)
    # even sizes: the four central pixels share the peak
    e = centre_bias_map((4, 6), sigma_frac=0.3)
    assert np.allclose(e[1:3, 2:4], 1.0)
    assert (e[0, 0] < e[1, 1] < 1.0)
    # hand value: pixel (0, 3) of (5, 7) is 2 rows (y = 0.5 vs 2.5) above the centre, sigma_y = 1.25
    assert m[0, 3] == pytest.approx(np.exp(-0.5 * (2 / 1.25) ** 2))


def test_centre_bias_wider_sigma_is_flatter():
    assert centre_bias_map((20, 30), 0.5)[0, 0] > centre_bias_map((20, 30), 0.1)[0, 0]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.floats(0.05, 2.0))
def test_centre_bias_properties(h, w, frac):
    m = centre_bias_map((h, w), frac)
    assert m.shape == (h, w)
    assert m.max() == pytest.approx(1.0)
    assert (m > 0).all() and (m <= 1.0 + 1e-12).all()
    assert np.allclose(m, m[::-1, :]) and np.allclose(m, m[:, ::-1])


@pytest.mark.parametrize("size, frac", [((0, 5), 0.25), ((5,), 0.25), ((5, 5), 0.0), ((5, 5), float("nan"))])
def test_centre_bias_bad_input(size, frac):
    with pytest.raises(ValueError):
        centre_bias_map(size, frac)


def test_centre_bias_maps_follow_image_sizes():
    ss = _scene_set()
    maps = centre_bias_maps(ss, 0.2)
    assert list(maps) == ["s"]
    assert np.array_equal(maps["s"], centre_bias_map((H, W), 0.2))
    with pytest.raises(KeyError):
        centre_bias_maps(ss, stems=["nope"])


# --------------------------------------------------------------------------- LazyMaps


def test_lazy_maps_compute_on_access_and_cache():
    calls = []

    def compute(stem):
        calls.append(stem)
        return np.full((2, 2), len(calls), float)

    plain = LazyMaps(["a", "b", "a"], compute)
    assert list(plain) == ["a", "b"] and len(plain) == 2 and calls == []
    plain["a"], plain["a"]
    assert calls == ["a", "a"]
    with pytest.raises(KeyError):
        plain["zzz"]
    calls.clear()
    cached = LazyMaps(["a"], compute, cache=True)
    first = cached["a"]
    assert cached["a"] is first and calls == ["a"]


# --------------------------------------------------------------------------- map folders


def test_map_folder_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    maps = {"img_a": rng.uniform(0, 3, (12, 17)), "img_b": np.zeros((5, 4)), "img_c": rng.uniform(0, 1, (8, 8, 3))}
    save_map_folder(maps, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["img_a.png", "img_b.png", "img_c.png"]
    loaded = load_map_folder(tmp_path / "m")
    assert list(loaded) == ["img_a", "img_b", "img_c"]
    a = loaded["img_a"]
    assert a.shape == (12, 17) and a.max() == pytest.approx(1.0)
    assert np.abs(a - maps["img_a"] / maps["img_a"].max()).max() <= 0.5 / 255 + 1e-12
    assert np.array_equal(loaded["img_b"], np.zeros((5, 4)))
    luma = maps["img_c"] @ np.array([0.299, 0.587, 0.114])
    assert np.abs(loaded["img_c"] - luma / luma.max()).max() <= 0.5 / 255 + 1e-12


def test_read_map_bit_depths_and_colour(tmp_path):
    Image.fromarray(np.array([[0, 65535], [32768, 0]], np.uint16)).save(tmp_path / "deep.png")
    assert np.allclose(read_map(tmp_path / "deep.png"), [[0, 1], [32768 / 65535, 0]])
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    assert read_map(tmp_path / "colour.png")[0, 0] == pytest.approx(0.299)
    Image.fromarray(np.full((4, 4), 128, np.uint8)).save(tmp_path / "grey.jpg")
    assert np.allclose(read_map(tmp_path / "grey.jpg"), 128 / 255, atol=2 / 255)


def test_map_folder_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_map_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a map")
    with pytest.raises(ValueError, match="no saliency maps"):
        load_map_folder(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(bad / "ok.png")
    (bad / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="broken.png"):
        load_map_folder(bad)
    lazy = load_map_folder(bad, validate=False)  # fails only when the broken map is read
    assert lazy["ok"].shape == (3, 3)
    with pytest.raises(ValueError, match="broken.png"):
        lazy["broken"]
    dup = tmp_path / "dup"
    dup.mkdir()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(dup / "x.png")
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(dup / "x.jpg")
    with pytest.raises(ValueError, match="share the image stem"):
        load_map_folder(dup)
    with pytest.raises(FileNotFoundError):
        read_map(tmp_path / "none.png")


def test_save_map_folder_rejects_bad_maps(tmp_path):
    with pytest.raises(ValueError, match="'neg'"):
        save_map_folder({"neg": -np.ones((2, 2))}, tmp_path)
    with pytest.raises(ValueError, match="'nan'"):
        save_map_folder({"nan": np.full((2, 2), np.nan)}, tmp_path)
    with pytest.raises(ValueError, match="plain file stem"):
        save_map_folder({"../up": np.ones((2, 2))}, tmp_path)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- efp_curves


def test_efp_curves_perfect_map_hand_case():
    # box means of the map: A 1, B 0.5, C 1/3 -> eq. 12 threshold T = 0.6111 / lambda.
    # lambda >= 0.7: T < 1, white = the ones: counts 900, 450, 300 -> ranks 1, 2, 3 = GT: SRCC 1, F1 1.
    # lambda <= 0.6: T > 1, nothing is white -> all rank 0: SRCC 0 (constant prediction), F1 0.
    curves = efp_curves({"s": _block_map()}, _scene_set(), gammas=(0.1, 0.8), lams=DEFAULT_LAMS, model="blocks")
    assert list(curves.columns) == ["model", "gamma", "lambda", "srcc", "f1", "n_images", "n_constant_gt"]
    assert len(curves) == 2 * len(DEFAULT_LAMS)
    assert (curves["model"] == "blocks").all() and (curves["n_images"] == 1).all()
    for gamma in (0.1, 0.8):
        for lam in (0.7, 0.8, 1.0):
            row = _row(curves, gamma, lam)
            assert row["srcc"] == pytest.approx(1.0) and row["f1"] == pytest.approx(1.0)
        for lam in (0.1, 0.6):
            row = _row(curves, gamma, lam)
            assert row["srcc"] == 0.0 and row["f1"] == 0.0


def test_efp_curves_rank_zero_counts_as_a_class():
    # C has no white pixel: pred ranks 1, 2, 0 vs GT 1, 2, 3 -> values 3, 2, 0 vs 3, 2, 1:
    # SRCC 1 (same order); F1 over classes {0, 1, 2, 3} = (0 + 0 + 1 + 1) / 4 = 0.5.
    curves = efp_curves({"s": _block_map(c_rows=0)}, _scene_set(), gammas=(0.2,), lams=(1.0,))
    assert curves.loc[0, "srcc"] == pytest.approx(1.0)
    assert curves.loc[0, "f1"] == pytest.approx(0.5)
    # the official-code classes give every box a distinct class: C is still last -> F1 1
    classes = efp_curves({"s": _block_map(c_rows=0)}, _scene_set(), gammas=(0.2,), lams=(1.0,), protocol="classes")
    assert classes.loc[0, "srcc"] == pytest.approx(1.0) and classes.loc[0, "f1"] == pytest.approx(1.0)
    # "acb" is the default, named as on the FOSRNet pages; "ranks" is its old name
    for name in ("acb", "ranks"):
        again = efp_curves({"s": _block_map(c_rows=0)}, _scene_set(), gammas=(0.2,), lams=(1.0,), protocol=name)
        assert again.loc[0, "f1"] == pytest.approx(0.5)


def test_efp_curves_fixation_map_is_perfect_here():
    # sigma 0: the binary fixation map; box means 30/900, 20/900, 10/900 -> T = (60/2700)/lambda < 1:
    # white = the fixated pixels, counts 30, 20, 10 = GT order at every lambda.
    curves = efp_curves(fixation_maps(_scene_set(), sigma=0), _scene_set())
    assert np.allclose(curves["srcc"], 1.0) and np.allclose(curves["f1"], 1.0)


def test_efp_curves_resizes_maps_and_skips_or_raises_on_missing():
    half = _block_map()[::2, ::2]  # 50 x 50: resized bilinearly to 100 x 100
    other = (np.array([[5.0, 5.0], [6.0, 6.0]]), np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float))
    ss = _scene_set({"t": other})
    with pytest.raises(KeyError, match="'t'"):
        efp_curves({"s": half}, ss, gammas=(0.2,), lams=(1.0,))
    curves = efp_curves({"s": half}, ss, gammas=(0.2,), lams=(1.0,), missing="skip")
    assert curves.loc[0, "n_images"] == 1 and curves.loc[0, "srcc"] == pytest.approx(1.0)


def test_efp_curves_constant_gt_excluded_from_srcc():
    # image "t": one box with fixations, one without -> GT ranks 1, 0 (not constant);
    # image "u": a single box -> constant GT, left out of the SRCC mean and counted.
    t = (np.array([[5.0, 5.0]]), np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float))
    u = (np.array([[5.0, 5.0]]), np.array([[0, 0, 10, 10]], float))
    ss = _scene_set({"t": t, "u": u})
    m = np.zeros((H, W))
    m[0:10, 0:10] = 1
    maps = {"s": _block_map(), "t": m, "u": m}
    curves = efp_curves(maps, ss, gammas=(0.2,), lams=(1.0,))
    row = curves.iloc[0]
    assert row["n_images"] == 3 and row["n_constant_gt"] == 1
    assert row["srcc"] == pytest.approx(1.0)  # s and t are perfect


def test_efp_binary_map_is_what_eq12_counts():
    m = _block_map() * 0.9 + 0.05  # a gradient of scale: T = (0.95 + 0.5 + 0.35) / 3 / lam
    white, threshold = efp_binary_map(m, BOXES, 1.0)
    assert threshold == pytest.approx((0.95 + (0.95 + 0.05) / 2 + (0.95 + 2 * 0.05) / 3) / 3)
    assert np.array_equal(white, m > threshold)
    scores, _ = efp_ranks(m, BOXES, 0.8)
    white, _ = efp_binary_map(m, BOXES, 0.8)
    counts = [white[int(y1):int(y2), int(x1):int(x2)].sum() for x1, y1, x2, y2 in BOXES]
    assert np.array_equal(scores, counts)
    with pytest.raises(ValueError):
        efp_binary_map(m, BOXES, 0.0)
    with pytest.raises(ValueError):
        efp_binary_map(m, BOXES, 1.0, normalise="sqrt")


@pytest.mark.parametrize("kwargs, err", [
    ({"lams": (0.0,)}, ValueError), ({"lams": (1.5,)}, ValueError), ({"protocol": "x"}, ValueError),
    ({"nan_policy": "drop"}, ValueError), ({"missing": "x"}, ValueError), ({"gammas": ()}, ValueError),
    ({"stems": ["nope"]}, KeyError),
])
def test_efp_curves_bad_arguments(kwargs, err):
    with pytest.raises(err):
        efp_curves({"s": _block_map()}, _scene_set(), **kwargs)


def test_efp_curves_bad_map_names_the_image():
    with pytest.raises(ValueError, match="'s'"):
        efp_curves({"s": np.full((H, W), np.nan)}, _scene_set(), lams=(1.0,))


def test_compare_and_best_lambda():
    ss = _scene_set()
    curves = compare_efp_models({"blocks": {"s": _block_map()}, "flat": {"s": np.ones((H, W))}}, ss,
                                gammas=(0.2,))
    assert list(curves.columns[:2]) == ["dataset", "model"]
    assert set(curves["dataset"]) == {"toy/all"} and set(curves["model"]) == {"blocks", "flat"}
    best = best_lambda(curves)
    assert len(best) == 2
    blocks = best[best["model"] == "blocks"].iloc[0]
    assert blocks["lambda"] == pytest.approx(0.7) and blocks["srcc"] == pytest.approx(1.0)  # smallest best
    with pytest.raises(ValueError):
        best_lambda(curves, metric="auc")
    with pytest.raises(ValueError):
        compare_efp_models({}, ss)


# --------------------------------------------------------------------------- UNISAL


def test_unisal_fallback_and_maps(tmp_path):
    model, note = load_unisal_or_random(weights=tmp_path / "missing.pth", device="cpu", seed=3)
    assert note is not None and "random weights" in note and "seed 3" in note
    again, _ = load_unisal_or_random(device="cpu", seed=3, pretrained=False)
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())
    rng = np.random.default_rng(0)
    path = tmp_path / "im.png"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    fx = Fixations(points=np.array([[3.0, 4.0]]), observer=np.zeros(1, np.int64), height=48, width=64)
    ss = SceneSet(name="tiny", split="all", fixations={"im": fx}, images={"im": path},
                  boxes={"im": np.array([[0, 0, 32, 24], [32, 24, 64, 48]], float)})
    maps = unisal_maps(model, ss, cache=True)
    m = maps["im"]
    assert m.shape == (48, 64) and m.sum() == pytest.approx(1.0, rel=1e-4)
    assert maps["im"] is m
    curves = efp_curves(maps, ss, gammas=(0.2,), lams=(0.5, 1.0), model="unisal")
    assert curves["n_images"].tolist() == [1, 1] and curves["f1"].between(0, 1).all()
