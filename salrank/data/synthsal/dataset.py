"""SynthSal datasets on disk: the resumable, idempotent writer :func:`generate_dataset`, the reader
:func:`load_synthsal` and the cached sample :func:`sample_synthsal` (see :mod:`salrank.data.synthsal`)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from salrank.data.salicon import Fixations, load_salicon, save_salicon_json
from salrank.data.synthsal.config import FORMAT_VERSION, SAMPLE_SPLITS, SPLITS, SynthSalConfig
from salrank.data.synthsal.scene import Scene, generate_scene, scene_seed
from salrank.io import atomic_write_bytes, atomic_write_json

_SPLIT_CODE = {"train": 1, "val": 2, "test": 3}
_MANIFEST = "manifest.json"
_JPEG_QUALITY = 92
_IN_PROGRESS = "generating.json"


def scene_stem(split: str, index: int) -> str:
    """File stem of scene ``index`` of ``split``, e.g. ``synthsal_train_000007``."""
    return f"synthsal_{split}_{index:06d}"


def _image_id(split: str, index: int) -> int:
    return _SPLIT_CODE[split] * 10_000_000 + index + 1


# Layout of a dataset directory:
#
#   images/{split}/synthsal_{split}_{index:06d}.jpg   (absent with write_images=False)
#   fixations_{split}.json     SALICON 2015 JSON, written by save_salicon_json
#   objects_{split}.json       COCO-style objects: bbox [x, y, w, h] + salience, shape, colour, ...
#   generating.json            the spec being generated (present only while incomplete)
#   manifest.json              the spec + config hash, written last: its presence = complete


def _dataset_spec(splits: Mapping[str, int], seed: int, config: SynthSalConfig, write_images: bool,
                  image_format: str) -> dict:
    for name, n in splits.items():
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        if int(n) < 0:
            raise ValueError(f"n_{name} must be >= 0, got {n}")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    spec = {
        "generator": "salrank.data.synthsal",
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "splits": {name: int(splits[name]) for name in SPLITS if name in splits},
        "config": asdict(config),
        "write_images": bool(write_images),
        "image_format": image_format if write_images else None,
        "jpeg_quality": _JPEG_QUALITY if write_images and image_format == "jpg" else None,
    }
    spec = json.loads(json.dumps(spec))  # tuples -> lists, as read back from disk
    spec["config_hash"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return spec


def _read_json(path: Path):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _encode_image(image: np.ndarray, image_format: str) -> bytes:
    import io

    buf = io.BytesIO()
    if image_format == "jpg":
        Image.fromarray(image).save(buf, format="JPEG", quality=_JPEG_QUALITY)
    else:
        Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _object_records(scene: Scene, image_id: int) -> list[dict]:
    """COCO-style annotations of a scene's objects (ids are filled in by the caller)."""
    from pycocotools import mask as mask_utils

    label_t = np.ascontiguousarray(scene.label_map.T)  # (W, H): its masks' transposes are Fortran-ordered
    records = []
    for k, (obj, box) in enumerate(zip(scene.objects, scene.boxes, strict=True)):
        x1, y1, x2, y2 = (int(v) for v in box)
        rle = mask_utils.encode((label_t == k).view(np.uint8).T)
        rec = {
            "image_id": image_id,
            "category_id": 1,
            "index": k,
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": obj["visible_area"],
            "iscrowd": 0,
            "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "salience": obj["salience"],
        }
        rec.update({key: value for key, value in obj.items() if key not in rec and key != "visible_area"})
        records.append(rec)
    return records


def _make_scene(job: tuple) -> tuple[str, Fixations, dict, list[dict]]:
    """Generate scene ``index`` of ``split`` and write its image; runs in worker processes too."""
    split, index, seed, config, image_path, image_format, skip_existing = job
    stem = scene_stem(split, index)
    image_id = _image_id(split, index)
    ext = image_format or "jpg"
    scene = generate_scene(scene_seed(seed, split, index), config, image_id=image_id, file_name=f"{stem}.{ext}")
    if image_path is not None and not (skip_existing and Path(image_path).is_file()):
        atomic_write_bytes(Path(image_path), _encode_image(scene.image, image_format))
    image = {"id": image_id, "file_name": f"{stem}.{ext}", "stem": stem, "height": config.height,
             "width": config.width, "n_objects": len(scene.objects), "background": scene.background}
    return stem, scene.fixations, image, _object_records(scene, image_id)


def _remove_outputs(root: Path) -> None:
    """Delete what a previous (different or unfinished) generation left; only our own file names."""
    for name in [_MANIFEST, *(f"{kind}_{s}.json" for kind in ("fixations", "objects") for s in SPLITS)]:
        (root / name).unlink(missing_ok=True)
    for split in SPLITS:
        folder = root / "images" / split
        if folder.is_dir():
            for path in folder.glob(f"synthsal_{split}_*"):
                path.unlink()


@dataclass(frozen=True)
class SynthSalDataset:
    """A complete SynthSal dataset on disk (see :func:`generate_dataset`)."""

    root: Path
    manifest: dict

    @property
    def config(self) -> SynthSalConfig:
        """The scene/observer model it was generated with."""
        raw = dict(self.manifest["config"])
        for key, value in raw.items():
            if isinstance(value, list):
                raw[key] = tuple(value)
        return SynthSalConfig(**raw)

    @property
    def config_hash(self) -> str:
        return self.manifest["config_hash"]

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def splits(self) -> dict[str, int]:
        """Number of images per split."""
        return dict(self.manifest["splits"])

    @property
    def has_images(self) -> bool:
        return bool(self.manifest["write_images"])

    def fixations_path(self, split: str) -> Path:
        """The split's SALICON 2015 JSON."""
        return self.root / f"fixations_{split}.json"

    def objects_path(self, split: str) -> Path:
        """The split's COCO-style object annotations."""
        return self.root / f"objects_{split}.json"

    def load(self, split: str, **kwargs) -> SynthSalSplit:
        """:func:`load_synthsal` of one split."""
        return load_synthsal(self.root, split, **kwargs)


@dataclass
class SynthSalSplit:
    """One split of a SynthSal dataset, keyed by image file stem (in file order).

    ``boxes[stem]``: (K, 4) float64 ``[x1, y1, x2, y2]`` of the visible masks, exclusive
    right/bottom edges; ``salience[stem]``: (K,) float64 planted salience; ``objects[stem]``:
    the K annotation records (shape, colour, features, RLE ``segmentation`` of the visible
    mask, ...); ``image_paths`` is empty for datasets generated without images.
    """

    name: str
    root: Path
    image_size: tuple[int, int]
    fixations: dict[str, Fixations]
    boxes: dict[str, np.ndarray]
    salience: dict[str, np.ndarray]
    objects: dict[str, list[dict]]
    image_ids: dict[str, int]
    image_paths: dict[str, Path]

    @property
    def stems(self) -> list[str]:
        return list(self.boxes)

    def __len__(self) -> int:
        return len(self.boxes)

    def masks(self, stem: str) -> np.ndarray:
        """(K, H, W) bool visible masks of the objects of ``stem`` (decoded from COCO RLE)."""
        from pycocotools import mask as mask_utils

        objs = self.objects[stem]
        if not objs:
            return np.zeros((0, *self.image_size), dtype=bool)
        rles = [{"size": o["segmentation"]["size"], "counts": o["segmentation"]["counts"].encode()} for o in objs]
        with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning
            warnings.simplefilter("ignore", DeprecationWarning)
            decoded = mask_utils.decode(rles)
        return np.moveaxis(decoded, -1, 0).astype(bool)


def generate_dataset(
    out_dir: str | os.PathLike,
    n_train: int = SAMPLE_SPLITS["train"],
    n_val: int = SAMPLE_SPLITS["val"],
    n_test: int = SAMPLE_SPLITS["test"],
    seed: int = 0,
    config: SynthSalConfig | None = None,
    *,
    write_images: bool = True,
    image_format: str = "jpg",
    overwrite: bool = False,
    workers: int = 1,
    progress: bool = True,
) -> SynthSalDataset:
    """Generate (or reuse) a SynthSal dataset in ``out_dir``; idempotent and resumable.

    Writes ``images/{split}/<stem>.jpg`` (or ``.png``; none when ``write_images=False``, for
    fast scale runs: the fixations and objects are identical either way),
    ``fixations_{split}.json`` (SALICON 2015 JSON via :func:`save_salicon_json`),
    ``objects_{split}.json`` (COCO-style, see :class:`SynthSalSplit`) and, last,
    ``manifest.json`` holding the spec and its ``config_hash``.

    * A complete dataset with the same spec is reused without writing anything.
    * A complete dataset with another spec raises :class:`FileExistsError` unless
      ``overwrite=True``.
    * An unfinished one (no manifest) generated with the same spec is resumed: finished splits
      and already written images are kept. Anything else found there is regenerated.

    Every file is written atomically. Scene ``i`` of a split depends only on ``(seed, split,
    i)`` and ``config``, never on the split sizes; ``workers > 1`` generates in that many
    processes with identical output. Stems are ``synthsal_{split}_{i:06d}`` and image ids
    ``{1, 2, 3}e7 + i + 1`` for train/val/test.
    """
    cfg = config or SynthSalConfig()
    root = Path(out_dir).expanduser()
    spec = _dataset_spec({"train": n_train, "val": n_val, "test": n_test}, seed, cfg, write_images, image_format)
    manifest_path = root / _MANIFEST
    replacing = manifest_path.is_file()
    if replacing:
        existing = _read_json(manifest_path)
        if existing.get("config_hash") == spec["config_hash"]:
            return SynthSalDataset(root, existing)
        if not overwrite:
            raise FileExistsError(
                f"{root} holds a SynthSal dataset with config hash {existing.get('config_hash')!r}, "
                f"not {spec['config_hash']!r}; pass overwrite=True or choose another directory"
            )
    root.mkdir(parents=True, exist_ok=True)
    marker = root / _IN_PROGRESS
    resume = not replacing and marker.is_file() and _read_json(marker).get("config_hash") == spec["config_hash"]
    if not resume:
        _remove_outputs(root)
        atomic_write_json(marker, spec)
    for split, n in spec["splits"].items():
        fix_path, obj_path = root / f"fixations_{split}.json", root / f"objects_{split}.json"
        if resume and fix_path.is_file() and obj_path.is_file():
            continue  # finished before the interruption
        image_dir = root / "images" / split
        jobs = (
            (split, i, spec["seed"], cfg,
             image_dir / f"{scene_stem(split, i)}.{image_format}" if write_images else None,
             image_format if write_images else None, resume)
            for i in range(n)
        )
        fixations: dict[str, Fixations] = {}
        images, annotations = [], []
        for stem, fx, image, records in tqdm(_run_jobs(_make_scene, jobs, workers), total=n,
                                            desc=f"SynthSal {split}", unit="scene", disable=not progress):
            fixations[stem] = fx
            images.append(image)
            for rec in records:
                annotations.append({"id": len(annotations) + 1, **rec})
        objects = {
            "info": {"description": f"SynthSal objects, split {split}", "config_hash": spec["config_hash"],
                     "seed": spec["seed"], "split": split, "format_version": FORMAT_VERSION},
            "categories": [{"id": 1, "name": "object", "supercategory": "object"}],
            "images": images,
            "annotations": annotations,
        }
        atomic_write_json(obj_path, objects)
        save_salicon_json(fix_path, fixations)
    atomic_write_json(manifest_path, spec)
    marker.unlink(missing_ok=True)
    return SynthSalDataset(root, spec)


def _run_jobs(fn, jobs, workers: int) -> Iterator:
    if workers <= 1:
        yield from map(fn, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, jobs, chunksize=8)


def load_synthsal(root: str | os.PathLike, split: str, *, cache: bool | str | os.PathLike = True,
                  progress: bool = False) -> SynthSalSplit:
    """Read one split of a complete SynthSal dataset.

    Fixations come from :func:`load_salicon` (``cache`` and ``progress`` are passed on);
    boxes are converted from COCO ``[x, y, w, h]`` to ``[x1, y1, x2, y2]`` float64.

    Raises:
        FileNotFoundError: ``root`` has no ``manifest.json`` (missing or unfinished dataset).
        ValueError: ``split`` is not in the dataset, or ``objects_{split}.json`` is malformed.
    """
    root = Path(root).expanduser()
    manifest_path = root / _MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{root}: no {_MANIFEST}; not a complete SynthSal dataset (run generate_dataset)")
    manifest = _read_json(manifest_path)
    if split not in manifest.get("splits", {}):
        raise ValueError(f"{root}: no split {split!r}; it has {sorted(manifest.get('splits', {}))}")
    image_size = (int(manifest["config"]["height"]), int(manifest["config"]["width"]))
    fixations = load_salicon(root / f"fixations_{split}.json", cache=cache, progress=progress)
    obj_path = root / f"objects_{split}.json"
    data = _read_json(obj_path)
    try:
        stems = {img["id"]: img["stem"] for img in data["images"]}
        per_image: dict[str, list[dict]] = {stem: [] for stem in stems.values()}
        for i, ann in enumerate(data["annotations"]):
            if ann["image_id"] not in stems:
                raise ValueError(f"{obj_path}: annotations[{i}].image_id {ann['image_id']!r} is not in images[]")
            per_image[stems[ann["image_id"]]].append(ann)
        boxes, salience = {}, {}
        for stem, anns in per_image.items():
            anns.sort(key=lambda a: a["index"])
            xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
            boxes[stem] = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            salience[stem] = np.array([a["salience"] for a in anns], dtype=np.float64)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{obj_path}: malformed SynthSal objects file (missing or bad field {exc})") from None
    missing = set(per_image) - set(fixations)
    if missing:
        raise ValueError(f"{root}: {len(missing)} image(s) of objects_{split}.json have no fixations, "
                         f"e.g. {sorted(missing)[0]}")
    image_paths = {}
    if manifest.get("write_images"):
        image_paths = {img["stem"]: root / "images" / split / img["file_name"] for img in data["images"]}
    return SynthSalSplit(
        name=split, root=root, image_size=image_size,
        fixations={stem: fixations[stem] for stem in per_image},
        boxes=boxes, salience=salience, objects=per_image,
        image_ids={stem: image_id for image_id, stem in stems.items()},
        image_paths=image_paths,
    )


def _check_complete(root: Path, spec: dict) -> bool:
    """Raise ``ValueError`` unless ``root`` holds the complete dataset of ``spec``: the manifest,
    both JSON files of every split (parsed, with one entry per scene) and every image file (non-empty)."""
    manifest = _read_json(root / _MANIFEST)
    if manifest != spec:
        return False  # another dataset: generate_dataset decides
    for split, n in spec["splits"].items():
        objects = _read_json(root / f"objects_{split}.json")
        fixations = _read_json(root / f"fixations_{split}.json")
        if not isinstance(objects, dict) or len(objects.get("images", [])) != n or not fixations:
            raise ValueError(f"split {split}: {n} scenes expected")
        if spec.get("write_images"):
            for image in objects["images"]:
                path = root / "images" / split / image["file_name"]
                if not path.is_file() or path.stat().st_size == 0:
                    raise ValueError(f"missing or empty image {path}")
    return True


def sample_synthsal(settings=None, *, progress: bool = True) -> SynthSalDataset:
    """The sample-profile dataset (400/100/100 scenes, seed 0, default config, JPEG images).

    Generated on first use (about 15 s on one CPU core, 40 MB) under
    ``salrank.config.cache_dir("synthsal", <config hash>)`` and reused afterwards.
    ``settings``: a :class:`salrank.config.Settings` (default: from the environment).
    """
    from salrank.config import cache_dir

    cfg = SynthSalConfig()
    spec = _dataset_spec(SAMPLE_SPLITS, 0, cfg, True, "jpg")
    root = cache_dir("synthsal", spec["config_hash"], settings=settings)
    from salrank.cache import read_cache_entry

    # a damaged sample loses its manifest (with a warning), so generate_dataset makes it afresh
    read_cache_entry(root / _MANIFEST, lambda _: _check_complete(root, spec), what="SynthSal sample cache")
    return generate_dataset(root, **{f"n_{k}": v for k, v in SAMPLE_SPLITS.items()}, seed=0, config=cfg,
                            progress=progress)
