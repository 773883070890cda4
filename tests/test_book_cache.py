"""When the book reuses executed pages (book/_ext/book_cache.py): the fingerprint moves with
salrank's files, the benchmark records, the versions of the packages that compute the results and
the resolved settings, and stays put otherwise; the jupyter-cache is emptied
only on a new fingerprint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))

from book_cache import (  # noqa: E402
    STAMP,
    benchmark_files,
    cache_folder,
    fingerprint,
    package_files,
    result_packages,
    settings_record,
    versions_record,
)


@pytest.fixture
def package(tmp_path) -> Path:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "a.py").write_text("x = 1\n")
    (root / "sub" / "b.py").write_text("y = 2\n")
    (root / "sub" / "data.json").write_text("{}")
    return root


SAMPLE = {"SALRANK_PROFILE": "sample"}


def test_files_skip_bytecode(package):
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (package / "c.pyc").write_bytes(b"\0")
    assert [p.relative_to(package).as_posix() for p in package_files(package)] == ["a.py", "sub/b.py",
                                                                                   "sub/data.json"]


def test_unchanged_is_stable_and_bytecode_is_ignored(package):
    first = fingerprint(package, SAMPLE)
    assert fingerprint(package, SAMPLE) == first
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"compiled")
    assert fingerprint(package, SAMPLE) == first
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize("change", ["edit", "add", "rename", "data"])
def test_code_and_data_changes_move_it(package, change):
    before = fingerprint(package, SAMPLE)
    if change == "edit":
        (package / "a.py").write_text("x = 2\n")
    elif change == "add":
        (package / "sub" / "new.py").write_text("")
    elif change == "rename":
        (package / "a.py").rename(package / "a2.py")
    else:
        (package / "sub" / "data.json").write_text('{"k": 1}')
    assert fingerprint(package, SAMPLE) != before


def test_settings_move_it(package, tmp_path):
    sample = fingerprint(package, SAMPLE)
    assert fingerprint(package, {}) == sample  # the default profile is sample
    assert fingerprint(package, {"SALRANK_PROFILE": "full"}) != sample
    assert fingerprint(package, {**SAMPLE, "SALRANK_DEVICE": "cpu"}) != sample
    weights = tmp_path / "weights"
    weights.mkdir()
    with_weights = fingerprint(package, {**SAMPLE, "SALRANK_WEIGHTS": str(weights)})
    assert with_weights != sample
    (weights / "unisal.pth").write_bytes(b"123")
    assert fingerprint(package, {**SAMPLE, "SALRANK_WEIGHTS": str(weights)}) != with_weights
    # the cache folder holds derived files only: it does not count
    assert fingerprint(package, {**SAMPLE, "SALRANK_CACHE": str(tmp_path / "c")}) == sample


def test_benchmark_records_move_it(package, tmp_path):
    # the Table IV page reads benchmarks/*.json
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "cpu-quick.json").write_text('{"results": [1]}')
    before = fingerprint(package, SAMPLE, bench)
    assert fingerprint(package, SAMPLE, bench) == before
    (bench / "notes.md").write_text("not a record")
    assert fingerprint(package, SAMPLE, bench) == before
    (bench / "cpu-quick.json").write_text('{"results": [2]}')
    edited = fingerprint(package, SAMPLE, bench)
    assert edited != before
    (bench / "gpu.json").write_text("{}")
    assert fingerprint(package, SAMPLE, bench) != edited
    assert [p.name for p in benchmark_files(bench)] == ["cpu-quick.json", "gpu.json"]
    assert benchmark_files(tmp_path / "missing") == []
    # by default, the source checkout's benchmarks/
    assert fingerprint(package, SAMPLE) == fingerprint(package, SAMPLE, REPO / "benchmarks")


def test_package_versions_move_it(package, monkeypatch):
    import salrank.provenance

    before = fingerprint(package, SAMPLE)
    real = salrank.provenance.version
    for name in ("torch", "scipy", "timm"):
        with monkeypatch.context() as m:
            m.setattr(salrank.provenance, "version", lambda pkg, name=name: "0.0.0+other" if pkg == name else real(pkg))
            assert versions_record()[name] == "0.0.0+other"
            assert fingerprint(package, SAMPLE) != before, name
    assert fingerprint(package, SAMPLE) == before


def test_result_packages_are_the_declared_dependencies(monkeypatch):
    import importlib.metadata

    names = result_packages()
    assert {"torch", "torchvision", "numpy", "scipy"} <= set(names) and names == sorted(names)
    declared = ["numpy>=1.24", "Foo-Bar>=1", 'pytest>=7; extra == "test"', 'ruff; extra == "dev"',
                'ultralytics>=8; extra == "extras"']
    monkeypatch.setattr(importlib.metadata, "requires", lambda dist: declared if dist == "salrank" else None)
    assert result_packages() == ["foo-bar", "numpy", "scipy", "torch", "torchvision", "ultralytics"]

    def not_installed(dist):
        raise importlib.metadata.PackageNotFoundError(dist)

    monkeypatch.setattr(importlib.metadata, "requires", not_installed)
    assert result_packages() == ["numpy", "scipy", "torch", "torchvision"]


def test_settings_record_reads_the_given_environment(tmp_path):
    record = settings_record({"SALRANK_PROFILE": "full", "SALRANK_DATA": str(tmp_path / "missing")})
    assert record["profile"] == "full"
    assert record["data_root"] == [str((tmp_path / "missing").resolve()), "missing"]
    assert settings_record({})["data_root"] == []
    with pytest.raises(ValueError, match="unknown profile"):
        settings_record({"SALRANK_PROFILE": "huge"})


def test_default_package_is_salrank():
    import salrank

    assert fingerprint(None, SAMPLE) == fingerprint(Path(salrank.__file__).parent, SAMPLE)


def test_cache_folder_per_fingerprint(tmp_path):

    base = tmp_path / ".jupyter_cache"
    sample = cache_folder(base, "a" * 64)
    assert sample == base / ("a" * 16) and (sample / STAMP).read_text().strip() == "a" * 64
    (sample / "executed.db").write_text("sample outputs")
    assert cache_folder(base, "a" * 64) == sample  # unchanged: the same cache, kept
    assert (sample / "executed.db").read_text() == "sample outputs"
    full = cache_folder(base, "b" * 64)  # another profile: its own, empty cache
    assert full != sample and not (full / "executed.db").exists()
    assert (sample / "executed.db").exists()  # switching back will find the sample's pages
    assert cache_folder(base, "a" * 64) == sample and (sample / "executed.db").exists()


def test_cache_folder_prunes_least_recently_used(tmp_path):
    import os

    base = tmp_path / ".jupyter_cache"
    base.mkdir()
    (base / "global.db").write_text("a cache without fingerprint (an older build): not trusted")
    folders = []
    for i, digit in enumerate("cdef"):
        folders.append(cache_folder(base, digit * 64, keep=3))
        os.utime(folders[-1] / STAMP, ns=(i * 10**9, i * 10**9))  # c oldest ... f newest
    assert not (base / "global.db").exists()
    cache_folder(base, "g" * 64, keep=3)
    assert sorted(p.name[0] for p in base.iterdir()) == ["e", "f", "g"]
    with pytest.raises(ValueError, match="keep"):
        cache_folder(base, "h" * 64, keep=0)
