"""Atomic output, and the weight download that uses it (through a file:// URL)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from salrank import weights
from salrank.io import atomic_output, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_atomic_writes_round_trip(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "t.txt", "héllo")
    atomic_write_json(tmp_path / "j.json", {"x": [1, 2]})
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo"
    assert json.loads((tmp_path / "j.json").read_text()) == {"x": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "j.json", "t.txt"]  # no temporary left


def test_failure_keeps_old_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target, "w") as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "f", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_bad_mode():
    with pytest.raises(ValueError, match="mode"), atomic_output("x", "a"):
        pass


@pytest.fixture
def local_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    src = tmp_path / "published.pth"
    src.write_bytes(b"weights-bytes" * 1000)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()

    def make(sha):
        return weights.WeightSpec(name="test.local", filename="local.pth", url=src.as_uri(), sha256=sha)

    return make, digest


def test_download_lands_in_cache_after_checksum(local_spec, tmp_path):
    make, digest = local_spec
    path = weights.resolve(make(digest[:10]), progress=False)
    assert path.read_bytes() == b"weights-bytes" * 1000
    assert path.parent == weights.candidate_paths(make(None))[-1].parent


def test_download_with_wrong_checksum_leaves_nothing(local_spec):
    make, _ = local_spec
    spec = make("0" * 64)
    with pytest.raises(weights.ChecksumError):
        weights.resolve(spec, progress=False)
    dest = weights.candidate_paths(spec)[-1]
    assert not dest.exists()
    leftovers = list(dest.parent.glob(".local.pth.*")) if dest.parent.exists() else []
    assert leftovers == []
