"""Offline proposal generation for a set of images, resumable, in the COCO detection-results format.

:func:`generate_proposals` runs a detector over images in batches, applies the paper's filtering
and appends each finished image to a JSON-lines sidecar ``<out>.partial.jsonl`` (flushed and
synced per batch). After an interruption the same call skips the images already in the sidecar
(a torn last line is discarded); the sidecar's header records the detector's settings, the
filter options and a digest of the image list, and a run with other ones is refused. When every
image is done, ``<out>`` is written atomically as
``[{"image_id": <file stem>, "bbox": [x, y, w, h], "score": s, "category_id": c}, ...]`` (images
sorted by stem, each image's proposals by descending score; pixels of the original image) and
the sidecar is removed. Images with no proposal have no entry in the results list.

Images larger than ``max_side`` pixels are scaled down before the detector (the boxes are mapped
back to the file's pixels before filtering). With ``on_error="skip"`` an image that cannot be
read is reported, recorded in the sidecar (so a resumed run does not retry it) and listed in
``<out>.skipped.json`` (``[{"image_id", "path", "error"}]``, written only when some were skipped);
``on_error="raise"`` (the default) stops at the first one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from salrank.io import atomic_write_json
from salrank.proposals.filtering import DEFAULTS, check_filter_options, filter_proposals
from salrank.proposals.registry import Detections, Detector

__all__ = ["generate_proposals", "merge_proposal_parts", "read_proposals", "sidecar_path", "skipped_path",
           "images_in_dir", "IMAGE_SUFFIXES"]

FORMAT_VERSION = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def sidecar_path(out: str | os.PathLike) -> Path:
    """The JSON-lines file holding finished images while ``out`` is being generated."""
    out = Path(out)
    return out.with_name(out.name + ".partial.jsonl")


def skipped_path(out: str | os.PathLike) -> Path:
    """The list of unreadable images skipped while ``out`` was generated (``on_error="skip"``)."""
    out = Path(out)
    return out.with_name(out.name + ".skipped.json")


def _header_difference(saved, header: dict) -> str:
    """Which header fields differ, e.g. ``detector.init_seed: 0 -> 1``."""
    if not isinstance(saved, dict):
        return "no valid header"
    diffs = []
    for key in sorted(set(saved) | set(header)):
        a, b = saved.get(key), header.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(f"{key}: {a!r} -> {b!r}")
    return ", ".join(diffs)


def images_in_dir(directory: str | os.PathLike) -> dict[str, Path]:
    """``{file stem: path}`` of the images in ``directory`` (not recursive), sorted by stem.

    Raises ``FileNotFoundError`` for a missing folder and ``ValueError`` for an empty one or for
    two files with the same stem (the stem is the image id).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"image folder not found: {directory}")
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise ValueError(f"two images share the id {path.stem!r}: {found[path.stem].name} and {path.name}")
            found[path.stem] = path
    if not found:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {directory}")
    return dict(sorted(found.items()))


def _records(image_id: str, det: Detections) -> list[dict]:
    return [
        {
            "image_id": image_id,
            "bbox": [round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2), round(float(y2 - y1), 2)],
            "score": round(float(s), 5),
            "category_id": int(c),
        }
        for (x1, y1, x2, y2), s, c in zip(det.boxes.astype(np.float64), det.scores, det.labels, strict=True)
    ]


def _read_sidecar(path: Path, header: dict) -> dict[str, dict]:
    """Finished images of an interrupted run; truncates a torn last line; checks the header."""
    done: dict[str, dict] = {}
    with open(path, "rb+") as f:
        good_end = 0
        first = True
        line = 0
        for raw in iter(f.readline, b""):
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("torn line")
                entry = json.loads(raw)
            except ValueError:
                break  # the write of this line was interrupted: drop it and anything after it
            line += 1
            if first:
                if not isinstance(entry, dict) or "header" not in entry:
                    raise ValueError(f"{path}: line 1 is not a proposals resume header; "
                                     "it is not this program's file: delete it to start again")
                if entry.get("header") != header:
                    raise ValueError(
                        f"{path} was started with other settings ({_header_difference(entry.get('header'), header)}); "
                        f"delete it to start again, or rerun with those settings"
                    )
                first = False
            else:
                if not (isinstance(entry, dict) and isinstance(entry.get("image_id"), str)
                        and (isinstance(entry.get("detections"), list) or isinstance(entry.get("error"), str))):
                    raise ValueError(f"{path}: line {line} is not a proposals record "
                                     "({\"image_id\", \"detections\"}); delete the file to start again")
                done[entry["image_id"]] = entry
            good_end = f.tell()
        f.truncate(good_end)
    if first:  # not even a complete header: start afresh
        path.unlink()
    return done


def generate_proposals(
    detector: Detector,
    images: Mapping[str, str | os.PathLike] | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    batch_size: int = 8,
    filter_options: Mapping | None = None,
    apply_filter: bool = True,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
    max_side: int | None = None,
    on_error: str = "raise",
    log: Callable[[str], None] | None = print,
) -> Path:
    """Detect, filter and save proposals for ``images``; resumable (see the module docstring).

    Args:
        detector: a :class:`~salrank.proposals.Detector` (gets the stems as ``keys``).
        images: ``{image id: path}`` or a list of paths (id = file stem).
        out: the results file (JSON, COCO detection-results format).
        batch_size: images per detector call (and per sidecar flush).
        filter_options: keyword arguments of :func:`~salrank.proposals.filter_proposals`
            (its defaults = the paper's rules); ignored when ``apply_filter`` is false.
        on_batch: called as ``on_batch(done, total)`` after each batch is safely on disk.
        max_side: scale images whose longer side exceeds this (pixels) down before the detector
            (default :data:`salrank.data.images.DEFAULT_MAX_SIDE`; 0: never).
        on_error: ``"raise"`` (an unreadable image raises
            :class:`~salrank.data.images.ImageReadError`) or ``"skip"`` (see the module docstring).
        log: where skipped images are reported (``None``: nowhere).

    Returns:
        the path of the results file.
    """
    from tqdm.auto import tqdm

    from salrank.data.images import DEFAULT_MAX_SIDE, ImageReadError, load_image_bounded
    from salrank.errors import check_int

    if not isinstance(images, Mapping):
        paths = [Path(p) for p in images]
        images = {p.stem: p for p in paths}
        if len(images) != len(paths):
            raise ValueError("two images share a file stem (the stem is the image id)")
    items = sorted((str(k), Path(v)) for k, v in images.items())
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = Path(out)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    max_side = check_int("max_side", DEFAULT_MAX_SIDE if max_side is None else max_side, 0)
    check_filter_options(**(filter_options or {}))
    options = {**DEFAULTS, **(filter_options or {})} if apply_filter else None
    listing = "\n".join(f"{k}={p.resolve()}" for k, p in items).encode("utf-8")
    header = {"format": FORMAT_VERSION, "detector": detector.settings(), "filter": options,
              "images": hashlib.sha256(listing).hexdigest()[:16], "max_side": max_side}
    sidecar = sidecar_path(out)
    done = _read_sidecar(sidecar, header) if sidecar.exists() else {}
    todo = [(k, p) for k, p in items if k not in done]

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(sidecar, "a", encoding="utf-8") as f, tqdm(
        total=len(items), initial=len(items) - len(todo), unit="img", desc=f"proposals ({detector.name})",
        disable=not progress,
    ) as bar:
        if f.tell() == 0:
            f.write(json.dumps({"header": header}) + "\n")
            f.flush()
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            lines, readable = [], []
            for key, path in batch:
                try:
                    readable.append((key, *load_image_bounded(path, max_side or None)))
                except ImageReadError as exc:
                    if on_error == "raise":
                        raise
                    if log is not None:
                        log(f"skipped: {exc}")
                    done[key] = {"image_id": key, "error": str(exc)}
                    lines.append(json.dumps(done[key]) + "\n")
            dets = detector.detect([im for _, im, _ in readable], keys=[k for k, _, _ in readable],
                                   batch_size=batch_size) if readable else []
            for (key, image, (sx, sy)), det in zip(readable, dets, strict=True):
                if (sx, sy) != (1.0, 1.0):  # back to the file's pixels before the pixel-size rules
                    det = Detections(det.boxes * np.array([sx, sy, sx, sy], np.float32), det.scores, det.labels)
                if options is not None:
                    size = (round(image.height * sy), round(image.width * sx))
                    det = det.select(filter_proposals(det.boxes, det.scores, size, **options).keep)
                done[key] = {"image_id": key, "detections": _records(key, det)}
                lines.append(json.dumps(done[key]) + "\n")
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(batch))
            if on_batch is not None:
                on_batch(len(items) - len(todo) + start + len(batch), len(items))

    results = [rec for key, _ in items for rec in done[key].get("detections", [])]
    skipped = [{"image_id": key, "path": str(path), "error": done[key]["error"]} for key, path in items
               if "error" in done[key]]
    if skipped:
        atomic_write_json(skipped_path(out), skipped, indent=1)
    else:
        skipped_path(out).unlink(missing_ok=True)
    _write_results(out, results)
    sidecar.unlink()
    return out


def _write_results(out: Path, results: list[dict]) -> None:
    atomic_write_json(out, results, separators=(",", ":"))


def merge_proposal_parts(parts: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Merge results files of disjoint image sets (e.g. the ranks of a sharded run) into ``out``:
    the bytes :func:`generate_proposals` writes for all the images at once (images by stem), and
    the parts' lists of unreadable images into ``skipped_path(out)``."""
    by_image: dict[str, list[dict]] = {}
    for part in parts:
        mine: dict[str, list[dict]] = {}
        for rec in json.loads(Path(part).read_text(encoding="utf-8")):
            mine.setdefault(str(rec["image_id"]), []).append(rec)
        twice = sorted(set(mine) & set(by_image))
        if twice:
            raise ValueError(f"image {twice[0]!r} appears in two parts")
        by_image.update(mine)
    out = Path(out)
    skipped = []  # the parts' unreadable images (``skipped_path``), in part order
    for part in parts:
        if skipped_path(part).is_file():
            skipped += json.loads(skipped_path(part).read_text(encoding="utf-8"))
    _write_results(out, [rec for key in sorted(by_image) for rec in by_image[key]])
    if skipped:
        atomic_write_json(skipped_path(out), skipped, indent=1)
    else:
        skipped_path(out).unlink(missing_ok=True)
    for part in parts:
        skipped_path(part).unlink(missing_ok=True)
    return out


def read_proposals(path: str | os.PathLike, image_ids: Sequence[str] | None = None) -> dict[str, Detections]:
    """Load a results file written by :func:`generate_proposals` (or any COCO results list).

    Returns ``{image id: Detections}`` with ``[x1, y1, x2, y2]`` boxes, in descending score order;
    ``image_ids`` adds empty entries for images without proposals (and restricts the result).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"proposals file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of COCO detection results")
    grouped: dict[str, list] = {}
    for i, rec in enumerate(data):
        try:
            x, y, w, h = (float(v) for v in rec["bbox"])
            grouped.setdefault(str(rec["image_id"]), []).append(
                ([x, y, x + w, y + h], float(rec["score"]), int(rec.get("category_id", 0)))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: entry {i} is not a detection result ({exc!r})") from None
    keys = list(image_ids) if image_ids is not None else sorted(grouped)
    result = {}
    for key in keys:
        recs = grouped.get(str(key), [])
        if not recs:
            result[str(key)] = Detections.empty()
            continue
        boxes, scores, labels = zip(*recs, strict=True)
        result[str(key)] = Detections(np.array(boxes), np.array(scores), np.array(labels))
    return result
