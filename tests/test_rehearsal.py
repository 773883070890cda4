"""The full-profile path on a rehearsal tree (salrank.data.rehearsal, salrank.reproduce).

Fast tests: the tree's layouts read back by the real readers, every rehearsal weight file loads
with strict=True through the real loaders (and only when trusted), truncated and wrong-keyed files
fail with the file and the first bad key, the banner says "rehearsal weights". The slow test runs
``salrank reproduce`` end to end on a small tree: every page on the full profile, the book with -W.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from salrank.config import get_settings
from salrank.data.rehearsal import DEFAULT_WEIGHTS, build_model_for, make_rehearsal_tree
from salrank.weights import (
    REHEARSAL_MANIFEST,
    ChecksumError,
    WeightsFormatError,
    get_spec,
    load_into,
    load_state_dict,
    weights_label,
    weights_status,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A small tree with every default weight file (written once for the module)."""
    return make_rehearsal_tree(tmp_path_factory.mktemp("rehearsal") / "r", n_train=3, n_val=1, n_test=3,
                               n_peers=2, progress=False)


@pytest.fixture()
def full_env(tree, monkeypatch, tmp_path):
    monkeypatch.setenv("SALRANK_PROFILE", "full")
    monkeypatch.setenv("SALRANK_DATA", str(tree.data))
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tree.weights))
    monkeypatch.setenv("SALRANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SALRANK_TRUST_WEIGHTS", raising=False)
    return tree


def test_salicon_layout_and_both_fixation_formats(full_env):
    from PIL import Image

    from salrank.data.salicon import load_salicon
    from salrank.data.scenes import open_dataset

    data = full_env.data
    train = sorted((data / "images" / "train").glob("*.jpg"))
    val = sorted((data / "images" / "val").glob("*.jpg"))
    assert len(train) == 3 and len(val) == 4
    assert all(p.name.startswith("COCO_train2014_") and len(p.stem) == len("COCO_train2014_") + 12 for p in train)
    assert all(p.name.startswith("COCO_val2014_") for p in val)
    assert Image.open(train[0]).size == (640, 480)
    for source, n in (("train", 3), ("val", 4)):
        js = load_salicon(data / "fixations" / f"fixations_{source}2014.json", cache=False, progress=False)
        mats = load_salicon(data / "fixations" / source, cache=False, progress=False)
        assert sorted(js) == sorted(mats) and len(js) == n
        for stem in js:  # same points, same observers (JSON: worker ids; .mat: 0-based order)
            a, b = js[stem], mats[stem]
            np.testing.assert_allclose(a.points, b.points)
            assert (a.width, a.height) == (b.width, b.height) == (640, 480)
            assert a.n_observers == b.n_observers
            assert a.image_id == int(stem[-12:])
    sizes = {split: len(open_dataset("salicon", split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 3, "val": 1, "test": 3}


def test_coco_instances_are_the_reference_objects(full_env, tmp_path):
    """The tree's COCO instance files give the full profile's SALICON splits their reference boxes
    (crowd boxes left out); a proposals detector still replaces them."""
    from salrank.data.sample import load_coco_boxes
    from salrank.data.scenes import coco_instances_path, open_dataset

    for split, source in (("train", "train"), ("test", "val")):
        scenes = open_dataset("salicon", split)
        instances = json.loads(coco_instances_path(full_env.data, source).read_text())
        assert {img["file_name"][:-4] for img in instances["images"]} >= set(scenes.stems)
        for stem in scenes.stems:
            boxes = scenes.boxes_of(stem)
            assert boxes.shape[1] == 4 and len(boxes) > 0
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 640).all()
    stem = open_dataset("salicon", "train").stems[0]
    image_id = int(stem[-12:])
    crowd = {"images": [{"id": image_id, "file_name": f"{stem}.jpg"}],
             "annotations": [{"image_id": image_id, "bbox": [1, 2, 3, 4], "iscrowd": 0},
                             {"image_id": image_id, "bbox": [0, 0, 50, 50], "iscrowd": 1}]}
    (tmp_path / "crowd.json").write_text(json.dumps(crowd))
    np.testing.assert_array_equal(load_coco_boxes(tmp_path / "crowd.json", skip_crowd=True)[stem], [[1, 2, 4, 6]])
    assert len(load_coco_boxes(tmp_path / "crowd.json")[stem]) == 2


def test_peer_layouts_read_back(full_env):
    from salrank.data.peers import load_assr, load_irsr

    assr = load_assr(full_env.data / "ASSR", "test")
    irsr = load_irsr(full_env.data / "IRSR", "test")
    assert len(assr) == len(irsr) == 2
    for ds in (assr, irsr):
        for img in ds:
            assert len(img) > 0 and img.masks().shape[0] == len(img)


def test_saliency_map_folders_cover_the_val_images(full_env):
    from salrank.analysis.efp import load_map_folder

    val = {p.stem for p in (full_env.data / "images" / "val").glob("*.jpg")}
    for name in ("rehearsal_centre", "rehearsal_fixations"):
        maps = load_map_folder(full_env.data / "saliency_maps" / name)
        assert set(maps) == val
        assert maps[sorted(val)[0]].shape == (480, 640)


@pytest.mark.parametrize("name", DEFAULT_WEIGHTS)
def test_every_rehearsal_weight_loads_strictly(full_env, name, monkeypatch):
    spec = get_spec(name)
    path = full_env.weights / spec.filename
    assert path.is_file()
    assert weights_status(name, path) == "rehearsal"
    if spec.sha256:  # a published checksum: refused unless trusted
        with pytest.raises(ChecksumError, match="SALRANK_TRUST_WEIGHTS"):
            load_state_dict(name)
    state = load_state_dict(name, verify=False)
    model = build_model_for(name)
    reference = model.state_dict()
    assert list(state) == list(reference)  # same keys, same order
    assert all(state[k].shape == reference[k].shape and state[k].dtype == reference[k].dtype for k in state)
    missing, unexpected = model.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    monkeypatch.setenv("SALRANK_TRUST_WEIGHTS", "1")
    assert load_into(build_model_for(name), name) == path


def test_real_loaders_run_on_the_rehearsal_weights(full_env, monkeypatch):
    from salrank.models.backbones import load_backbone, load_psm
    from salrank.proposals import create_detector

    with pytest.raises(ChecksumError):
        load_backbone("resnet101", device="cpu")
    monkeypatch.setenv("SALRANK_TRUST_WEIGHTS", "1")
    cnn = load_backbone("resnet101", device="cpu")
    assert cnn.dim == 2048 and cnn.weights.rehearsal  # never labelled "pretrained"
    assert cnn.weights.label.endswith("rehearsal weights")
    psm = load_psm(device="cpu")
    assert psm.weights.rehearsal and psm.weights.label.endswith("rehearsal weights")
    from salrank.analysis.experiments import describe_setup, profile_setup

    said = describe_setup(profile_setup(get_settings(device="cpu")))["weights"]
    assert said.count("rehearsal weights") == 2
    from PIL import Image

    image = np.asarray(Image.open(sorted((full_env.data / "images" / "val").glob("*.jpg"))[0]).convert("RGB"))
    det = create_detector("efficientdet_d0", device="cpu", image_size=256)
    boxes = det.detect([image])[0].boxes
    assert len(boxes) > 0  # the rehearsal detector proposes boxes


def test_rehearsal_backbone_features_have_a_pretrained_scale(full_env, monkeypatch):
    """The rehearsal ResNet's BatchNorm statistics are calibrated: its pooled features on a real
    image are near 0.5, as a pretrained network's (uncalibrated random ones reach 1e2-1e4)."""
    import torchvision

    monkeypatch.setenv("SALRANK_TRUST_WEIGHTS", "1")
    model = torchvision.models.resnet101(weights=None)
    load_into(model, "resnet101.tv_in1k")
    model.fc = torch.nn.Identity()
    model.eval()
    from PIL import Image

    path = sorted((full_env.data / "images" / "val").glob("*.jpg"))[0]
    x = torchvision.transforms.functional.to_tensor(Image.open(path).convert("RGB").resize((224, 224)))
    x = torchvision.transforms.functional.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    with torch.no_grad():
        feats = model(x[None])
    assert torch.isfinite(feats).all() and 0.1 < float(feats.abs().mean()) < 2.0
    uncalibrated = torchvision.models.resnet101(weights=None).eval()  # what the tree used to hold
    uncalibrated.fc = torch.nn.Identity()
    with torch.no_grad():
        assert float(uncalibrated(x[None]).abs().mean()) > 100.0


def test_truncated_file_names_the_file_and_loads_nothing(full_env, tmp_path):
    src = full_env.weights / get_spec("unisal.salicon").filename
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    model = build_model_for("unisal.salicon")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsFormatError, match=str(bad).replace(".", r"\.")):
        load_into(model, "unisal.salicon", bad)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_wrong_key_names_the_first_bad_key_and_loads_nothing(full_env, tmp_path):
    name = "tf_efficientdet_d0.coco"
    state = load_state_dict(name, verify=False)
    keys = list(state)
    renamed = {("backbone.renamed" if k == keys[3] else k): v for k, v in state.items()}
    bad = tmp_path / get_spec(name).filename
    torch.save(renamed, bad)
    model = build_model_for(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsFormatError) as err:
        load_into(model, name, bad, verify=False)
    assert str(bad) in str(err.value) and repr(keys[3]) in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # a mis-shaped tensor is named too
    reshaped = dict(state)
    reshaped[keys[0]] = torch.zeros(1)
    torch.save(reshaped, bad)
    with pytest.raises(WeightsFormatError, match="has shape"):
        load_into(build_model_for(name), name, bad, verify=False)


def test_banner_says_full_profile_rehearsal_weights(full_env):
    from salrank.viz.report import banner_text

    settings = get_settings()
    assert weights_label(settings.weights_dir) == "rehearsal weights"
    text = banner_text(settings)
    assert "Full profile, rehearsal weights" in text and "pretrained files" not in text
    plain = banner_text(get_settings(weights_dir=str(full_env.root)))  # not a rehearsal folder
    assert "rehearsal weights" not in plain and "pretrained files" in plain


def test_tree_is_resumable_and_refuses_other_arguments(tmp_path):
    root = tmp_path / "t"
    tree = make_rehearsal_tree(root, n_train=1, n_val=1, n_test=1, n_peers=1, weights=["unisal.salicon"],
                               progress=False)
    manifest = json.loads((tree.weights / REHEARSAL_MANIFEST).read_text())
    stamp = (tree.weights / "unisal_weights_best.pth").stat().st_mtime_ns
    again = make_rehearsal_tree(root, n_train=1, n_val=1, n_test=1, n_peers=1, weights=["unisal.salicon"],
                                progress=False)
    assert again == tree and (tree.weights / "unisal_weights_best.pth").stat().st_mtime_ns == stamp
    assert json.loads((tree.weights / REHEARSAL_MANIFEST).read_text()) == manifest
    with pytest.raises(FileExistsError):
        make_rehearsal_tree(root, n_train=2, n_val=1, n_test=1, n_peers=1, weights=["unisal.salicon"],
                            progress=False)
    with pytest.raises(ValueError):
        make_rehearsal_tree(tmp_path / "u", n_train=0)


def test_salicon_val_count_keeps_the_paper_proportion():
    from salrank.data.scenes import salicon_val_count

    assert salicon_val_count(5000) == 1200
    assert salicon_val_count(20) == 5
    assert salicon_val_count(4) == 1
    assert salicon_val_count(2) == 1 and salicon_val_count(1) == 1


def test_cli_prints_the_exports(tmp_path):
    from salrank.cli import main

    out = subprocess.run(
        [sys.executable, "-m", "salrank.cli", "rehearsal", str(tmp_path / "c"), "--train", "1", "--val", "1",
         "--test", "1", "--peers", "1", "--weights", "unisal.salicon", "--quiet"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert f"export SALRANK_DATA={tmp_path / 'c' / 'data'}" in out.stdout
    assert f"export SALRANK_WEIGHTS={tmp_path / 'c' / 'weights'}" in out.stdout
    assert main(["rehearsal", str(tmp_path / "d"), "--train", "0"]) == 2


def test_reproduce_refuses_the_sample_profile_and_unknown_stages(tmp_path):
    from salrank.reproduce import reproduce

    with pytest.raises(ValueError, match="full"):
        reproduce(settings=get_settings(profile="sample"))
    with pytest.raises(ValueError, match="unknown stage"):
        reproduce(["nope"], settings=get_settings(profile="full"))
    with pytest.raises(FileNotFoundError, match="SALRANK_DATA"):
        reproduce(settings=get_settings(profile="full", data_root=str(tmp_path / "none"),
                                        weights_dir=str(tmp_path)))


def _experiment_metrics(cache: Path) -> dict[str, dict]:
    """``{experiment folder: metrics}`` of every finished experiment in a salrank cache."""
    return {p.parent.name: json.loads(p.read_text())["metrics"] for p in (cache / "experiments").glob("*/result.json")}


@pytest.mark.slow
@pytest.mark.notebooks  # it executes every notebook (on the full profile)
def test_reproduce_end_to_end_on_a_rehearsal_tree(tmp_path):
    """The whole full path on a small tree: ``salrank reproduce`` killed in the middle of its
    training stage, run again to the end (every page on the full profile, the book with -W), the
    same numbers as an uninterrupted retraining, and a last run that skips every stage."""
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("SALRANK_")}
    cache = tmp_path / "cache"
    env.update({"PYTHONPATH": str(REPO), "SALRANK_CACHE": str(cache), "SALRANK_DEVICE": "cpu"})
    root = tmp_path / "r"
    make = subprocess.run([sys.executable, "-m", "salrank.cli", "rehearsal", str(root), "--train", "8", "--val",
                           "2", "--test", "6", "--peers", "2", "--quiet"], capture_output=True, text=True, env=env,
                          cwd=REPO)
    assert make.returncode == 0, make.stderr[-3000:]
    env.update({"SALRANK_DATA": str(root / "data"), "SALRANK_WEIGHTS": str(root / "weights")})
    cmd = [sys.executable, "-m", "salrank.cli", "reproduce", "--trust", "--epochs", "2", "--limit", "6",
           "--out", str(tmp_path / "book"), "--quiet"]

    # 1. killed (with its kernels) while the training stage executes its second page
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO,
                             start_new_session=True)
    record = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        found = list((cache / "reproduce").glob("*/stages.json"))
        if found and "table2" in json.loads(found[0].read_text()).get("pages", {}):
            record = found[0]
            break
        time.sleep(0.5)
    assert record is not None, (first.poll(), first.stderr.read()[-3000:] if first.poll() is not None else "")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    folder = record.parent
    assert "train" not in json.loads(record.read_text())["stages"]  # killed inside the stage
    table2 = (folder / "executed" / "table2.ipynb").read_bytes()
    gt = {p.name: p.read_bytes() for p in folder.glob("gt_*.json")}
    assert sorted(gt) == ["gt_test.json", "gt_train.json", "gt_val.json"]
    from salrank.proposals.generate import read_proposals

    train_stems = sorted(p.stem for p in (root / "data" / "images" / "train").glob("*.jpg"))
    proposals = read_proposals(root / "data" / "proposals" / "efficientdet_d0_train.json")
    assert sorted(proposals) == train_stems[:6]  # --limit 6: only the images the experiments use

    # 2. run again: resumes at the unfinished page and builds the book
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert run.stdout.count("skipped") == 3  # proposals, features, gt
    assert (folder / "executed" / "table2.ipynb").read_bytes() == table2  # a finished page is kept
    assert {p.name: p.read_bytes() for p in folder.glob("gt_*.json")} == gt
    assert not list((folder / "executed").glob(".*tmp*"))
    html = tmp_path / "book" / "html"
    assert (html / "index.html").is_file()
    pages = sorted((html / "notebooks").glob("*.html"))
    from salrank.reproduce import book_pages

    assert sorted(p.stem for p in pages) == sorted(book_pages())
    for page in pages:  # every page: full profile, rehearsal weights, never "pretrained files"
        text = page.read_text()
        assert "Full profile, rehearsal weights" in text, page.name
    resumed = _experiment_metrics(cache)
    assert len(resumed) >= 20

    # 3. the same numbers as retraining every experiment without interruption
    os.replace(cache / "experiments", tmp_path / "experiments-resumed")
    again = subprocess.run(cmd + ["--stages", "train", "--force", "train"], capture_output=True, text=True,
                           env=env, cwd=REPO)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    fresh = _experiment_metrics(cache)
    assert set(fresh) <= set(resumed) and len(fresh) >= 15
    assert {k: resumed[k] for k in fresh} == fresh

    # 4. a finished run skips every stage
    last = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert last.returncode == 0
    assert last.stdout.count("skipped") == 6


def test_limit_and_epochs_reach_the_full_setup(monkeypatch):
    from salrank.analysis.experiments import profile_setup

    monkeypatch.setenv("SALRANK_LIMIT", "7")
    monkeypatch.setenv("SALRANK_EPOCHS", "3")
    settings = get_settings(profile="full", device="cpu")
    assert (settings.limit, settings.epochs) == (7, 3)
    setup = profile_setup(settings)
    assert setup.limits == (7, 7, 7) and setup.train == {"epochs": 3} and setup.preset == "paper"
    sample = profile_setup(get_settings(profile="sample", device="cpu"))  # the sample keeps its own sizes
    assert sample.limits != (7, 7, 7)
    for bad in ("0", "x", "-2"):
        monkeypatch.setenv("SALRANK_LIMIT", bad)
        with pytest.raises(ValueError, match="SALRANK_LIMIT"):
            get_settings()


def test_page_parameters_and_run_folders(full_env):
    from salrank.reproduce import TRAIN_PAGES, book_pages, page_parameters, run_folder

    pages = book_pages()
    assert set(TRAIN_PAGES) <= set(pages) and "fig9" in pages
    settings = get_settings()
    fig9 = page_parameters("fig9", settings)
    assert fig9["profile"] == "full"
    assert sorted(fig9["map_dirs"]) == ["rehearsal_centre", "rehearsal_fixations"]
    assert "repeats" not in page_parameters("table4b", settings)
    limited = get_settings(limit=5)
    assert (page_parameters("table4b", limited)["repeats"], page_parameters("table4b", limited)["warmup"]) == (1, 0)
    assert page_parameters("fig11b", limited)["n_images"] == 5
    assert run_folder(settings) != run_folder(limited) and run_folder(settings) == run_folder(get_settings())


def test_a_run_folder_is_held_by_one_run(full_env):
    import fcntl

    from salrank.reproduce import ReproduceBusyError, reproduce, run_folder

    settings = get_settings(limit=3)
    before = dict(os.environ)
    with open(run_folder(settings) / ".lock", "w") as other:  # another run holds it
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ReproduceBusyError, match="another salrank reproduce is running"):
            reproduce(["gt"], settings=settings, log=None, progress=False)
    assert dict(os.environ) == before  # the run's exports (SALRANK_LIMIT=3 ...) do not outlive it
    executed = run_folder(settings) / "executed"
    executed.mkdir(exist_ok=True)
    stale = executed / ".table2.99999.tmp.ipynb"  # what a killed run leaves
    stale.write_text("{}")
    (executed / "table2.ipynb").write_text("{}")  # finished: kept, nothing executed
    from salrank.reproduce import _execute_page

    assert _execute_page("table2", settings, executed, REPO / "notebooks") == executed / "table2.ipynb"
    assert stale.exists()  # only an execution clears the page's stale temporaries


def test_timing_table_lists_every_stage():
    from salrank.reproduce import ReproduceRun, StageResult, timing_table

    run = ReproduceRun(Path("/x"), [StageResult("proposals", "ran", 2.0, "a"), StageResult("gt", "cached", 1.5)])
    text = timing_table(run).splitlines()
    assert text[0].split()[:3] == ["stage", "status", "seconds"]
    assert text[1].split()[:3] == ["proposals", "ran", "2.0"] and text[2].split()[:3] == ["gt", "cached", "1.5"]
    assert text[-1].split() == ["total", "3.5"]
