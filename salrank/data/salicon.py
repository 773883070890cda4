"""SALICON fixation data: the official 2015 JSON and 2017 ``.mat`` formats, read and written.

Everything returned here uses the package conventions: points are ``(x, y)``, 0-based pixel
coordinates of the image at its native size (SALICON: 640 x 480), and an image's size is
``(height, width)``.

Formats (see the book's *Conventions and interpretation* page, ``book/conventions.md``):

* **2015 JSON** (COCO-style): ``images[]`` with ``id``, ``file_name``, ``width``, ``height``;
  ``annotations[]`` with ``image_id``, ``worker_id`` and ``fixations``, a list of
  ``[row, col]`` pairs, 1-based. ``image_id`` may be a string while ``images[].id`` is an int;
  ``fixations`` may be a JSON-encoded string; values may be int or float.
* **2017 .mat** (one file per image): ``resolution`` = ``[height, width]``; ``gaze`` = struct
  array, one element per observer, with ``location`` (raw mouse samples), ``timestamp`` and
  ``fixations``, all ``[x, y]``, 1-based.

Conversion to 0-based: ``x = col - 1``, ``y = row - 1``. Points outside ``[0, width) x
[0, height)`` are dropped and counted in one :class:`SaliconPointsDroppedWarning` per load.

Parsing the whole of SALICON takes a while, so :func:`load_salicon` caches the parsed arrays
(all points concatenated, plus per-image offsets) in one ``.npz`` per source under
``salrank.config.cache_dir("salicon")``; the entry is rebuilt when the source's path, size or
modification time changes. :func:`salrank.bench.fixations.benchmark_load` measures cold parse vs cached load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from salrank.errors import UserFacingError
from salrank.io import atomic_output

__all__ = [
    "Fixations",
    "SaliconFormatError",
    "SaliconPointsDroppedWarning",
    "load_salicon",
    "save_salicon_json",
    "save_salicon_mat",
]

#: Bumped whenever the cache layout or the parsing rules change, so stale entries are rebuilt.
CACHE_VERSION = 2

_STEM_ID = re.compile(r"(\d+)$")


class SaliconFormatError(ValueError, UserFacingError):
    """A SALICON file is malformed; the message names the file and the offending field."""


class SaliconPointsDroppedWarning(UserWarning):
    """Some fixation points lay outside their image and were dropped while loading."""


@dataclass(eq=False)
class Fixations:
    """All fixation points of one image, every observer pooled.

    Attributes:
        points: ``(N, 2)`` float64, ``(x, y)``, 0-based pixel coordinates (native image size).
        observer: ``(N,)`` int64, the observer (SALICON worker) of each point.
        height, width: image size in pixels.
        image_id: the dataset's numeric image id, if known.
        file_name: the image's file name (e.g. ``COCO_val2014_000000102625.jpg``), if known.
    """

    points: np.ndarray
    observer: np.ndarray
    height: int
    width: int
    image_id: int | None = None
    file_name: str | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float64)
        if points.size == 0:
            points = points.reshape(0, 2)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2), got {points.shape}")
        observer = np.asarray(self.observer, dtype=np.int64).reshape(-1)
        if observer.shape[0] != points.shape[0]:
            raise ValueError(f"observer has {observer.shape[0]} entries for {points.shape[0]} points")
        self.points = points
        self.observer = observer
        self.height = int(self.height)
        self.width = int(self.width)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __repr__(self) -> str:
        return (
            f"Fixations(n={len(self)}, n_observers={self.n_observers}, size=({self.height}, "
            f"{self.width}), image_id={self.image_id!r}, file_name={self.file_name!r})"
        )

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return (self.height, self.width)

    @property
    def observers(self) -> np.ndarray:
        """Distinct observer ids, in order of first appearance."""
        ids, first = np.unique(self.observer, return_index=True)
        return ids[np.argsort(first, kind="stable")]

    @property
    def n_observers(self) -> int:
        """Number of distinct observers with at least one point."""
        return int(np.unique(self.observer).size)

    def of_observer(self, observer: int) -> np.ndarray:
        """The ``(K, 2)`` points of one observer, in their recorded order."""
        return self.points[self.observer == observer]

    def inside(self) -> np.ndarray:
        """Boolean mask of the points inside ``[0, width) x [0, height)``."""
        x, y = self.points[:, 0], self.points[:, 1]
        return (x >= 0) & (x < self.width) & (y >= 0) & (y < self.height)


# --------------------------------------------------------------------------- parsed arrays


@dataclass
class _Parsed:
    """Every image of one source, concatenated: the layout cached on disk."""

    stems: list[str]
    points: np.ndarray  # (M, 2) float64, 0-based (x, y)
    observer: np.ndarray  # (M,) int64
    offsets: np.ndarray  # (n + 1,) int64
    heights: np.ndarray  # (n,) int64
    widths: np.ndarray  # (n,) int64
    image_ids: list[int | None]
    file_names: list[str | None]
    n_dropped: int = 0

    def drop_outside(self) -> None:
        """Remove points outside their image, recording how many were removed."""
        keep = np.ones(len(self.points), dtype=bool)
        for i in range(len(self.stems)):  # per image: no (M,)-sized temporaries beyond `keep`
            lo, hi = self.offsets[i], self.offsets[i + 1]
            x, y = self.points[lo:hi, 0], self.points[lo:hi, 1]
            keep[lo:hi] = (x >= 0) & (x < self.widths[i]) & (y >= 0) & (y < self.heights[i])
        if keep.all():
            return
        self.n_dropped += int((~keep).sum())
        counts = np.diff(self.offsets)
        image_of_point = np.repeat(np.arange(counts.size), counts)
        kept_per_image = np.bincount(image_of_point[keep], minlength=counts.size)
        self.points = self.points[keep]
        self.observer = self.observer[keep]
        self.offsets = np.concatenate([[0], np.cumsum(kept_per_image)]).astype(np.int64)

    def to_dict(self) -> dict[str, Fixations]:
        out: dict[str, Fixations] = {}
        for i, stem in enumerate(self.stems):
            lo, hi = self.offsets[i], self.offsets[i + 1]
            out[stem] = Fixations(
                points=self.points[lo:hi],
                observer=self.observer[lo:hi],
                height=int(self.heights[i]),
                width=int(self.widths[i]),
                image_id=self.image_ids[i],
                file_name=self.file_names[i],
            )
        return out


def _concat(
    stems: list[str],
    per_image: list[list[tuple[np.ndarray, int]]],
    heights: list[int],
    widths: list[int],
    image_ids: list[int | None],
    file_names: list[str | None],
) -> _Parsed:
    """Build :class:`_Parsed` from per-image lists of ``(points (K, 2) x/y 0-based, observer)``."""
    blocks = [pts for image in per_image for pts, _ in image]
    counts = [len(pts) for image in per_image for pts, _ in image]
    observers = [obs for image in per_image for _, obs in image]
    points = np.concatenate(blocks) if blocks else np.zeros((0, 2))
    observer = np.repeat(np.asarray(observers, dtype=np.int64), counts)
    per_image_counts = [sum(len(pts) for pts, _ in image) for image in per_image]
    offsets = np.concatenate([[0], np.cumsum(per_image_counts, dtype=np.int64)]).astype(np.int64)
    return _Parsed(
        stems=stems,
        points=np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2),
        observer=observer,
        offsets=offsets,
        heights=np.asarray(heights, dtype=np.int64),
        widths=np.asarray(widths, dtype=np.int64),
        image_ids=image_ids,
        file_names=file_names,
    )


def _as_pairs(value, where: str) -> np.ndarray:
    """A list (or JSON string) of numeric pairs as a ``(K, 2)`` numeric array, else a clear error.

    The dtype is kept (int16 from the object hook stays int16); the caller converts.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SaliconFormatError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise SaliconFormatError(f"{where}: expected a list of pairs, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise SaliconFormatError(f"{where}: expected a list of numeric pairs (ragged entries)") from None
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.dtype.kind not in "iuf":
        raise SaliconFormatError(f"{where}: expected numeric pairs, got values of type {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise SaliconFormatError(f"{where}: expected pairs of 2 numbers, got an array of shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise SaliconFormatError(f"{where}: contains non-finite values")
    return arr


# --------------------------------------------------------------------------- 2015 JSON


def _require(obj, key: str, where: str, path: Path):
    if not isinstance(obj, dict):
        raise SaliconFormatError(f"{path}: {where} must be an object, got {type(obj).__name__}")
    if key not in obj:
        raise SaliconFormatError(f"{path}: {where} has no field {key!r}")
    return obj[key]


def _as_int(value, where: str, path: Path) -> int:
    if isinstance(value, bool):
        raise SaliconFormatError(f"{path}: {where} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise SaliconFormatError(f"{path}: {where} must be an integer, got {value!r}")


def _pairs_as_array(obj: dict) -> dict:
    """``json`` object hook: turn an annotation's ``fixations`` list into an array right away.

    The Python lists of a whole SALICON file would take gigabytes; converted per annotation
    while decoding (integers as int16 when they fit), only compact arrays remain. Lists that
    do not convert cleanly are left as they are, for :func:`_as_pairs` to report with the
    annotation's index.
    """
    value = obj.get("fixations")
    if isinstance(value, list) and value:
        try:
            arr = np.array(value)
        except (ValueError, TypeError):
            return obj
        if arr.dtype.kind in "iuf" and arr.ndim == 2 and arr.shape[1] == 2:
            obj["fixations"] = _compact(arr, integral_only=True) if arr.dtype.kind in "iu" else arr
    return obj


def _parse_json(path: Path, progress: bool) -> _Parsed:
    try:
        with open(path, encoding="utf-8") as f:  # text mode: no second (bytes) copy of the file
            data = json.load(f, object_hook=_pairs_as_array)
    except json.JSONDecodeError as exc:
        raise SaliconFormatError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise SaliconFormatError(f"{path}: not valid JSON text ({exc.reason})") from None
    if not isinstance(data, dict):
        raise SaliconFormatError(f"{path}: top level must be an object with 'images' and 'annotations'")
    images = _require(data, "images", "the top level", path)
    annotations = _require(data, "annotations", "the top level", path)
    if not isinstance(images, list):
        raise SaliconFormatError(f"{path}: field 'images' must be a list")
    if not isinstance(annotations, list):
        raise SaliconFormatError(f"{path}: field 'annotations' must be a list")

    stems: list[str] = []
    heights: list[int] = []
    widths: list[int] = []
    image_ids: list[int | None] = []
    file_names: list[str | None] = []
    index_of_id: dict[int, int] = {}
    for i, img in enumerate(images):
        where = f"images[{i}]"
        image_id = _as_int(_require(img, "id", where, path), f"{where}.id", path)
        file_name = _require(img, "file_name", where, path)
        if not isinstance(file_name, str) or not file_name:
            raise SaliconFormatError(f"{path}: {where}.file_name must be a non-empty string")
        height = _as_int(_require(img, "height", where, path), f"{where}.height", path)
        width = _as_int(_require(img, "width", where, path), f"{where}.width", path)
        if height <= 0 or width <= 0:
            raise SaliconFormatError(f"{path}: {where} has a non-positive size {height}x{width}")
        if image_id in index_of_id:
            raise SaliconFormatError(f"{path}: {where}.id {image_id} is duplicated")
        stem = Path(file_name).stem
        index_of_id[image_id] = len(stems)
        stems.append(stem)
        heights.append(height)
        widths.append(width)
        image_ids.append(image_id)
        file_names.append(file_name)
    if len(set(stems)) != len(stems):
        raise SaliconFormatError(f"{path}: images[].file_name has duplicated file stems")

    # pass 1: validate every annotation, count points per image
    entries: list[tuple[int, int, np.ndarray] | None] = []
    counts = np.zeros(len(stems), dtype=np.int64)
    for j, ann in enumerate(tqdm(annotations, desc=f"parse {path.name}", disable=not progress, unit="ann")):
        where = f"annotations[{j}]"
        raw_id = _require(ann, "image_id", where, path)
        image_id = _as_int(raw_id, f"{where}.image_id", path)
        k = index_of_id.get(image_id)
        if k is None:
            raise SaliconFormatError(f"{path}: {where}.image_id {raw_id!r} is not in images[]")
        worker = _as_int(_require(ann, "worker_id", where, path), f"{where}.worker_id", path)
        pairs = _as_pairs(_require(ann, "fixations", where, path), f"{path}: {where}.fixations")
        ann["fixations"] = None  # the array lives on in `entries` only, freed in pass 2
        entries.append((k, worker, pairs))
        counts[k] += len(pairs)
    del data, annotations, images

    # pass 2: fill one preallocated array, image by image, annotations in file order
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    points = np.empty((int(offsets[-1]), 2), dtype=np.float64)
    observer = np.empty(int(offsets[-1]), dtype=np.int64)
    cursor = offsets[:-1].copy()
    for j, entry in enumerate(entries):
        k, worker, pairs = entry
        lo = int(cursor[k])
        hi = lo + len(pairs)
        points[lo:hi, 0] = pairs[:, 1]  # [row, col] -> (x, y)
        points[lo:hi, 1] = pairs[:, 0]
        observer[lo:hi] = worker
        cursor[k] = hi
        entries[j] = None
    points -= 1.0  # 1-based -> 0-based
    return _Parsed(
        stems=stems,
        points=points,
        observer=observer,
        offsets=offsets,
        heights=np.asarray(heights, dtype=np.int64),
        widths=np.asarray(widths, dtype=np.int64),
        image_ids=image_ids,
        file_names=file_names,
    )


# --------------------------------------------------------------------------- 2017 .mat


def _stem_image_id(stem: str) -> int | None:
    match = _STEM_ID.search(stem)
    return int(match.group(1)) if match else None


def _read_mat(path: Path, raw: bool) -> tuple[list[tuple[np.ndarray, int]], int, int]:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except Exception as exc:  # scipy raises several types (ValueError, TypeError, MatReadError...)
        raise SaliconFormatError(f"{path}: not a readable MATLAB file ({exc})") from None
    for key in ("resolution", "gaze"):
        if key not in mat:
            raise SaliconFormatError(f"{path}: has no field {key!r}")
    resolution = np.asarray(mat["resolution"]).reshape(-1)
    if resolution.size != 2 or resolution.dtype.kind not in "iuf" or (resolution <= 0).any():
        raise SaliconFormatError(f"{path}: field 'resolution' must be [height, width], got {resolution!r}")
    height, width = int(resolution[0]), int(resolution[1])
    gaze = mat["gaze"]
    field = "location" if raw else "fixations"
    if gaze.size == 0:
        return [], height, width
    if gaze.dtype.names is None or field not in gaze.dtype.names:
        raise SaliconFormatError(f"{path}: field 'gaze' must be a struct array with a {field!r} field")
    blocks: list[tuple[np.ndarray, int]] = []
    for obs, record in enumerate(gaze.reshape(-1)):
        value = np.asarray(record[field])
        if value.size == 0:
            continue
        if value.dtype.kind not in "iuf" or value.ndim != 2 or value.shape[1] != 2:
            raise SaliconFormatError(
                f"{path}: gaze({obs + 1}).{field} must be a numeric N x 2 array, got {value.dtype} {value.shape}"
            )
        pts = value.astype(np.float64) - 1.0  # [x, y] 1-based -> 0-based
        if not np.isfinite(pts).all():
            raise SaliconFormatError(f"{path}: gaze({obs + 1}).{field} contains non-finite values")
        blocks.append((pts, obs))
    return blocks, height, width


def _parse_mats(files: list[Path], raw: bool, progress: bool) -> _Parsed:
    stems, per_image, heights, widths, image_ids, file_names = [], [], [], [], [], []
    for path in tqdm(files, desc="read .mat", disable=not progress or len(files) < 2, unit="file"):
        blocks, height, width = _read_mat(path, raw)
        stems.append(path.stem)
        per_image.append(blocks)
        heights.append(height)
        widths.append(width)
        image_ids.append(_stem_image_id(path.stem))
        file_names.append(f"{path.stem}.jpg")
    return _concat(stems, per_image, heights, widths, image_ids, file_names)


# --------------------------------------------------------------------------- cache


def _source_signature(path: Path, files: list[Path], raw: bool) -> str:
    parts = [f"v{CACHE_VERSION}", str(path), f"raw={raw}"]
    for f in files:
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _cache_file(cache_root: Path, path: Path, raw: bool) -> Path:
    key = hashlib.sha256(f"{path}|raw={raw}".encode()).hexdigest()[:16]
    return cache_root / f"{path.stem}-{'raw-' if raw else ''}{key}.npz"


def _compact(values: np.ndarray, *, integral_only: bool) -> np.ndarray:
    """The smallest of int16/int32 holding ``values`` exactly, else ``values`` unchanged.

    SALICON coordinates are integers below 32768, so the cache stores 4 bytes per point
    instead of 16; loading casts back to float64/int64 exactly.
    """
    if values.size == 0:
        return values
    if integral_only:
        step = 1 << 20  # chunks: bounded temporaries on SALICON-sized arrays
        for lo in range(0, len(values), step):
            chunk = values[lo : lo + step]
            if not np.array_equal(chunk, np.round(chunk)):
                return values
    low, high = values.min(), values.max()
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values


def _atomic_write(target: Path, write) -> None:
    """Call ``write(binary file)`` and put the result at ``target`` atomically."""
    with atomic_output(target, "wb") as f:
        write(f)


def _write_cache(target: Path, parsed: _Parsed, signature: str) -> None:
    ids = parsed.image_ids
    arrays = {
        "signature": np.array(signature),
        "stems": np.array(parsed.stems, dtype=str),
        "points": _compact(parsed.points, integral_only=True),
        "observer": _compact(parsed.observer, integral_only=False),
        "offsets": parsed.offsets,
        "heights": parsed.heights,
        "widths": parsed.widths,
        "image_ids": np.array([0 if i is None else i for i in ids], dtype=np.int64),
        "has_image_id": np.array([i is not None for i in ids], dtype=bool),
        "file_names": np.array(["" if f is None else f for f in parsed.file_names], dtype=str),
        "has_file_name": np.array([f is not None for f in parsed.file_names], dtype=bool),
        "n_dropped": np.array(parsed.n_dropped, dtype=np.int64),
    }
    _atomic_write(target, lambda f: np.savez(f, **arrays))


def _read_cache(target: Path, signature: str) -> _Parsed | None:
    """The parsed entry, ``None`` when missing or for another source (stale); a damaged entry is
    discarded with a warning (:func:`salrank.cache.read_cache_entry`)."""
    from salrank.cache import read_cache_entry

    return read_cache_entry(target, lambda path: _read_cache_file(path, signature), what="parsed-fixations cache")


def _read_cache_file(target: Path, signature: str) -> _Parsed | None:
    with np.load(target, allow_pickle=False) as z:
        if str(z["signature"]) != signature:
            return None
        n = int(z["stems"].shape[0])
        has_id, has_name = z["has_image_id"], z["has_file_name"]
        ids, names = z["image_ids"].tolist(), z["file_names"].tolist()
        offsets, points = z["offsets"], z["points"]
        if len(offsets) != n + 1 or (n and int(offsets[-1]) != len(points)):
            raise ValueError("inconsistent offsets")
        return _Parsed(
            stems=z["stems"].tolist() if n else [],
            points=z["points"].astype(np.float64).reshape(-1, 2),
            observer=z["observer"].astype(np.int64),
            offsets=z["offsets"],
            heights=z["heights"],
            widths=z["widths"],
            image_ids=[ids[i] if has_id[i] else None for i in range(n)],
            file_names=[names[i] if has_name[i] else None for i in range(n)],
            n_dropped=int(z["n_dropped"]),
        )


def _resolve_cache_root(cache: bool | str | os.PathLike) -> Path | None:
    if cache is False or cache is None:
        return None
    if cache is True:
        from salrank.config import cache_dir

        return cache_dir("salicon")
    root = Path(cache).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


# --------------------------------------------------------------------------- public API


def load_salicon(
    path: str | os.PathLike,
    *,
    raw: bool = False,
    cache: bool | str | os.PathLike = True,
    progress: bool = True,
) -> dict[str, Fixations]:
    """Read SALICON fixations into ``{image file stem: Fixations}``.

    Args:
        path: a 2015 JSON file, a 2017 ``.mat`` file, or a directory of ``.mat`` files.
        raw: read the raw mouse samples (``gaze.location``) instead of the fixations; ``.mat``
            only (the 2015 JSON has no raw samples).
        cache: ``True`` caches the parsed arrays under ``salrank.config.cache_dir("salicon")``,
            a path caches them in that directory, ``False`` disables the cache. Entries are keyed
            by the source path and invalidated when its size or modification time changes.
        progress: show a tqdm progress bar while parsing.

    Returns:
        Images in file order (JSON: ``images[]`` order; ``.mat``: sorted file names), points
        ``(x, y)`` 0-based, pooled over observers. For the 2015 JSON ``observer`` is the
        ``worker_id``; for ``.mat`` it is the 0-based index of the ``gaze`` element.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        SaliconFormatError: a file is malformed (the message names the file and the field).

    Points outside their image are dropped with one :class:`SaliconPointsDroppedWarning`.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"SALICON fixations not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".mat" and p.is_file())
        if not files:
            raise SaliconFormatError(f"{path}: directory holds no .mat files")
        kind = "mat"
    elif path.suffix.lower() == ".mat":
        files, kind = [path], "mat"
    else:
        files, kind = [path], "json"
    if raw and kind == "json":
        raise ValueError(f"{path}: raw=True needs the 2017 .mat format; the 2015 JSON has no raw samples")

    cache_root = _resolve_cache_root(cache)
    parsed = None
    if cache_root is not None:
        signature = _source_signature(path, files, raw)
        target = _cache_file(cache_root, path, raw)
        parsed = _read_cache(target, signature)
    if parsed is None:
        parsed = _parse_json(path, progress) if kind == "json" else _parse_mats(files, raw, progress)
        parsed.drop_outside()
        if cache_root is not None:
            _write_cache(target, parsed, signature)
    if parsed.n_dropped:
        warnings.warn(
            f"{path}: dropped {parsed.n_dropped} point(s) outside their image",
            SaliconPointsDroppedWarning,
            stacklevel=2,
        )
    return parsed.to_dict()


def _numbers(values: np.ndarray) -> list:
    """Pairs as JSON-friendly lists: ints when every value is integral, else floats."""
    if values.size and np.all(values == np.round(values)):
        return values.astype(np.int64).tolist()
    return values.tolist()


def _grouped_by_observer(fx: Fixations) -> Iterable[tuple[int, np.ndarray]]:
    for obs in fx.observers:
        yield int(obs), fx.points[fx.observer == obs]


def _default_image_ids(fixations: Mapping[str, Fixations], given: Mapping[str, int] | None) -> dict[str, int]:
    ids: dict[str, int] = {}
    for stem, fx in fixations.items():
        if given is not None and stem in given:
            ids[stem] = int(given[stem])
        elif fx.image_id is not None:
            ids[stem] = int(fx.image_id)
        elif (from_stem := _stem_image_id(stem)) is not None:
            ids[stem] = from_stem
    free = max(ids.values(), default=0) + 1
    for stem in fixations:
        if stem not in ids:
            ids[stem] = free
            free += 1
    if len(set(ids.values())) != len(ids):
        raise ValueError("image ids are not unique; pass image_ids= explicitly")
    return ids


def save_salicon_json(
    path: str | os.PathLike,
    fixations: Mapping[str, Fixations],
    *,
    image_ids: Mapping[str, int] | None = None,
) -> None:
    """Write fixations in the official SALICON 2015 JSON format, atomically.

    Each observer's points become one annotation (``worker_id`` = observer id), in order of first
    appearance, as 1-based ``[row, col]`` pairs: ``row = y + 1``, ``col = x + 1``; written as
    ints when integral, else floats. ``images[].id`` comes from ``image_ids``, else
    ``Fixations.image_id``, else the digits ending the stem, else a fresh number;
    ``file_name`` is ``Fixations.file_name`` or ``<stem>.jpg``.

    Reading the file back gives the same points grouped by observer; the round trip is exact
    for integral and dyadic (e.g. multiples of 1/64) coordinates and within float rounding
    (``1e-12`` px) otherwise.
    """
    ids = _default_image_ids(fixations, image_ids)
    images = [
        {"id": ids[stem], "file_name": fx.file_name or f"{stem}.jpg", "height": fx.height, "width": fx.width}
        for stem, fx in fixations.items()
    ]
    header = {
        "info": {"description": "SALICON-format fixations written by salrank", "version": "1.0"},
        "type": "fixations",
        "licenses": [],
        "images": images,
    }

    def write(f) -> None:
        # streamed one annotation at a time: the whole file never exists as Python objects
        f.write(json.dumps(header)[:-1].encode() + b', "annotations": [')
        n = 0
        for stem, fx in fixations.items():
            for worker, pts in _grouped_by_observer(fx):
                n += 1
                ann = {
                    "id": n,
                    "image_id": ids[stem],
                    "worker_id": worker,
                    "fixations": _numbers(pts[:, ::-1] + 1.0),
                }
                f.write((", " if n > 1 else "").encode() + json.dumps(ann).encode())
        f.write(b"]}")

    _atomic_write(Path(path), write)


def save_salicon_mat(
    directory_or_file: str | os.PathLike,
    stem: str,
    fx: Fixations,
    *,
    raw: Mapping[int, np.ndarray] | None = None,
    timestamps: Mapping[int, np.ndarray] | None = None,
) -> Path:
    """Write one image's fixations as a SALICON 2017 ``.mat`` file (for round trips), atomically.

    Args:
        directory_or_file: a directory (the file is ``<stem>.mat`` inside it) or a ``.mat`` path.
        stem: image name, stored in the ``image`` field.
        fx: the fixations; each observer (in order of first appearance) becomes one ``gaze``
            element, so reading back numbers observers ``0, 1, ...`` in that order.
        raw: per observer id, raw mouse samples ``(M, 2)`` ``(x, y)`` 0-based for ``location``;
            by default ``location`` repeats the fixations.
        timestamps: per observer id, ``(M,)`` sample times (ms) for ``timestamp``; default
            ``0, 1, ...``.

    Returns:
        The written path. Coordinates are stored 1-based ``[x, y]``, so as with
        :func:`save_salicon_json` the round trip is exact for integral and dyadic coordinates
        and within float rounding otherwise.
    """
    from scipy.io import savemat

    target = Path(directory_or_file)
    if target.suffix.lower() != ".mat":
        target = target / f"{stem}.mat"
    dtype = [("location", object), ("timestamp", object), ("fixations", object)]
    groups = list(_grouped_by_observer(fx))
    gaze = np.zeros((len(groups), 1), dtype=dtype)
    for i, (obs, pts) in enumerate(groups):
        loc = np.asarray(raw[obs], dtype=np.float64).reshape(-1, 2) if raw and obs in raw else pts
        ts = (
            np.asarray(timestamps[obs], dtype=np.float64).reshape(-1, 1)
            if timestamps and obs in timestamps
            else np.arange(len(loc), dtype=np.float64).reshape(-1, 1)
        )
        gaze[i, 0] = (loc + 1.0, ts, pts + 1.0)
    content = {
        "image": stem,
        "resolution": np.array([[fx.height, fx.width]], dtype=np.float64),
        "gaze": gaze,
    }
    _atomic_write(target, lambda f: savemat(f, content, do_compression=False, oned_as="column"))
    return target
