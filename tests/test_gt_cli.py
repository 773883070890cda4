"""``salrank gt`` on the SALICON example fixations."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from salrank.cli import main
from salrank.data import load_salicon
from salrank.gt import rank_objects


def _fixations_file() -> Path:
    from salrank.data import salicon_examples_dir

    path = salicon_examples_dir() / "fixations.json"
    assert path.is_file(), f"the shipped SALICON example fixations are missing: {path}"  # a packaging bug
    return path


@pytest.fixture(scope="module")
def fixations_file() -> Path:
    return _fixations_file()


@pytest.fixture(scope="module")
def fixations(fixations_file):
    return load_salicon(fixations_file, cache=False, progress=False)


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _detections(fixations) -> list[dict]:
    stems = sorted(fixations)[:2]
    first, second = fixations[stems[0]], fixations[stems[1]]
    return [
        {"image_id": first.image_id, "bbox": [100, 80, 200, 150], "score": 0.9},
        {"image_id": first.image_id, "bbox": [0, 0, first.width, first.height], "score": 0.8},  # whole image
        {"image_id": stems[1], "bbox": [500, 400, 300, 300], "score": 0.7},  # a stem; partly outside
        {"image_id": str(second.image_id), "bbox": [10, 10, 0, 20], "score": 0.6},  # zero width
        {"image_id": first.image_id, "bbox": [0.5, 0.5, 2.25, 2.25], "score": 0.5},
    ]


def test_gt_cli_matches_rank_objects(tmp_path, fixations_file, fixations, capsys):
    detections = _detections(fixations)
    out = tmp_path / "gt.json"
    code = main(["gt", "--fixations", str(fixations_file), "--boxes", str(_write(tmp_path / "b.json", detections)),
                 "--gamma", "0.3", "--beta", "0.6", "--out", str(out), "--no-progress"])
    assert code == 0
    result = json.loads(out.read_text())
    stems = sorted(fixations)[:2]
    assert sorted(result) == stems
    first = result[stems[0]]
    assert len(first["boxes"]) == 3 and first["boxes"][0] == [100.0, 80.0, 300.0, 230.0]
    # The whole-image box holds every fixation: 1 + gamma * e^beta, the most salient.
    assert first["scores"][1] == pytest.approx(1 + 0.3 * math.exp(0.6))
    assert first["ranks"][1] == 1
    for stem in stems:
        fx = fixations[stem]
        scores, ranks = rank_objects(fx.points, result[stem]["boxes"], fx.image_size, gamma=0.3, beta=0.6)
        np.testing.assert_allclose(result[stem]["scores"], scores, rtol=1e-12)
        assert result[stem]["ranks"] == ranks.tolist()
    second = result[stems[1]]
    assert second["boxes"][0] == [500.0, 400.0, 640.0, 480.0]  # clipped to the 640 x 480 image
    assert second["scores"][1] == 0 and second["ranks"][1] == 0  # the zero-width box
    assert "wrote ranks of 5 boxes in 2 images" in capsys.readouterr().out


def test_gt_cli_points_method(tmp_path, fixations_file, fixations):
    detections = _detections(fixations)[:2]
    out = tmp_path / "gt.json"
    assert main(["gt", "--fixations", str(fixations_file), "--boxes", str(_write(tmp_path / "b.json", detections)),
                 "--method", "points", "--out", str(out), "--no-progress"]) == 0
    stem = sorted(fixations)[0]
    fx = fixations[stem]
    n_inside = int(fx.inside().sum())
    assert json.loads(out.read_text())[stem]["scores"][1] == pytest.approx(n_inside / math.sqrt(640 * 480))


@pytest.mark.parametrize("content, message", [
    ([{"image_id": 999999, "bbox": [1, 2, 3, 4], "score": 1}], "no fixations"),
    ([{"image_id": "COCO_train2014_999", "bbox": [1, 2, 3, 4]}], "no fixations"),
    ({"image_id": 1}, "expected a list"),
    ([{"bbox": [1, 2, 3, 4]}], "entry \\[0\\] needs fields"),
    ([{"image_id": 123855, "bbox": [1, 2, 3]}], "bbox must be"),
    ([{"image_id": 123855, "bbox": [1, 2, -3, 4]}], "w, h >= 0"),
    ([{"image_id": 123855, "bbox": [1, 2, "a", 4]}], "bbox must be"),
    ("not json", "cannot read JSON"),
])
def test_gt_cli_bad_boxes(tmp_path, fixations_file, capsys, content, message):
    path = tmp_path / "b.json"
    if isinstance(content, str):
        path.write_text(content)
    else:
        _write(path, content)
    out = tmp_path / "gt.json"
    code = main(["gt", "--fixations", str(fixations_file), "--boxes", str(path), "--out", str(out), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("salrank gt: error:")
    assert re.search(message, err), err
    assert not out.exists()


def test_gt_cli_missing_files(tmp_path, fixations_file, capsys):
    out = tmp_path / "gt.json"
    assert main(["gt", "--fixations", str(fixations_file), "--boxes", str(tmp_path / "none.json"),
                 "--out", str(out)]) == 2
    assert "boxes file not found" in capsys.readouterr().err
    boxes = _write(tmp_path / "b.json", [])
    assert main(["gt", "--fixations", str(tmp_path / "none.json"), "--boxes", str(boxes), "--out", str(out)]) == 2
    assert "salrank gt: error:" in capsys.readouterr().err
    assert not out.exists()
