"""A rehearsal tree: a stand-in for the full profile's data and weights, to run the real full path.

:func:`make_rehearsal_tree` writes, under ``DIR``:

* ``DIR/data`` (what ``SALRANK_DATA`` points at): a SALICON root in the documented layout,
  ``images/train/COCO_train2014_<id:012d>.jpg`` and ``images/val/COCO_val2014_<id:012d>.jpg``
  (640 x 480 SynthSal scenes under COCO-looking names and ids), the fixations both as the 2015
  JSON (``fixations/fixations_{train,val}2014.json``) and as the 2017 ``.mat`` files
  (``fixations/{train,val}/<stem>.mat``); the ASSR and IRSR trees (``ASSR/``, ``IRSR/``, the
  layouts :func:`salrank.data.peers.load_assr` / :func:`~salrank.data.peers.load_irsr` read, as
  the Table I page looks for them); the SynthSal objects as COCO 2014 instance annotations
  (``annotations/instances_{train,val}2014.json``, the reference objects of Table III-B's
  detection task); and saliency-map folders for the Fig. 9 page
  (``saliency_maps/<model>/<stem>.png``, :func:`salrank.analysis.efp.load_map_folder`).
* ``DIR/weights`` (what ``SALRANK_WEIGHTS`` points at): one file per weight the full profile
  loads, under its registered file name (:mod:`salrank.weights`) and in the published format:
  the model is built with random weights (seeded, ``pretrained=False``) and its state dict saved
  with ``torch.save`` as the publisher did (same keys, shapes and dtypes). The detectors' score
  biases are set so that random detectors still propose boxes. ``REHEARSAL.json`` lists every
  file with its SHA-256, so everything computed from them is labelled "rehearsal weights"
  (:func:`salrank.weights.weights_status`); their checksums differ from the published ones, so
  they load only with ``SALRANK_TRUST_WEIGHTS=1`` / ``verify=False``.

SALICON val is divided into the paper's val/test by :func:`salrank.data.scenes.salicon_val_count`
(the paper's 1,200 : 3,800 proportion on a small val set), so ``n_val``/``n_test`` are met for the
default sizes and approximated otherwise. Everything is written atomically; a finished part is
skipped when the command runs again with the same arguments (``DIR/.rehearsal-done.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from salrank.io import atomic_output, atomic_write_json

__all__ = [
    "DEFAULT_WEIGHTS",
    "EFP_MODELS",
    "RehearsalTree",
    "make_rehearsal_tree",
    "write_rehearsal_weights",
    "build_model_for",
    "export_lines",
]

#: the weights the full profile's pages and ``salrank reproduce`` load (salrank.weights names)
DEFAULT_WEIGHTS = (
    "unisal.salicon",
    "resnet101.tv_in1k",
    "tf_efficientdet_d0.coco",
    "fasterrcnn_resnet50_fpn.tv_coco",
    "retinanet_resnet50_fpn.tv_coco",
)
#: saliency-map folders written for the Fig. 9 page: name -> how the maps are made
EFP_MODELS = ("rehearsal_centre", "rehearsal_fixations")
_DONE = ".rehearsal-done.json"
_VERSION = 2  # 2: COCO instance annotations
#: version of the weight files' content (2: BatchNorm statistics of the backbones calibrated);
#: files of another version are written again
_WEIGHTS_FORMAT = 2


@dataclass(frozen=True)
class RehearsalTree:
    """Where a rehearsal tree lives: ``data`` (``SALRANK_DATA``) and ``weights`` (``SALRANK_WEIGHTS``)."""

    root: Path
    data: Path
    weights: Path
    n_train: int
    n_val: int
    n_test: int
    seed: int

    def env(self) -> dict[str, str]:
        """The environment of the full profile on this tree (rehearsal weights trusted)."""
        return {
            "SALRANK_PROFILE": "full",
            "SALRANK_DATA": str(self.data),
            "SALRANK_WEIGHTS": str(self.weights),
            "SALRANK_TRUST_WEIGHTS": "1",
        }


def export_lines(tree: RehearsalTree) -> list[str]:
    """The shell lines that point salrank at ``tree``."""
    return [
        f"export SALRANK_DATA={tree.data}",
        f"export SALRANK_WEIGHTS={tree.weights}",
    ]


def _coco_ids(rng: np.random.Generator, n: int, taken: set[int]) -> list[int]:
    """``n`` distinct COCO-2014-looking image ids (1 ... 581,929), sorted, not in ``taken``."""
    out: set[int] = set()
    while len(out) < n:
        for v in rng.integers(1, 581_930, size=2 * n):
            if int(v) not in taken and len(out) < n:
                out.add(int(v))
    taken |= out
    return sorted(out)


def _copy_atomic(src: Path, dest: Path) -> None:
    with open(src, "rb") as f, atomic_output(dest, "wb") as out:
        shutil.copyfileobj(f, out)


def _write_salicon(data: Path, work: Path, n_train: int, n_val_total: int, seed: int, progress: bool) -> None:
    from salrank.data.salicon import Fixations, save_salicon_json, save_salicon_mat
    from salrank.data.synthsal import SALICON_LIKE, generate_dataset

    ds = generate_dataset(work / "synthsal", n_train, n_val_total, 0, seed=seed, config=SALICON_LIKE,
                          progress=progress)
    rng = np.random.default_rng([seed, 2014])
    taken: set[int] = set()
    for split, n in (("train", n_train), ("val", n_val_total)):
        part = ds.load(split, cache=False, progress=False) if n else None
        ids = _coco_ids(rng, n, taken)
        renamed: dict[str, Fixations] = {}
        instances = {"info": {"description": "salrank rehearsal: SynthSal objects as COCO instances"},
                     "images": [], "annotations": [], "categories": [{"id": 1, "name": "object"}]}
        for image_id, stem in zip(ids, part.stems if part else [], strict=True):
            coco = f"COCO_{split}2014_{image_id:012d}"
            fx = part.fixations[stem]
            renamed[coco] = Fixations(fx.points, fx.observer, fx.height, fx.width, image_id=image_id,
                                      file_name=f"{coco}.jpg")
            _copy_atomic(part.image_paths[stem], data / "images" / split / f"{coco}.jpg")
            save_salicon_mat(data / "fixations" / split, coco, renamed[coco])
            instances["images"].append({"id": image_id, "file_name": f"{coco}.jpg", "width": fx.width,
                                        "height": fx.height})
            for x1, y1, x2, y2 in np.asarray(part.boxes.get(stem, np.zeros((0, 4))), np.float64).tolist():
                w, h = x2 - x1, y2 - y1
                instances["annotations"].append({"id": len(instances["annotations"]) + 1, "image_id": image_id,
                                                 "category_id": 1, "bbox": [x1, y1, w, h], "area": w * h,
                                                 "iscrowd": 0})
        save_salicon_json(data / "fixations" / f"fixations_{split}2014.json", renamed)
        atomic_write_json(data / "annotations" / f"instances_{split}2014.json", instances)


def _write_efp_maps(data: Path, n_maps: int | None) -> None:
    """Saliency-map folders for the Fig. 9 page: a centre-bias and a blurred-fixation "model" for
    the SALICON val images (the paper's test images come from SALICON val)."""
    from salrank.analysis.efp import centre_bias_map, save_map_folder
    from salrank.data.fixation_map import fixation_map
    from salrank.data.salicon import load_salicon

    fixations = load_salicon(data / "fixations" / "fixations_val2014.json", cache=False, progress=False)
    stems = sorted(fixations)[:n_maps]
    centre = {s: centre_bias_map((fixations[s].height, fixations[s].width), 0.3) for s in stems}
    save_map_folder(centre, data / "saliency_maps" / "rehearsal_centre")
    blurred = {s: fixation_map(fixations[s], sigma=25.0) for s in stems}
    save_map_folder(blurred, data / "saliency_maps" / "rehearsal_fixations")


# --- weights ----------------------------------------------------------------------------------
def build_model_for(name: str):
    """The ``torch.nn.Module`` whose state dict is the published file ``name`` (random weights,
    built offline). Raises ``KeyError`` for a weight the rehearsal cannot build."""
    import torchvision

    if name == "unisal.salicon":
        from salrank.models.unisal import UNISAL

        return UNISAL()
    if name.startswith("resnet") and name.endswith("_in1k"):
        return getattr(torchvision.models, name.split(".")[0])(weights=None)
    if name.startswith("tf_efficientdet_d"):
        from salrank.proposals.backends.effdet import _import_effdet

        effdet = _import_effdet()
        config = effdet.get_efficientdet_config(name.split(".")[0])
        return effdet.EfficientDet(config, pretrained_backbone=False)
    if name.endswith(".tv_coco"):
        from salrank.proposals.backends.torchvision import build_torchvision_model

        return build_torchvision_model(name.split(".")[0], pretrained_layout=True)
    raise KeyError(f"the rehearsal cannot build weights {name!r}")


def _make_detector_propose(name: str, model) -> None:
    """Random detectors score every class near 0.01 (the focal-loss prior) or 1/91 (softmax),
    below the 0.05 threshold: lift the class scores so that they propose boxes, as trained ones do."""
    import torch

    with torch.no_grad():
        if name.startswith("tf_efficientdet_d"):
            predict = model.class_net.predict
            (predict.conv_pw if hasattr(predict, "conv_pw") else predict).bias.fill_(0.0)
        elif name.startswith("retinanet"):
            model.head.classification_head.cls_logits.bias.fill_(0.0)
        elif name.startswith("fasterrcnn"):
            cls = model.roi_heads.box_predictor.cls_score
            cls.bias.zero_()
            cls.bias[0] = -4.0  # background unlikely: the foreground classes share the rest


def _smooth_noise(n: int, size: int, generator):
    """``n`` images ``(3, size, size)`` of unit-variance noise summed over spatial scales (2 to
    ``size`` pixels): spatially correlated like photographs, unlike white noise."""
    import torch
    import torch.nn.functional as F

    out = torch.zeros(n, 3, size, size)
    for scale in (2, 4, 8, 16, 32, 64, size):
        coarse = torch.randn(n, 3, scale, scale, generator=generator)
        out += F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)
    return out / out.std()


def _calibrate_batch_norm(name: str, model, batches: int = 2, batch_size: int = 4) -> None:
    """Give a random torchvision ResNet the feature scale of a pretrained one.

    As built, a random ResNet101's pooled features on a photograph reach 1e2-1e4 (each residual
    stage adds a unit-variance branch to its input), where a pretrained network's stay near 0.5,
    and training FOSRNet on them diverges. So, as a data-dependent initialisation: the last
    BatchNorm of every residual branch gets weight 0.2, and all BatchNorm running statistics are
    set from a few forward passes on smooth noise (:func:`_smooth_noise`, ImageNet-normalised
    scale). The pooled features on the rehearsal's images then have a mean magnitude near 0.5.
    Keys, shapes and dtypes are unchanged; other models are left as built."""
    import torch
    import torchvision

    if not (name.startswith("resnet") and name.endswith("_in1k")):
        return
    blocks = (torchvision.models.resnet.Bottleneck, torchvision.models.resnet.BasicBlock)
    with torch.no_grad():
        for block in model.modules():
            if isinstance(block, blocks):
                last = block.bn3 if isinstance(block, torchvision.models.resnet.Bottleneck) else block.bn2
                last.weight.fill_(0.2)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    generator = torch.Generator().manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(_smooth_noise(batch_size, 224, generator))
    for m in norms:
        m.momentum = 0.1  # torchvision's default
    model.eval()


def write_rehearsal_weights(
    directory: str | os.PathLike, names=DEFAULT_WEIGHTS, *, seed: int = 0, progress: bool = True
) -> dict[str, Path]:
    """Write a random-valued file for each weights ``name`` into ``directory`` under its registered
    file name, in the published format (``torch.save`` of the state dict), plus ``REHEARSAL.json``.
    Existing files listed in the manifest with their digest are kept. Returns ``{name: path}``."""
    import torch
    from tqdm.auto import tqdm

    from salrank.weights import REHEARSAL_MANIFEST, get_spec, sha256sum

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / REHEARSAL_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    files = manifest.setdefault("files", {})
    manifest["note"] = ("Rehearsal weights: random values in the published format, written by "
                        "salrank rehearsal. NOT pretrained; results computed from them are not the paper's.")
    out: dict[str, Path] = {}
    for name in tqdm(list(names), desc="rehearsal weights", unit="file", disable=not progress):
        spec = get_spec(name)
        path = directory / spec.filename
        listed = files.get(spec.filename)
        if (listed and path.is_file() and listed.get("seed") == seed and listed.get("format") == _WEIGHTS_FORMAT
                and listed.get("sha256") == sha256sum(path)):
            out[name] = path
            continue
        digest = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1_000_003 + digest)
            model = build_model_for(name)
            _calibrate_batch_norm(name, model)
        _make_detector_propose(name, model)
        with atomic_output(path, "wb") as f:
            torch.save(model.state_dict(), f)
        files[spec.filename] = {"name": name, "sha256": sha256sum(path), "seed": seed, "format": _WEIGHTS_FORMAT,
                                "bytes": path.stat().st_size}
        atomic_write_json(manifest_path, manifest, indent=1)  # after every file: resumable
        out[name] = path
    atomic_write_json(manifest_path, manifest, indent=1)
    return out


def make_rehearsal_tree(
    directory: str | os.PathLike,
    *,
    n_train: int = 24,
    n_val: int = 5,
    n_test: int = 15,
    n_peers: int = 3,
    seed: int = 0,
    weights=DEFAULT_WEIGHTS,
    progress: bool = True,
) -> RehearsalTree:
    """Write (or finish) a rehearsal tree in ``directory`` (see the module docstring).

    ``n_train``: SALICON train images; ``n_val + n_test``: SALICON val images (divided into the
    paper's val/test by :func:`salrank.data.scenes.salicon_val_count`); ``n_peers``: images per
    split of the ASSR and IRSR trees; ``weights``: the salrank.weights names written.
    """
    from salrank.data.peers import make_demo_tree

    for label, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("n_peers", n_peers)):
        if n < 1:
            raise ValueError(f"{label} must be >= 1, got {n}")
    root = Path(directory).expanduser().resolve()
    tree = RehearsalTree(root, root / "data", root / "weights", n_train, n_val, n_test, seed)
    spec = {"version": _VERSION, "n_train": n_train, "n_val": n_val, "n_test": n_test, "n_peers": n_peers,
            "seed": seed, "weights": sorted(weights)}
    done_path = root / _DONE
    try:
        done = json.loads(done_path.read_text())
    except (OSError, ValueError):
        done = {}
    if done.get("spec") not in (None, spec):
        raise FileExistsError(f"{root} holds a rehearsal tree made with other arguments ({done['spec']}); "
                              "choose another directory or delete it")
    parts = done.setdefault("parts", [])

    def step(part: str, fn) -> None:
        if part in parts:
            return
        fn()
        parts.append(part)
        atomic_write_json(done_path, {"spec": spec, "parts": parts}, indent=1)

    step("salicon", lambda: _write_salicon(tree.data, root / ".work", n_train, n_val + n_test, seed, progress))
    step("peers", lambda: make_demo_tree(tree.data, n_images=n_peers, image_size=(240, 320), seed=seed))
    step("saliency_maps", lambda: _write_efp_maps(tree.data, None))
    step(f"weights-{_WEIGHTS_FORMAT}", lambda: write_rehearsal_weights(tree.weights, weights, seed=seed, progress=progress))
    shutil.rmtree(root / ".work", ignore_errors=True)
    return tree


def tree_summary(tree: RehearsalTree) -> dict:
    """JSON-able description of ``tree`` (sizes and folders)."""
    out = asdict(tree)
    return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}
