"""Offline proposal generation: COCO results format, resumption, and the ``salrank proposals`` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from salrank.cli import main
from salrank.proposals import (
    create_detector,
    filter_proposals,
    generate_proposals,
    images_in_dir,
    read_proposals,
    sidecar_path,
)

SIZE = (60, 80)  # height, width


@pytest.fixture
def scene(tmp_path):
    """Five small images with true boxes, and the oracle detector over them."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    true = {}
    for i in range(5):
        stem = f"img{i}"
        Image.fromarray(rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)).save(folder / f"{stem}.png")
        x1, y1 = rng.uniform(0, 30, 2)
        true[stem] = np.array([[x1, y1, x1 + 30, y1 + 20], [50, 30, 75, 55], [5, 40, 20, 58]])
    detector = create_detector("oracle", true_boxes=true, seed=3, false_positives=2.0)
    return folder, true, detector


class Interrupt(RuntimeError):
    pass


def test_results_are_coco_filtered_and_in_score_order(scene, tmp_path):
    folder, true, detector = scene
    out = generate_proposals(detector, images_in_dir(folder), tmp_path / "p.json", batch_size=2, progress=False)
    records = json.loads(out.read_text())
    assert not sidecar_path(out).exists()
    assert {r["image_id"] for r in records} <= set(true)
    assert [r["image_id"] for r in records] == sorted(r["image_id"] for r in records)
    for r in records:
        assert set(r) == {"image_id", "bbox", "score", "category_id"}
        x, y, w, h = r["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= SIZE[1] + 1e-6 and y + h <= SIZE[0] + 1e-6
    # the file holds exactly the filtered detections, highest score first per image
    raw = detector.detect([np.asarray(Image.open(folder / f"{k}.png")) for k in sorted(true)], keys=sorted(true))
    loaded = read_proposals(out, image_ids=sorted(true))
    for key, det in zip(sorted(true), raw, strict=True):
        kept = det.select(filter_proposals(det.boxes, det.scores, SIZE).keep)
        assert len(loaded[key]) == len(kept)
        np.testing.assert_allclose(loaded[key].boxes, kept.boxes, atol=0.011)
        np.testing.assert_allclose(loaded[key].scores, kept.scores, atol=1e-5)
        assert (np.diff([r["score"] for r in records if r["image_id"] == key]) <= 0).all()


def test_resume_after_interruption_gives_the_same_file(scene, tmp_path):
    folder, _, detector = scene
    images = images_in_dir(folder)
    reference = generate_proposals(detector, images, tmp_path / "ref.json", batch_size=2, progress=False)

    target = tmp_path / "out.json"

    def stop_after_first_batch(done, total):
        assert (done, total) == (2, 5)
        raise Interrupt

    with pytest.raises(Interrupt):
        generate_proposals(detector, images, target, batch_size=2, progress=False, on_batch=stop_after_first_batch)
    assert not target.exists(), "nothing half-written"
    lines = sidecar_path(target).read_text().splitlines()
    assert len(lines) == 3 and "header" in json.loads(lines[0])  # header + the first batch's two images

    calls = []
    original = detector.detect
    detector.detect = lambda imgs, keys=None, batch_size=None: calls.append(list(keys)) or original(imgs, keys)
    try:
        generate_proposals(detector, images, target, batch_size=2, progress=False)
    finally:
        del detector.detect
    assert calls == [["img2", "img3"], ["img4"]], "only the unfinished images are detected again"
    assert target.read_bytes() == reference.read_bytes()
    assert not sidecar_path(target).exists()


def test_a_torn_last_line_is_discarded_and_other_settings_are_refused(scene, tmp_path):
    folder, _, detector = scene
    images = images_in_dir(folder)
    reference = generate_proposals(detector, images, tmp_path / "ref.json", batch_size=5, progress=False)
    target = tmp_path / "out.json"
    with pytest.raises(Interrupt):
        generate_proposals(detector, images, target, batch_size=1, progress=False,
                           on_batch=lambda done, total: (_ for _ in ()).throw(Interrupt) if done == 2 else None)
    with open(sidecar_path(target), "a") as f:
        f.write('{"image_id": "img2", "detec')  # a write cut short by a crash
    with pytest.raises(ValueError, match="other settings"):
        generate_proposals(detector, images, target, filter_options={"top_n": 3}, progress=False)
    reseeded = create_detector("oracle", true_boxes=detector.true_boxes, seed=4, false_positives=2.0)
    with pytest.raises(ValueError, match="other settings"):
        generate_proposals(reseeded, images, target, progress=False)
    with pytest.raises(ValueError, match="other settings"):  # another image list
        generate_proposals(detector, dict(list(images.items())[:4]), target, progress=False)
    generate_proposals(detector, images, target, batch_size=3, progress=False)
    assert target.read_bytes() == reference.read_bytes()


def test_read_proposals_rejects_malformed_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": "a", "score": 0.5}]')
    with pytest.raises(ValueError, match="entry 0"):
        read_proposals(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_proposals(bad)
    with pytest.raises(FileNotFoundError, match="proposals file not found"):
        read_proposals(tmp_path / "missing.json")


def test_images_in_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        images_in_dir(tmp_path / "nope")
    with pytest.raises(ValueError, match="no images"):
        images_in_dir(tmp_path)
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="share the id 'a'"):
        images_in_dir(tmp_path)


def test_cli_oracle_with_true_boxes_and_random_init_cnn(scene, tmp_path, capsys):
    folder, true, _ = scene
    coco = {
        "images": [{"id": i, "file_name": f"{k}.png"} for i, k in enumerate(true)],
        "annotations": [
            {"image_id": i, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
            for i, k in enumerate(true) for b in true[k].tolist()
        ],
    }
    (tmp_path / "boxes.json").write_text(json.dumps(coco))
    out = tmp_path / "oracle.json"
    code = main(["proposals", "--detector", "oracle", "--images", str(folder), "--true-boxes",
                 str(tmp_path / "boxes.json"), "--out", str(out), "--quiet", "--top-n", "2"])
    assert code == 0 and "5 image(s)" in capsys.readouterr().out
    per_image = read_proposals(out, image_ids=list(true))
    assert all(1 <= len(d) <= 2 for d in per_image.values())

    one = tmp_path / "one"
    one.mkdir()
    (folder / "img0.png").rename(one / "img0.png")
    out2 = tmp_path / "ssdlite.json"
    code = main(["proposals", "--detector", "ssdlite", "--random-init", "--images", str(one), "--out",
                 str(out2), "--quiet", "--score-threshold", "0", "--no-filter"])
    assert code == 0
    records = json.loads(out2.read_text())
    assert len(records) == 100 and {r["image_id"] for r in records} == {"img0"}  # 100 raw detections


def test_cli_sample_salicon_with_the_oracle_uses_the_annotated_boxes(tmp_path, capsys):
    from salrank.data.sample import load_salicon_example_boxes

    boxes = load_salicon_example_boxes()
    out = tmp_path / "sample.json"
    assert main(["proposals", "--detector", "oracle", "--sample", "salicon", "--out", str(out), "--quiet",
                 "--top-n", "20", "--max-area-frac", "1", "--min-area", "0", "--iou-threshold", "1"]) == 0
    got = read_proposals(out, image_ids=list(boxes))
    assert set(got) == set(boxes) and len(boxes) == 10
    assert sum(len(d) for d in got.values()) > 0.5 * sum(len(b) for b in boxes.values())


def test_cli_errors(tmp_path, capsys):
    assert main(["proposals", "--detector", "oracle", "--images", str(tmp_path), "--out", "x.json"]) == 2
    assert "no images" in capsys.readouterr().err
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert main(["proposals", "--detector", "oracle", "--images", str(tmp_path), "--out", "x.json"]) == 2
    assert "needs true boxes" in capsys.readouterr().err
    assert main(["proposals", "--detector", "nope", "--sample", "--out", "x.json"]) == 2
    assert "unknown detector 'nope'" in capsys.readouterr().err
    assert main(["proposals", "--list"]) == 0
    assert "efficientdet_d7" in capsys.readouterr().out
