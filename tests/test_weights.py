"""The pretrained-weight registry, its resolution order, the offline error and ``salrank weights``."""

from __future__ import annotations

import hashlib
import json
import socket
import time

import pytest

from salrank import weights
from salrank.cli import main
from salrank.weights import ChecksumError, WeightsNotFoundError, WeightSpec, get_spec, resolve


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network; empty SALRANK_WEIGHTS and torch cache under tmp_path."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("SALRANK_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


@pytest.fixture
def known_file(tmp_path, monkeypatch):
    """A registered spec whose checksum matches a small file we write."""
    content = b"salrank test weights"
    spec = WeightSpec(name="test.tiny", filename="tiny-weights.pth", url="https://example.invalid/tiny-weights.pth",
                      sha256=hashlib.sha256(content).hexdigest()[:10])
    monkeypatch.setitem(weights._REGISTRY, spec.name, spec)
    return spec, content


def test_registry_urls_match_effdet_and_torchvision():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import effdet
    from torchvision.models import get_model_weights

    for d in range(8):
        spec = get_spec(f"tf_efficientdet_d{d}.coco")
        assert spec.url == effdet.get_efficientdet_config(f"tf_efficientdet_d{d}").url
        assert spec.url.endswith(spec.filename) and spec.filename.split("-")[-1].startswith(spec.sha256)
    for model in ["fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
                  "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn", "ssd300_vgg16",
                  "ssdlite320_mobilenet_v3_large"]:
        spec = get_spec(f"{model}.tv_coco")
        assert spec.url == get_model_weights(model).COCO_V1.url
        assert spec.url.endswith(spec.filename)
    assert get_spec("resnet101.tv_in1k").url == get_model_weights("resnet101").IMAGENET1K_V1.url


def test_resolution_order(offline, known_file, tmp_path, monkeypatch):
    spec, content = known_file
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / spec.filename).write_bytes(content)
    assert resolve(spec.name) == hub / spec.filename
    (tmp_path / "weights" / spec.filename).write_bytes(content)
    assert resolve(spec.name) == tmp_path / "weights" / spec.filename
    explicit = tmp_path / "elsewhere.pth"
    explicit.write_bytes(content)
    assert resolve(spec.name, explicit) == explicit
    assert resolve(spec.name, tmp_path / "weights") == tmp_path / "weights" / spec.filename  # a folder
    with pytest.raises(WeightsNotFoundError, match="no weight file at"):
        resolve(spec.name, tmp_path / "missing.pth")


def test_offline_error_is_fast_and_names_url_and_path(offline):
    spec = get_spec("tf_efficientdet_d0.coco")
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as err:
        weights.load_state_dict(spec.name)
    assert time.perf_counter() - start < 10.0
    message = str(err.value)
    assert spec.url in message and str(offline / "weights" / spec.filename) in message
    assert "not reachable" in message


def test_checksum_mismatch_is_refused(offline, known_file):
    spec, _ = known_file
    (offline / "weights" / spec.filename).write_bytes(b"something else")
    with pytest.raises(ChecksumError, match="does not match"):
        resolve(spec.name)
    assert resolve(spec.name, check=False) == offline / "weights" / spec.filename


def test_cli_list_and_verify(offline, known_file, capsys):
    spec, content = known_file
    wrong = get_spec("resnet18.tv_in1k")
    (offline / "weights" / wrong.filename).write_bytes(b"not resnet18")
    (offline / "weights" / spec.filename).write_bytes(content)

    assert main(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[wrong.name]["path"] == str(offline / "weights" / wrong.filename)
    assert rows[wrong.name]["checksum"] == "MISMATCH"
    assert rows[spec.name]["checksum"] == "ok"
    assert rows["tf_efficientdet_d3.coco"]["path"] is None
    assert rows["unisal.salicon"]["file"] == "unisal_weights_best.pth"

    assert main(["weights", "list"]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith(wrong.name + " "))
    assert line.split() == [wrong.name, wrong.filename, str(offline / "weights" / wrong.filename), "[MISMATCH]"]
    assert "missing" in text

    assert main(["weights", "verify"]) == 2
    captured = capsys.readouterr()
    assert f"{wrong.name}: MISMATCH" in captured.out and f"{spec.name}: ok" in captured.out
    assert "resnet18.tv_in1k" in captured.err

    assert main(["weights", "verify", spec.name]) == 0
    assert main(["weights", "verify", "tf_efficientdet_d1.coco"]) == 2
    assert "missing" in capsys.readouterr().out
    assert main(["weights", "verify", "nope"]) == 2
    assert "unknown weights 'nope'" in capsys.readouterr().err


def test_cli_download_offline_says_where_to_put_the_file(offline, capsys):
    spec = get_spec("fasterrcnn_resnet50_fpn.tv_coco")
    start = time.perf_counter()
    assert main(["weights", "download", spec.name, "--quiet"]) == 2
    assert time.perf_counter() - start < 10.0
    err = capsys.readouterr().err
    assert spec.url in err and str(offline / "weights" / spec.filename) in err
    assert main(["weights", "download"]) == 2
    assert "--all" in capsys.readouterr().err
