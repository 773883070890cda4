"""Peer saliency-ranking datasets: ASSR (Siris et al., CVPR 2020) and IRSR (Liu et al., TPAMI 2021).

Both are built on SALICON images (COCO 2014) with instance masks. :func:`load_assr` and
:func:`load_irsr` read the layouts their authors distribute (``book/conventions.md``) into a
:class:`PeerDataset`: per image stem, boxes ``[x1, y1, x2, y2]`` (float64 pixels of the original
image), ground-truth ranks in salrank's convention (int64, 1 = most salient, 0 = not salient),
the raw rank values as stored in the files, the COCO segmentations (decoded to masks on demand
with :mod:`pycocotools`) and the image path.

ASSR layout (``root`` = the folder holding ``images/``)::

    images/{split}/<stem>.jpg              split in train, val, test
    gt/{split}/<stem>.png                  rank maps (optional here)
    rank_order/{split}/<stem>.json         {"rank_order": [value per object]}
    obj_seg_data_{split}.json              [{"img": <stem>, "object_data": [{"bbox": [x1, y1, x2, y2],
                                             "segmentation": <COCO polygon or RLE>}, ...]}, ...]

ASSR rank values (``rank_order``, aligned with ``object_data``): 1.0, 0.9, 0.8, 0.7, 0.6 for the
top five objects, <= 0.5 for objects that are not salient (0 = never looked at). Conversion:
objects with a value > 0.5 get ranks 1, 2, ... in descending order of value (ties: the lower
object index first); the others get 0.

IRSR layout (``root`` = the folder holding ``Annotations/``)::

    Annotations/{split}.pkl                split in train, test; a list of records
                                           {"file_name", "annotations": [{"bbox": [x, y, w, h],
                                            "segmentation", "is_person"}, ...], "rank": [int, ...]}
    Images/{split}/rgb/<stem>.jpg          images
    Images/{split}/gt/<stem>.png           rank maps (optional here)

IRSR rank values: one non-negative integer per object, higher = more salient (0 = the least
salient, still a salient object: every annotated IRSR object is ranked). Conversion: rank =
1 + position in descending order of value (ties: the lower object index first), so
``n - value`` for values ``0 .. n-1``; no object gets 0. A record may carry detectron2's
``bbox_mode`` (0 = ``XYXY_ABS``, 1 = ``XYWH_ABS``, the default); the pickle is read with a
restricted unpickler (plain Python and NumPy values, detectron2's ``BoxMode`` mapped to a
stand-in), so neither detectron2 nor arbitrary code is needed or run.

:func:`make_demo_tree` writes tiny synthetic trees in both layouts (a format demo for the book
and the tests, not data).
"""

from __future__ import annotations

import enum
import json
import os
import pickle
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from salrank.gt.ranking import ranks_from_scores
from salrank.io import atomic_write_bytes

__all__ = [
    "ASSR_SPLITS",
    "IRSR_SPLITS",
    "ASSR_SALIENT_THRESHOLD",
    "PeerFormatError",
    "PeerImage",
    "PeerDataset",
    "load_assr",
    "load_irsr",
    "assr_ranks",
    "irsr_ranks",
    "decode_segmentation",
    "make_demo_tree",
]

ASSR_SPLITS = ("train", "val", "test")
IRSR_SPLITS = ("train", "test")
#: ASSR objects with a rank value above this are the (top-5) salient ones.
ASSR_SALIENT_THRESHOLD = 0.5


class PeerFormatError(ValueError):
    """A peer dataset file does not have the documented layout (the message names file and field)."""


# ----------------------------------------------------------------------------- rank conversions


def _finite_values(values, what: str) -> np.ndarray:
    try:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise PeerFormatError(f"{what}: expected a list of numbers, got {values!r:.80}") from None
    if not np.isfinite(v).all():
        raise PeerFormatError(f"{what}: contains NaN or infinite values")
    return v


def assr_ranks(values, what: str = "rank_order") -> np.ndarray:
    """ASSR rank values -> salrank ranks (int64): values > 0.5 ranked 1.. by descending value
    (ties: lower index first), others 0. Values must lie in [0, 1]."""
    v = _finite_values(values, what)
    if ((v < 0) | (v > 1)).any():
        raise PeerFormatError(f"{what}: ASSR rank values lie in [0, 1], got {v.min():g} .. {v.max():g}")
    return ranks_from_scores(np.where(v > ASSR_SALIENT_THRESHOLD, v, 0.0))


def irsr_ranks(values, what: str = "rank") -> np.ndarray:
    """IRSR rank values (non-negative integers, higher = more salient) -> salrank ranks (int64):
    1 + position in descending order (ties: lower index first); every object is ranked."""
    v = _finite_values(values, what)
    if (v < 0).any() or (v != np.round(v)).any():
        raise PeerFormatError(f"{what}: IRSR ranks are non-negative integers, got {v.tolist()}")
    return ranks_from_scores(v + 1.0)


# ----------------------------------------------------------------------------- masks


def decode_segmentation(segmentation, image_size: tuple[int, int], what: str = "segmentation") -> np.ndarray:
    """A COCO segmentation (polygon list, uncompressed RLE or compressed RLE) -> ``(H, W)`` bool mask.

    ``image_size`` is ``(height, width)``; an RLE must have that ``size``.
    """
    from pycocotools import mask as mask_utils

    height, width = (int(s) for s in image_size)
    try:
        if isinstance(segmentation, (list, tuple)):
            polygons = [np.asarray(p, dtype=np.float64).ravel().tolist() for p in segmentation]
            if not polygons or any(len(p) < 6 or len(p) % 2 for p in polygons):
                raise PeerFormatError(f"{what}: a polygon needs an even number (>= 6) of coordinates")
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        elif isinstance(segmentation, Mapping):
            size = [int(s) for s in segmentation["size"]]
            if size != [height, width]:
                raise PeerFormatError(f"{what}: RLE size {size} differs from the image size {[height, width]}")
            counts = segmentation["counts"]
            if isinstance(counts, (list, tuple, np.ndarray)):
                rle = mask_utils.frPyObjects({"size": size, "counts": [int(c) for c in counts]}, height, width)
            else:
                rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        else:
            raise PeerFormatError(f"{what}: expected a COCO polygon list or RLE dict, got {type(segmentation).__name__}")
        with warnings.catch_warnings():  # pycocotools' NumPy 2 "copy keyword" notice
            warnings.simplefilter("ignore", DeprecationWarning)
            mask = mask_utils.decode(rle)
    except PeerFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PeerFormatError(f"{what}: not a valid COCO segmentation ({exc!r})") from None
    return np.asarray(mask, dtype=bool).reshape(height, width)


# ----------------------------------------------------------------------------- containers


@dataclass(eq=False)
class PeerImage:
    """One image of a peer dataset.

    ``boxes`` ``(K, 4)`` float64 ``[x1, y1, x2, y2]`` pixels; ``ranks`` ``(K,)`` int64 in salrank's
    convention (1 = most salient, 0 = not salient); ``raw_ranks`` ``(K,)`` float64 as stored in
    the dataset's files; ``segmentations``: the COCO segmentation of each object (or ``None``);
    ``image_size`` ``(height, width)`` when the annotation states it (else read from the image
    on first use); ``gt_map_path``: the dataset's rank-map PNG, ``None`` when absent;
    ``is_person`` ``(K,)`` bool for IRSR, else ``None``.
    """

    stem: str
    image_path: Path
    boxes: np.ndarray
    ranks: np.ndarray
    raw_ranks: np.ndarray
    segmentations: tuple = ()
    image_size: tuple[int, int] | None = None
    gt_map_path: Path | None = None
    is_person: np.ndarray | None = None
    source: str = ""
    _masks: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.boxes)

    def size(self) -> tuple[int, int]:
        """``(height, width)``: from the annotation, else from the image file's header."""
        if self.image_size is None:
            from salrank.data.images import image_size

            self.image_size = image_size(self.image_path)
        return self.image_size

    def masks(self) -> np.ndarray:
        """``(K, H, W)`` bool instance masks, decoded with pycocotools on first call (then cached).

        Raises :class:`PeerFormatError` when an object has no segmentation.
        """
        if self._masks is None:
            size = self.size()
            out = np.zeros((len(self.boxes), *size), dtype=bool)
            for k, seg in enumerate(self.segmentations):
                what = f"{self.source}: image {self.stem!r} object {k} field 'segmentation'"
                if seg is None:
                    raise PeerFormatError(f"{what}: missing")
                out[k] = decode_segmentation(seg, size, what)
            self._masks = out
        return self._masks


@dataclass
class PeerDataset:
    """A split of ASSR or IRSR: ``images`` maps each stem to its :class:`PeerImage` (sorted by stem)."""

    name: str
    split: str
    root: Path
    images: dict[str, PeerImage]

    @property
    def stems(self) -> list[str]:
        return list(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, stem: str) -> PeerImage:
        return self.images[stem]

    def __iter__(self) -> Iterator[PeerImage]:
        return iter(self.images.values())

    @property
    def boxes(self) -> dict[str, np.ndarray]:
        """``{stem: (K, 4) [x1, y1, x2, y2]}``."""
        return {s: im.boxes for s, im in self.images.items()}

    @property
    def ranks(self) -> dict[str, np.ndarray]:
        """``{stem: (K,) ranks}`` (1 = most salient, 0 = not salient)."""
        return {s: im.ranks for s, im in self.images.items()}

    def summary(self) -> dict:
        """Counts: images, objects, salient objects (rank > 0), objects per image (min/mean/max)."""
        per_image = np.array([len(im) for im in self], dtype=np.int64)
        salient = np.array([int((im.ranks > 0).sum()) for im in self], dtype=np.int64)
        return {
            "dataset": self.name,
            "split": self.split,
            "images": len(self),
            "objects": int(per_image.sum()),
            "salient objects": int(salient.sum()),
            "objects/image (min)": int(per_image.min()) if len(per_image) else 0,
            "objects/image (mean)": float(per_image.mean()) if len(per_image) else float("nan"),
            "objects/image (max)": int(per_image.max(initial=0)),
            "salient/image (max)": int(salient.max(initial=0)),
        }


# ----------------------------------------------------------------------------- readers


def _check_split(split: str, allowed: Sequence[str], name: str) -> None:
    if split not in allowed:
        raise ValueError(f"{name} has the splits {', '.join(allowed)}, not {split!r}")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PeerFormatError(f"{path}: not valid JSON ({exc})") from None


def _as_box(values, what: str) -> list[float]:
    try:
        box = [float(v) for v in values]
    except (TypeError, ValueError):
        raise PeerFormatError(f"{what}: expected 4 numbers, got {values!r:.80}") from None
    if len(box) != 4 or not np.isfinite(box).all():
        raise PeerFormatError(f"{what}: expected 4 finite numbers, got {values!r:.80}")
    return box


def _boxes_array(boxes: list[list[float]], what: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    bad = np.nonzero((arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1]))[0]
    if len(bad):
        raise PeerFormatError(f"{what}: object {int(bad[0])} has x2 < x1 or y2 < y1 ({arr[bad[0]].tolist()})")
    return arr


def _image_size_field(record: Mapping, what: str) -> tuple[int, int] | None:
    if "height" in record and "width" in record:
        try:
            return (int(record["height"]), int(record["width"]))
        except (TypeError, ValueError):
            raise PeerFormatError(f"{what}: fields 'height'/'width' are not integers") from None
    return None


def load_assr(root: str | os.PathLike, split: str = "test", *, check_images: bool = True) -> PeerDataset:
    """Load an ASSR split (layout and rank conversion: module docstring).

    ``check_images``: raise :class:`FileNotFoundError` when an annotated image is missing.
    Raises :class:`PeerFormatError` naming the file and field on malformed annotations.
    """
    _check_split(split, ASSR_SPLITS, "ASSR")
    root = Path(root)
    seg_path = root / f"obj_seg_data_{split}.json"
    data = _read_json(seg_path)
    if not isinstance(data, list):
        raise PeerFormatError(f"{seg_path}: expected a list of {{'img', 'object_data'}} records")
    images: dict[str, PeerImage] = {}
    for i, rec in enumerate(data):
        what = f"{seg_path}: entry {i}"
        if not isinstance(rec, Mapping) or "img" not in rec or "object_data" not in rec:
            raise PeerFormatError(f"{what}: needs the fields 'img' and 'object_data'")
        stem = Path(str(rec["img"])).stem
        if stem in images:
            raise PeerFormatError(f"{what}: image {stem!r} appears twice")
        objects = rec["object_data"]
        if not isinstance(objects, list):
            raise PeerFormatError(f"{what} ({stem}): field 'object_data' must be a list")
        boxes, segs = [], []
        for k, obj in enumerate(objects):
            owhat = f"{what} ({stem}) object {k}"
            if not isinstance(obj, Mapping) or "bbox" not in obj:
                raise PeerFormatError(f"{owhat}: needs the field 'bbox'")
            boxes.append(_as_box(obj["bbox"], f"{owhat} field 'bbox'"))
            segs.append(obj.get("segmentation"))
        rank_path = root / "rank_order" / split / f"{stem}.json"
        rank_data = _read_json(rank_path)
        if not isinstance(rank_data, Mapping) or "rank_order" not in rank_data:
            raise PeerFormatError(f"{rank_path}: needs the key 'rank_order'")
        raw = _finite_values(rank_data["rank_order"], f"{rank_path}: field 'rank_order'")
        if len(raw) != len(boxes):
            raise PeerFormatError(
                f"{rank_path}: field 'rank_order' has {len(raw)} values but {seg_path} lists "
                f"{len(boxes)} objects for {stem!r}"
            )
        image_path = root / "images" / split / f"{stem}.jpg"
        if check_images and not image_path.is_file():
            raise FileNotFoundError(f"image not found: {image_path} (listed in {seg_path})")
        gt_map = root / "gt" / split / f"{stem}.png"
        images[stem] = PeerImage(
            stem=stem,
            image_path=image_path,
            boxes=_boxes_array(boxes, f"{what} ({stem})"),
            ranks=assr_ranks(raw, f"{rank_path}: field 'rank_order'"),
            raw_ranks=raw,
            segmentations=tuple(segs),
            image_size=_image_size_field(rec, what),
            gt_map_path=gt_map if gt_map.is_file() else None,
            source=str(seg_path),
        )
    return PeerDataset(name="ASSR", split=split, root=root, images=dict(sorted(images.items())))


class _BoxMode(enum.IntEnum):
    """Stand-in for detectron2's ``BoxMode`` when unpickling IRSR annotations."""

    XYXY_ABS = 0
    XYWH_ABS = 1
    XYXY_REL = 2
    XYWH_REL = 3
    XYWHA_ABS = 4


class _AnnotationUnpickler(pickle.Unpickler):
    """Unpickles plain Python containers and NumPy arrays only (no arbitrary code)."""

    _ALLOWED = {
        ("collections", "OrderedDict"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):
        if module.startswith("detectron2.") and name == "BoxMode":
            return _BoxMode
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (IRSR annotations hold plain data)")


def _read_pickle(path: Path):
    try:
        with open(path, "rb") as f:
            return _AnnotationUnpickler(f).load()
    except FileNotFoundError:
        raise FileNotFoundError(f"file not found: {path}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError,
            ValueError) as exc:
        raise PeerFormatError(f"{path}: not a readable IRSR annotation pickle ({exc})") from None


def _irsr_box(obj: Mapping, mode, what: str) -> list[float]:
    box = _as_box(obj["bbox"], f"{what} field 'bbox'")
    mode = obj.get("bbox_mode", mode)
    try:
        mode = _BoxMode(int(mode))
    except (TypeError, ValueError):
        raise PeerFormatError(f"{what}: unknown 'bbox_mode' {mode!r}") from None
    if mode == _BoxMode.XYWH_ABS:
        x, y, w, h = box
        return [x, y, x + w, y + h]
    if mode == _BoxMode.XYXY_ABS:
        return box
    raise PeerFormatError(f"{what}: 'bbox_mode' {mode.name} is not supported (absolute XYWH or XYXY only)")


def load_irsr(root: str | os.PathLike, split: str = "test", *, check_images: bool = True) -> PeerDataset:
    """Load an IRSR split (layout and rank conversion: module docstring).

    ``check_images``: raise :class:`FileNotFoundError` when an annotated image is missing.
    Raises :class:`PeerFormatError` naming the file and field on malformed annotations.
    """
    _check_split(split, IRSR_SPLITS, "IRSR")
    root = Path(root)
    ann_path = root / "Annotations" / f"{split}.pkl"
    data = _read_pickle(ann_path)
    if not isinstance(data, list):
        raise PeerFormatError(f"{ann_path}: expected a list of records, got {type(data).__name__}")
    images: dict[str, PeerImage] = {}
    for i, rec in enumerate(data):
        what = f"{ann_path}: record {i}"
        if not isinstance(rec, Mapping) or not {"file_name", "annotations", "rank"} <= set(rec):
            raise PeerFormatError(f"{what}: needs the fields 'file_name', 'annotations' and 'rank'")
        name = Path(str(rec["file_name"])).name
        stem = Path(name).stem
        what = f"{what} ({name})"
        if stem in images:
            raise PeerFormatError(f"{what}: image {stem!r} appears twice")
        objects = rec["annotations"]
        if not isinstance(objects, list):
            raise PeerFormatError(f"{what}: field 'annotations' must be a list")
        boxes, segs, person = [], [], []
        for k, obj in enumerate(objects):
            owhat = f"{what} object {k}"
            if not isinstance(obj, Mapping) or "bbox" not in obj:
                raise PeerFormatError(f"{owhat}: needs the field 'bbox'")
            boxes.append(_irsr_box(obj, rec.get("bbox_mode", _BoxMode.XYWH_ABS), owhat))
            segs.append(obj.get("segmentation"))
            person.append(bool(obj.get("is_person", False)))
        raw = _finite_values(rec["rank"], f"{what} field 'rank'")
        if len(raw) != len(boxes):
            raise PeerFormatError(f"{what}: field 'rank' has {len(raw)} values for {len(boxes)} annotations")
        image_path = root / "Images" / split / "rgb" / name
        if check_images and not image_path.is_file():
            raise FileNotFoundError(f"image not found: {image_path} (listed in {ann_path})")
        gt_map = root / "Images" / split / "gt" / f"{stem}.png"
        images[stem] = PeerImage(
            stem=stem,
            image_path=image_path,
            boxes=_boxes_array(boxes, what),
            ranks=irsr_ranks(raw, f"{what} field 'rank'"),
            raw_ranks=raw,
            segmentations=tuple(segs),
            image_size=_image_size_field(rec, what),
            gt_map_path=gt_map if gt_map.is_file() else None,
            is_person=np.asarray(person, dtype=bool),
            source=str(ann_path),
        )
    return PeerDataset(name="IRSR", split=split, root=root, images=dict(sorted(images.items())))


# ----------------------------------------------------------------------------- demo trees


def _save_png(path: Path, array: np.ndarray, fmt: str = "PNG") -> None:
    import io

    from PIL import Image

    if array.dtype != np.uint8:  # a rank map in [0, 1] -> 8-bit grey levels
        array = np.round(np.asarray(array, dtype=np.float64) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    atomic_write_bytes(path, buf.getvalue())


def _demo_scene(rng: np.random.Generator, size: tuple[int, int], n_objects: int):
    """A random image with ``n_objects`` ellipses; returns (rgb, masks, boxes, polygons, contrast)."""
    height, width = size
    background = rng.integers(60, 120, size=3)
    rgb = np.broadcast_to(background.astype(np.uint8), (height, width, 3)).copy()
    masks, boxes, polygons, contrast = [], [], [], []
    for _ in range(n_objects):
        w = float(rng.uniform(0.15, 0.4) * width)
        h = float(rng.uniform(0.15, 0.4) * height)
        x1 = float(rng.uniform(0, width - w))
        y1 = float(rng.uniform(0, height - h))
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        poly = np.stack([x1 + w / 2 * (1 + np.cos(t)), y1 + h / 2 * (1 + np.sin(t))], axis=1).round(1)
        mask = decode_segmentation([poly.ravel().tolist()], size)  # as the loaders will decode it
        colour = rng.integers(0, 256, size=3)
        rgb[mask] = colour
        masks.append(mask)
        boxes.append([float(poly[:, 0].min()), float(poly[:, 1].min()), float(poly[:, 0].max()),
                      float(poly[:, 1].max())])
        polygons.append([poly.ravel().tolist()])
        contrast.append(float(np.abs(colour - background).mean()))
    return rgb, masks, boxes, polygons, np.asarray(contrast)


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def make_demo_tree(directory: str | os.PathLike, *, n_images: int = 3, image_size: tuple[int, int] = (120, 160),
                   seed: int = 0) -> dict[str, Path]:
    """Write tiny synthetic ASSR and IRSR trees (the documented layouts) under ``directory``.

    A **format demo**, not data: ``n_images`` random images per split with 3-7 ellipse
    "objects" whose rank follows their colour contrast. Segmentations alternate between COCO
    polygons and compressed RLE (IRSR also has one uncompressed RLE); ASSR marks at most five
    objects salient (values 1.0 ... 0.6, the rest 0.5 or 0), IRSR ranks every object
    (0 = least salient). Rank maps are painted as each dataset does
    (:func:`salrank.metrics.peers.paint_rank_map`). Deterministic for a given ``seed``.
    Returns ``{"ASSR": root, "IRSR": root}``.
    """
    from salrank.metrics.peers import paint_rank_map

    directory = Path(directory)
    rng = np.random.default_rng(seed)
    assr_root, irsr_root = directory / "ASSR", directory / "IRSR"
    for split in ASSR_SPLITS:
        records = []
        for i in range(n_images):
            stem = f"COCO_{split}2014_{i:012d}"
            n = int(rng.integers(3, 8))
            rgb, masks, boxes, polys, contrast = _demo_scene(rng, image_size, n)
            order = np.argsort(-contrast, kind="stable")
            values = np.zeros(n)
            for pos, k in enumerate(order):
                values[k] = round(1.0 - 0.1 * pos, 1) if pos < 5 else (0.5 if pos == 5 else 0.0)
            objects = [
                {"bbox": boxes[k], "segmentation": polys[k] if k % 2 == 0 else _rle(masks[k])} for k in range(n)
            ]
            records.append({"img": stem, "object_data": objects})
            _save_png(assr_root / "images" / split / f"{stem}.jpg", rgb, "JPEG")
            atomic_write_bytes(assr_root / "rank_order" / split / f"{stem}.json",
                          json.dumps({"rank_order": values.tolist()}).encode())
            _save_png(assr_root / "gt" / split / f"{stem}.png",
                      paint_rank_map(np.stack(masks), assr_ranks(values), "assr"))
        atomic_write_bytes(assr_root / f"obj_seg_data_{split}.json", json.dumps(records).encode())
    for split in IRSR_SPLITS:
        records = []
        for i in range(n_images):
            stem = f"COCO_{split}2014_{100 + i:012d}"
            n = int(rng.integers(2, 7))
            rgb, masks, boxes, polys, contrast = _demo_scene(rng, image_size, n)
            raw = np.empty(n, dtype=np.int64)
            raw[np.argsort(contrast, kind="stable")] = np.arange(n)  # 0 = least salient
            annotations = []
            for k in range(n):
                x1, y1, x2, y2 = boxes[k]
                if k == 1:  # uncompressed RLE
                    seg = {"size": list(image_size), "counts": _uncompressed_counts(masks[k])}
                elif k % 2:
                    seg = _rle(masks[k])
                else:
                    seg = polys[k]
                annotations.append({"bbox": [x1, y1, x2 - x1, y2 - y1], "segmentation": seg,
                                    "is_person": bool(k == 0)})
            records.append({"file_name": f"{stem}.jpg", "height": image_size[0], "width": image_size[1],
                            "annotations": annotations, "rank": raw.tolist()})
            _save_png(irsr_root / "Images" / split / "rgb" / f"{stem}.jpg", rgb, "JPEG")
            _save_png(irsr_root / "Images" / split / "gt" / f"{stem}.png",
                      paint_rank_map(np.stack(masks), irsr_ranks(raw), "irsr"))
        atomic_write_bytes(irsr_root / "Annotations" / f"{split}.pkl", pickle.dumps(records, protocol=4))
    return {"ASSR": assr_root, "IRSR": irsr_root}


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts of a mask (column-major runs, starting with background)."""
    flat = mask.astype(np.uint8).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs
