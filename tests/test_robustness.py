"""Bad input, faults and interruptions: every failure a clear one-line error (exit 2) or a defined
result; damaged caches rebuilt; nothing half-written; random-weight runs reproducible."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from salrank.cache import CacheEntryWarning, read_cache_entry
from salrank.cli import main
from salrank.data import salicon_examples_dir
from salrank.errors import InvalidOptionError, UserFacingError, check_number

EXAMPLES = salicon_examples_dir()
REPO = Path(__file__).resolve().parents[1]


def _run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m salrank ARGS`` in a subprocess (the package from this checkout)."""
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               **(env or {})}
    return subprocess.run([sys.executable, "-m", "salrank", *args], capture_output=True, text=True,
                          env=environ, timeout=timeout)


def _one_line_error(err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line, no traceback
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr("salrank.weights._reachable", lambda url, timeout=0: False)


def _image(path: Path, size=(48, 64), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


# ------------------------------------------------------------------ 7. a light command line


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["info"], ["weights", "list", "--no-hash"]])
def test_light_commands_import_nothing_heavy(args):
    code = ("import sys\nfrom salrank.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'torchvision', 'effdet', 'pandas', 'matplotlib', 'scipy') "
            "if m in sys.modules]\nprint('HEAVY', heavy, file=sys.stderr)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr, proc.stderr


def test_version_answers_fast():
    _run_cli("--version")  # warm the file cache
    start = time.perf_counter()
    proc = _run_cli("--version")
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0 and proc.stdout.startswith("salrank ")
    assert elapsed < 2.0, f"salrank --version took {elapsed:.2f} s"  # ~0.1 s; generous for a loaded CI machine
    imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "salrank", "--version"],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(REPO)}).stderr
    assert "salrank.cli" in imports and " torch\n" not in imports and "| torch" not in imports


def test_help_lists_every_command_and_command_help_is_full(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("gt", "proposals", "rank", "train", "eval", "weights", "info"):
        assert f"    {name}" in out
    with pytest.raises(SystemExit):
        main(["gt", "--help"])
    assert "--threshold" in capsys.readouterr().out


def test_weights_list_shows_the_expected_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tmp_path / "w"))
    assert main(["weights", "list", "--no-hash"]) == 0
    out = capsys.readouterr().out
    assert f"missing (put it at {tmp_path / 'w' / 'unisal_weights_best.pth'})" in out
    assert main(["weights", "list", "--no-hash", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["expected"] == str(tmp_path / "w" / r["file"]) for r in rows)


def test_hub_dir_without_torch_follows_torchs_rule(monkeypatch, tmp_path):
    import torch.hub

    from salrank import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    expected = Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.delitem(sys.modules, "torch.hub")  # as in a process that never imported torch
    assert weights._hub_checkpoint_dir() == expected == tmp_path / "th" / "hub" / "checkpoints"


# ------------------------------------------------------------------ 3. numeric options


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10), st.floats(-10, 10))
def test_check_number_accepts_exactly_the_finite_values_in_range(value, a, b):
    low, high = min(a, b), max(a, b)
    inside = math.isfinite(value) and low <= value <= high
    try:
        assert check_number("opt", value, low, high) == value and inside
    except InvalidOptionError as exc:
        assert not inside and str(exc).startswith("opt must be in [")


@pytest.mark.parametrize("value", ["nan", "5", "-0.1", "1", "inf"])
def test_gt_threshold_out_of_range_is_refused(value, tmp_path, capsys):
    out = tmp_path / "gt.json"
    code = main(["gt", "--fixations", str(EXAMPLES / "fixations.json"), "--boxes", str(EXAMPLES / "boxes.json"),
                 "--method", "binary-map", "--threshold", value, "--out", str(out)])
    assert code == 2 and not out.exists()
    _one_line_error(capsys.readouterr().err, "--threshold", "[0.0, 1.0)")


@pytest.mark.parametrize("option,value,needle", [("--gamma", "-1", "--gamma"), ("--beta", "nan", "--beta"),
                                                 ("--sigma", "-2", "--sigma")])
def test_gt_other_options_are_checked(option, value, needle, tmp_path, capsys):
    method = "map-max" if option == "--sigma" else "ra-srgt"
    code = main(["gt", "--fixations", str(EXAMPLES / "fixations.json"), "--boxes", str(EXAMPLES / "boxes.json"),
                 "--method", method, option, value, "--out", str(tmp_path / "gt.json")])
    assert code == 2
    _one_line_error(capsys.readouterr().err, needle)


def test_api_validates_too():
    from salrank.data import load_salicon_examples
    from salrank.gt import rank_objects, relabel_dataset
    from salrank.proposals import filter_proposals

    fixations = load_salicon_examples()
    stem = next(iter(fixations))
    boxes = {stem: np.array([[10.0, 10.0, 100.0, 100.0]])}
    with pytest.raises(InvalidOptionError, match=r"threshold must be in \[0.0, 1.0\), got nan"):
        relabel_dataset(fixations, boxes, method="binary-map", threshold=float("nan"), cache=False, progress=False)
    with pytest.raises(ValueError, match="sigma"):
        rank_objects(fixations[stem].points, boxes[stem], fixations[stem].image_size, method="map-avg", sigma=-1)
    for bad in ({"iou_threshold": float("nan")}, {"iou_threshold": 1.5}, {"top_n": 0}, {"top_n": 2.5},
                {"max_area_frac": 0.0}, {"min_area": -1.0}, {"min_area_frac": 2.0}):
        with pytest.raises(InvalidOptionError, match=next(iter(bad))):
            filter_proposals(np.zeros((1, 4)), np.ones(1), (10, 10), **bad)


def test_proposals_options_checked_before_any_work(tmp_path, capsys):
    folder = tmp_path / "img"
    folder.mkdir()
    _image(folder / "a.png")
    for args, needle in ((["--iou-threshold", "2"], "--iou-threshold"), (["--top-n", "0"], "--top-n"),
                         (["--score-threshold", "nan"], "--score-threshold"), (["--max-side", "-1"], "--max-side"),
                         (["--seed", "-3"], "--seed")):
        code = main(["proposals", "--detector", "efficientdet_d0", "--random-init", "--images", str(folder),
                     "--out", str(tmp_path / "p.json"), "--quiet", *args])
        assert code == 2
        _one_line_error(capsys.readouterr().err, needle)
    assert not (tmp_path / "p.json.partial.jsonl").exists()


# ------------------------------------------------------------------ 1. damaged caches


def test_damaged_fixations_cache_is_rebuilt_by_every_later_run(tmp_path, capsys):
    cache = Path(os.environ["SALRANK_CACHE"]) / "salicon"
    out = tmp_path / "gt.json"
    args = ["gt", "--fixations", str(EXAMPLES / "fixations.json"), "--boxes", str(EXAMPLES / "boxes.json"),
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    reference = out.read_bytes()
    entries = sorted(cache.glob("fixations-*.npz"))
    assert entries
    for entry in entries:
        data = entry.read_bytes()
        entry.write_bytes(data[: len(data) // 2])  # cut to half its length
    out.unlink()
    with pytest.warns(CacheEntryWarning, match="parsed-fixations cache"):
        assert main(args) == 0
    assert out.read_bytes() == reference
    assert main(args) == 0 and out.read_bytes() == reference  # and the rebuilt entry is good


def test_read_cache_entry_discards_files_and_folders(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"a": 1}')
    assert read_cache_entry(good, lambda p: json.loads(p.read_text())) == {"a": 1}
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": ')
    with pytest.warns(CacheEntryWarning, match="bad.json"):
        assert read_cache_entry(bad, lambda p: json.loads(p.read_text())) is None
    assert not bad.exists()
    folder = tmp_path / "entry"
    folder.mkdir()
    (folder / "x.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.warns(CacheEntryWarning):
        assert read_cache_entry(folder, lambda p: np.load(p / "x.npy")) is None
    assert not folder.exists()
    assert read_cache_entry(tmp_path / "missing", lambda p: 1 / 0) is None  # missing: no warning, no call


def test_damaged_feature_store_is_discarded_and_rebuilt(tmp_path):
    from salrank.fosrnet.features import FIELDS, FeatureStore

    rng = np.random.default_rng(0)
    widths = {"local": 192, "global": 192, "appearance": 8, "centers": 2, "boxes": 4, "geometry": None}
    per_image = []
    for n in (3, 2):
        d = {}
        for key in FIELDS:
            w = widths.get(key)
            d[key] = rng.random((n,) if w is None else (n, w)).astype(np.float32)
        per_image.append(d)
    store = FeatureStore.from_images(per_image, ["a", "b"], [(10, 20), (30, 40)], {"m": 1}, appearance_dim=8)
    path = store.save(tmp_path / "feat")
    assert read_cache_entry(path, FeatureStore.load).stems == ["a", "b"]
    target = path / f"{FIELDS[0]}.npy"
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.warns(CacheEntryWarning, match="feature cache"):
        assert read_cache_entry(path, FeatureStore.load, what="feature cache") is None
    assert not path.exists()


def test_damaged_sample_dataset_is_regenerated(tmp_path, monkeypatch):
    from salrank.config import get_settings
    from salrank.data import synthsal

    monkeypatch.setattr(synthsal.dataset, "SAMPLE_SPLITS", {"train": 3, "val": 2, "test": 2})
    settings = get_settings(cache_dir=tmp_path / "cache")
    first = synthsal.sample_synthsal(settings, progress=False)
    objects = first.root / "objects_val.json"
    reference = objects.read_bytes()
    objects.write_bytes(reference[: len(reference) // 2])
    with pytest.warns(CacheEntryWarning, match="SynthSal sample cache"):
        again = synthsal.sample_synthsal(settings, progress=False)
    assert objects.read_bytes() == reference
    assert synthsal.load_synthsal(again.root, "val", cache=False, progress=False).boxes


# ------------------------------------------------------------------ 10. checkpoints


class _Payload:
    """Pickles as ``Path(marker).touch()``: loading it runs code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_whose_pickle_runs_code_is_refused_without_running_it(tmp_path, capsys):
    import torch

    from salrank.fosrnet.train import CheckpointError, load_checkpoint

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "model_config": {}, "x": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)
    assert not marker.exists()
    code = main(["eval", "--checkpoint", str(evil)])
    assert code == 2 and not marker.exists()
    _one_line_error(capsys.readouterr().err, str(evil), "refused")
    torch.load(evil, weights_only=False)  # the payload is real: an unsafe load does run it
    assert marker.exists()


@pytest.mark.parametrize("content", [b"not a checkpoint at all\n", b"PK\x03\x04truncated"])
def test_foreign_or_truncated_checkpoint_is_a_one_line_error(content, tmp_path, capsys):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(content)
    assert main(["eval", "--checkpoint", str(ckpt)]) == 2
    _one_line_error(capsys.readouterr().err, str(ckpt))


def test_truncated_real_checkpoint_names_the_file(tmp_path, capsys):
    import torch

    from salrank.fosrnet.model import FOSRNetConfig, create_fosrnet
    from salrank.fosrnet.train import load_checkpoint

    model = create_fosrnet(appearance_dim=8)
    path = tmp_path / "best.pt"
    from dataclasses import asdict, replace

    torch.save({"model": model.state_dict(), "model_config": asdict(replace(FOSRNetConfig(), appearance_dim=8))}, path)
    assert load_checkpoint(path)[0] is not None  # whole: loads with weights_only=True
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = tmp_path / "r.json"
    assert main(["rank", str(_image(tmp_path / "a.png")), "--checkpoint", str(path), "--out", str(out)]) == 2
    _one_line_error(capsys.readouterr().err, str(path))
    assert not out.exists()


def test_training_checkpoint_with_rng_state_loads_safely(tmp_path):
    import random

    import torch

    from salrank.fosrnet.train import _rng_state, _set_rng_state, read_checkpoint

    np.random.seed(5)
    random.seed(5)
    state = _rng_state()
    expected = (np.random.random(3), random.random(), torch.rand(2))
    torch.save({"model": {}, "model_config": {}, "rng": state}, tmp_path / "last.pt")
    _set_rng_state(read_checkpoint(tmp_path / "last.pt")["rng"])  # weights_only=True
    got = (np.random.random(3), random.random(), torch.rand(2))
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1] == expected[1] and torch.equal(got[2], expected[2])


# ------------------------------------------------------------------ 6. outputs checked first


def test_out_problems_are_found_before_any_work(tmp_path, capsys, monkeypatch):
    import salrank.fosrnet.pipeline as pipeline

    monkeypatch.setattr(pipeline.RankingPipeline, "from_checkpoint",
                        classmethod(lambda *a, **k: pytest.fail("the models were built before --out was checked")))
    image = _image(tmp_path / "a.png")
    (tmp_path / "afile").write_text("x")
    for out, needle in ((tmp_path, "is a directory"), (tmp_path / "afile" / "r.json", "is a file")):
        assert main(["rank", str(image), "--out", str(out), "--no-pretrained"]) == 2
        _one_line_error(capsys.readouterr().err, "--out", needle)
    assert main(["gt", "--fixations", str(EXAMPLES / "fixations.json"), "--boxes", str(EXAMPLES / "boxes.json"),
                 "--out", str(tmp_path)]) == 2
    _one_line_error(capsys.readouterr().err, "--out", "is a directory")


# ------------------------------------------------------------------ 8. gt --boxes formats


def test_gt_accepts_the_shipped_coco_ground_truth_boxes(tmp_path):
    from salrank.data.sample import load_coco_boxes

    out = tmp_path / "gt.json"
    assert main(["gt", "--fixations", str(EXAMPLES / "fixations.json"), "--boxes", str(EXAMPLES / "boxes.json"),
                 "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    truth = load_coco_boxes(EXAMPLES / "boxes.json")
    assert set(result) == {s for s, b in truth.items() if len(b)}
    for stem, entry in result.items():
        assert len(entry["boxes"]) == len(truth[stem]) == len(entry["ranks"])
        assert sorted(r for r in entry["ranks"] if r) == list(range(1, sum(1 for r in entry["ranks"] if r) + 1))
    # the same boxes as detection results give the same ranks
    coco = json.loads((EXAMPLES / "boxes.json").read_text())
    stem_of = {img["id"]: Path(img["file_name"]).stem for img in coco["images"]}
    dets = [{"image_id": stem_of[a["image_id"]], "bbox": a["bbox"], "score": 1.0} for a in coco["annotations"]]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    assert main(["gt", "--fixations", str(EXAMPLES / "fixations.json"), "--boxes", str(tmp_path / "dets.json"),
                 "--out", str(tmp_path / "gt2.json"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "gt2.json").read_text()) == result


# ------------------------------------------------------------------ 5. huge images


def test_bounded_loading_scales_down_and_maps_back(tmp_path):
    from salrank.data.images import ImageReadError, image_size, load_image, load_image_bounded

    path = _image(tmp_path / "big.jpg", size=(1200, 1600))
    image, (sx, sy) = load_image_bounded(path, max_side=400)
    assert max(image.size) == 400 and image.size == (400, 300)
    assert (sx, sy) == (4.0, 4.0) and image_size(path) == (1200, 1600)
    same, scale = load_image_bounded(path, max_side=None)
    assert same.size == (1600, 1200) and scale == (1.0, 1.0)
    with pytest.raises(ImageReadError, match=r"big.jpg \(1600 x 1200 pixels\).*decompression bomb"):
        load_image(path, max_pixels=1_000_000)
    assert issubclass(ImageReadError, UserFacingError)


# ------------------------------------------------------------------ 2. bad image files


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        _image(folder / f"good{i}.png", seed=i)
    (folder / "notimage.jpg").write_text("this is not an image")
    jpeg = _image(tmp_path / "t.jpg", size=(60, 80))
    data = jpeg.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    true = {f"good{i}": [[5, 5, 40, 30], [30, 20, 60, 45]] for i in range(12)}
    true.update(notimage=[[1, 1, 5, 5]], truncated=[[1, 1, 5, 5]])
    boxes = {"images": [{"id": k, "file_name": f"{k}.png"} for k in true],
             "annotations": [{"image_id": k, "bbox": [x1, y1, x2 - x1, y2 - y1]}
                             for k, bs in true.items() for x1, y1, x2, y2 in bs]}
    (tmp_path / "true.json").write_text(json.dumps(boxes))
    return folder, tmp_path / "true.json"


def test_proposals_skip_bad_images_and_record_them(image_folder, tmp_path, capsys):
    folder, true = image_folder
    out = tmp_path / "p.json"
    base = ["proposals", "--detector", "oracle", "--images", str(folder), "--true-boxes", str(true), "--quiet"]
    assert main([*base, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 unreadable" in captured.out
    assert "notimage.jpg" in captured.err and "truncated.jpg" in captured.err
    skipped = json.loads((tmp_path / "p.json.skipped.json").read_text())
    assert [s["image_id"] for s in skipped] == ["notimage", "truncated"]
    assert {r["image_id"] for r in json.loads(out.read_text())} <= {"good0", "good1", "good2"}
    strict = tmp_path / "strict.json"
    assert main([*base, "--out", str(strict), "--strict"]) == 2
    _one_line_error(capsys.readouterr().err, "notimage.jpg")
    assert not strict.exists()


def test_proposals_resume_file_errors_are_clear(image_folder, tmp_path, capsys):
    from salrank.data.sample import load_coco_boxes
    from salrank.proposals import create_detector, generate_proposals, images_in_dir
    from salrank.proposals.generate import sidecar_path

    folder, true = image_folder
    out = tmp_path / "p.json"
    base = ["proposals", "--detector", "oracle", "--images", str(folder), "--true-boxes", str(true), "--quiet",
            "--out", str(out)]
    side = sidecar_path(out)
    side.write_text(json.dumps({"something": "else"}) + "\n")
    assert main(base) == 2
    _one_line_error(capsys.readouterr().err, str(side), "line 1", "header")
    side.unlink()

    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop

    # the API with the CLI's settings, interrupted after its first image
    det = create_detector("oracle", true_boxes=load_coco_boxes(true), seed=0, score_threshold=0.0, batch_size=1)
    with pytest.raises(Stop):
        generate_proposals(det, images_in_dir(folder), out, batch_size=1, progress=False, on_error="skip", log=None,
                           on_batch=stop)
    with open(side, "a") as f:
        f.write(json.dumps({"image": "x", "boxes": []}) + "\n")
    assert main([*base, "--batch-size", "1"]) == 2
    _one_line_error(capsys.readouterr().err, str(side), "line 3", "not a proposals record")
    # another seed than the interrupted run's is refused, naming the setting
    side.write_text("\n".join(side.read_text().splitlines()[:2]) + "\n")
    assert main([*base, "--batch-size", "1", "--seed", "1"]) == 2
    _one_line_error(capsys.readouterr().err, "seed: 0 -> 1")
    assert main([*base, "--batch-size", "1"]) == 0 and not side.exists() and out.is_file()


def _slow_cli(*args: str) -> list[str]:
    """The CLI in a subprocess, each image read 0.4 s slower (so that a signal lands mid-run), with
    Ctrl-C's default handler: a child inherits an ignored SIGINT, and a library used earlier in the
    test session may have set the test process's SIGINT to ignored."""
    code = ("import signal, sys, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "import salrank.data.images as im\nf = im.load_image_bounded\n"
            "def slow(*a, **k):\n    time.sleep(0.4)\n    return f(*a, **k)\n"
            "im.load_image_bounded = slow\nfrom salrank.cli import main\nsys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-c", code, *args]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_proposals_killed_by_a_signal_resume_to_identical_output(sig, image_folder, tmp_path):
    from salrank.proposals.generate import sidecar_path

    folder, true = image_folder
    for i in range(3, 12):
        _image(folder / f"good{i}.png", seed=i)
    base = ["proposals", "--detector", "oracle", "--images", str(folder), "--true-boxes", str(true), "--quiet",
            "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    reference = tmp_path / "ref.json"
    subprocess.run([sys.executable, "-m", "salrank", *base, "--out", str(reference)], env=env, check=True,
                   capture_output=True, timeout=300)
    out = tmp_path / "p.json"
    side = sidecar_path(out)
    proc = subprocess.Popen(_slow_cli(*base, "--out", str(out)), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if side.is_file() and len(side.read_bytes().splitlines()) >= 4:  # header + 3 images
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    assert not out.exists() and side.is_file()
    if sig == signal.SIGINT:
        assert b"Traceback" not in err and b"interrupted" in err
    done = len(side.read_bytes().splitlines()) - 1
    assert 3 <= done < 14
    finished = subprocess.run([sys.executable, "-m", "salrank", *base, "--out", str(out)], env=env,
                              capture_output=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert not side.exists()
    assert (tmp_path / "p.json.skipped.json").read_bytes() == (tmp_path / "ref.json.skipped.json").read_bytes()


# ------------------------------------------------------------------ 4. seeded random weights


def test_random_detector_weights_come_from_the_seed():
    from salrank.proposals import create_detector

    a, b, c = (create_detector("ssdlite320_mobilenet_v3_large", pretrained=False, device="cpu", seed=s)
               for s in (0, 0, 1))
    pa, pb, pc = (next(d.model.parameters()).detach().numpy() for d in (a, b, c))
    assert np.array_equal(pa, pb) and not np.array_equal(pa, pc)
    assert a.settings()["init_seed"] == 0 and c.settings()["init_seed"] == 1


def test_rank_skips_bad_images_is_reproducible_and_bounds_big_images(image_folder, tmp_path, capsys, offline):
    folder, _ = image_folder
    big = _image(folder / "big.jpg", size=(360, 600), seed=7)
    images = [str(folder / "good0.png"), str(folder / "notimage.jpg"), str(big), str(folder / "truncated.jpg")]
    common = ["--backbone", "resnet18", "--detector", "ssdlite320_mobilenet_v3_large", "--max-side", "200"]
    out1, out2 = tmp_path / "r1.json", tmp_path / "r2.json"
    # sample profile, no weights on this machine: seeded random weights, said and recorded
    assert main(["rank", *images, "--out", str(out1), *common]) == 0
    captured = capsys.readouterr()
    assert "falls back to random weights" in captured.out and "skipped 2 unreadable" in captured.out
    assert "notimage.jpg" in captured.err and "truncated.jpg" in captured.err
    first = json.loads(out1.read_text())
    assert first["pretrained"] is False and first["seed"] == 0 and "fallback" in first
    assert [Path(s["image"]).name for s in first["skipped"]] == ["notimage.jpg", "truncated.jpg"]
    assert [r["image"] for r in first["images"]] == ["good0.png", "big.jpg"]
    big_result = first["images"][1]
    assert big_result["image_size"] == [360, 600]  # the file's pixels, not the 200-pixel copy
    boxes = np.array(big_result["boxes"]).reshape(-1, 4)
    assert len(boxes) and boxes[:, 2].max() > 200 and boxes[:, 2].max() <= 600 + 1e-3
    assert main(["rank", *images, "--out", str(out2), *common]) == 0
    assert json.loads(out2.read_text()) == first  # random weights from the seed: the same result
    capsys.readouterr()
    assert main(["rank", *images, "--out", str(tmp_path / "r3.json"), *common, "--strict"]) == 2
    _one_line_error(capsys.readouterr().err, "--strict", "notimage.jpg", "truncated.jpg")
    assert not (tmp_path / "r3.json").exists()


def test_gt_cache_never_unpickles(tmp_path, monkeypatch):
    from salrank.data import load_salicon_examples
    from salrank.gt import relabel_dataset

    monkeypatch.setenv("SALRANK_CACHE", str(tmp_path / "cache"))
    fixations = load_salicon_examples()
    stem = next(iter(fixations))
    boxes = {stem: np.array([[10.0, 10.0, 100.0, 100.0], [0.0, 0.0, 50.0, 40.0]])}
    first = relabel_dataset(fixations, boxes, progress=False)
    (entry,) = (tmp_path / "cache" / "gt").iterdir()
    marker = tmp_path / "pwned"
    with open(entry, "wb") as f:  # an entry whose columns are pickled objects that would run code
        np.savez(f, image=np.array([_Payload(marker)], dtype=object), attrs=np.array("{}"))
    with pytest.warns(CacheEntryWarning, match="GT table cache"):
        again = relabel_dataset(fixations, boxes, progress=False)
    assert not marker.exists()
    assert again.equals(first)
    with np.load(entry, allow_pickle=False) as z:  # the rebuilt entry is plain data
        assert all(z[k].dtype != object for k in z.files)


@pytest.mark.parametrize("args,needle", [(["--lr", "nan"], "--lr must be > 0.0"), (["--epochs", "0"], "--epochs"),
                                         (["--top-n", "0"], "--top-n"), (["--gamma", "inf"], "--gamma"),
                                         (["--alpha", "-1"], "--alpha"), (["--unisal-size", "100", "96"], "32")])
def test_train_options_checked_before_any_work(args, needle, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *args]) == 2
    _one_line_error(capsys.readouterr().err, needle)
    assert not out.exists()


def test_train_config_api_checks_ranges():
    from salrank.fosrnet.train import train_config

    for bad in ({"lr": float("nan")}, {"lr": 0.0}, {"epochs": 0}, {"batch_size": 1.5}, {"seed": -1},
                {"alpha": float("inf")}, {"patience": -1}):
        with pytest.raises(InvalidOptionError, match=next(iter(bad))):
            train_config("fast", **bad)


def test_train_out_under_a_file_is_refused_at_once(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["train", "--out", str(tmp_path / "f"), "--epochs", "1"]) == 2
    _one_line_error(capsys.readouterr().err, "--out", "is a file")
    assert main(["eval", "--checkpoint", str(tmp_path / "none.pt"), "--json", str(tmp_path)]) == 2
    _one_line_error(capsys.readouterr().err, "--json", "is a directory")


def test_offline_error_names_the_commands_flag():
    from salrank.cli import _user_message
    from salrank.commands import CommandError
    from salrank.weights import WeightsNotFoundError

    text = "pretrained weights 'x' not found.\n  or build the model with pretrained=False."
    assert "--random-init" in _user_message("proposals", WeightsNotFoundError(text))
    assert "--pretrained no" in _user_message("train", CommandError(text))  # re-raised by the command
    assert "pretrained=False" in _user_message("gt", WeightsNotFoundError(text))  # no such flag there
