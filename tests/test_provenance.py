"""Provenance: versions, hardware, checksums of data and weights."""

from __future__ import annotations

import hashlib

from salrank import __version__, weights
from salrank.config import get_settings
from salrank.provenance import (
    hardware,
    package_versions,
    sample_data_checksums,
    tree_checksums,
    weights_table,
)


def test_package_versions_include_salrank_and_missing():
    v = package_versions(["numpy", "surely-not-installed-pkg"])
    assert v["salrank"] == __version__
    assert v["numpy"] and v["surely-not-installed-pkg"] is None


def test_hardware_fields():
    hw = hardware()
    assert hw["cpu_count"] >= 1 and isinstance(hw["cuda"], bool)


def test_tree_checksums_match_hashlib(tmp_path):
    (tmp_path / "a.json").write_bytes(b"{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jpg").write_bytes(b"\xff\xd8abc")
    (tmp_path / "c.txt").write_text("ignored")
    table = tree_checksums(tmp_path, ("*.json", "*.jpg"))
    assert list(table["file"]) == ["a.json", "sub/b.jpg"]
    assert table.loc[1, "sha256"] == hashlib.sha256(b"\xff\xd8abc").hexdigest()
    assert table.loc[0, "bytes"] == 2


def test_sample_checksums_cover_images_and_annotations():
    table = sample_data_checksums()
    files = set(table["file"])
    assert {"fixations.json", "boxes.json"} <= files
    assert sum(f.startswith("images/") for f in files) == 10


def test_weights_table_reports_found_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = weights.get_spec("unisal.salicon")
    (tmp_path / spec.filename).write_bytes(b"fake")
    table = weights_table(get_settings(), checksums=True).set_index("name")
    assert table.loc["unisal.salicon", "found at"] == str(tmp_path / spec.filename)
    assert table.loc["unisal.salicon", "sha256"] == hashlib.sha256(b"fake").hexdigest()
    assert table.loc["resnet101.tv_in1k", "found at"] == "missing"
