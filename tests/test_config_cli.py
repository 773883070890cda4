"""Settings, the CLI dispatcher and the provenance banner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from salrank import __version__
from salrank.cli import main
from salrank.config import get_settings
from salrank.viz.report import SAMPLE_WARNING, banner_text


def test_defaults(monkeypatch):
    for var in ("SALRANK_PROFILE", "SALRANK_DATA", "SALRANK_WEIGHTS", "SALRANK_CACHE", "SALRANK_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    s = get_settings()
    assert s.profile == "sample"
    assert s.data_root is None and s.weights_dir is None
    assert s.cache_dir == Path("~/.cache/salrank").expanduser()
    assert s.device == "auto"


def test_environment_and_overrides(monkeypatch, tmp_path):
    monkeypatch.delenv("SALRANK_DEVICE", raising=False)
    monkeypatch.setenv("SALRANK_PROFILE", "full")
    monkeypatch.setenv("SALRANK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SALRANK_CACHE", str(tmp_path / "cache"))
    s = get_settings()
    assert s.profile == "full"
    assert s.data_root == (tmp_path / "data").resolve()
    assert s.cache_dir == (tmp_path / "cache").resolve()
    # explicit overrides win; None and "" mean "keep the default"
    s2 = get_settings(profile="sample", data_root=None, weights_dir=str(tmp_path), device="")
    assert s2.profile == "sample"
    assert s2.data_root == (tmp_path / "data").resolve()
    assert s2.weights_dir == tmp_path.resolve()
    assert s2.device == "auto"


def test_bad_profile(monkeypatch):
    monkeypatch.setenv("SALRANK_PROFILE", "huge")
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        get_settings()


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"salrank {__version__}"


def test_console_script_installed():
    exe = Path(sys.executable).with_name("salrank")
    assert exe.exists(), "the salrank entry point is not installed in this environment"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"salrank {__version__}"


def test_info_json(capsys, monkeypatch, tmp_path):
    import json

    monkeypatch.setenv("SALRANK_CACHE", str(tmp_path))
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["salrank"] == __version__
    assert info["cache_dir"] == str(tmp_path.resolve())
    assert info["torch"]


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: salrank" in capsys.readouterr().out


def test_banner_labels_sample_results():
    text = banner_text(get_settings(profile="sample"))
    assert SAMPLE_WARNING in text and "`sample`" in text
    full = banner_text(get_settings(profile="full", data_root="/data/salicon"))
    assert SAMPLE_WARNING not in full
    assert "/data/salicon" in full
