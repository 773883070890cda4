"""``salrank gt``: ground-truth ranks (RA-SRGT or a baseline) of object boxes from fixations.

Boxes come in the COCO detection-results format, ``[{"image_id": <COCO id or file stem>,
"bbox": [x, y, w, h], "score": s}, ...]``, or as a COCO ground-truth file (``{"images": [...],
"annotations": [...]}``, e.g. the shipped ``salicon_examples/boxes.json``); within an image the
file's order is the box order.
The output maps each image's file stem to ``{"boxes": [[x1, y1, x2, y2], ...] (clipped to the
image), "scores": [...], "ranks": [...]}`` (rank 1 = most salient, 0 = not salient).
"""

from __future__ import annotations

import json
from pathlib import Path

from salrank.commands import CommandError, check_output_file
from salrank.io import atomic_write_json


def register(subparsers) -> None:
    from salrank.gt import DEFAULT_BETA, DEFAULT_GAMMA, DEFAULT_SIGMA, DEFAULT_THRESHOLD, METHODS

    p = subparsers.add_parser("gt", help="ground-truth saliency ranks of object boxes from fixations",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--fixations", required=True, type=Path,
                   help="SALICON fixations (2015 JSON file or folder of 2017 .mat files)")
    p.add_argument("--boxes", required=True, type=Path, help="boxes: COCO detection results or a COCO ground-truth file (JSON)")
    p.add_argument("--method", default="ra-srgt", choices=METHODS, help="scoring method (default: ra-srgt)")
    p.add_argument("--gamma", type=float, default=DEFAULT_GAMMA, help=f"RA-SRGT gamma (default {DEFAULT_GAMMA})")
    p.add_argument("--beta", type=float, default=DEFAULT_BETA, help=f"RA-SRGT beta (default {DEFAULT_BETA})")
    p.add_argument("--sigma", type=float, default=DEFAULT_SIGMA,
                   help=f"fixation-map blur in pixels, map methods (default {DEFAULT_SIGMA})")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"binarisation threshold of binary-map (default {DEFAULT_THRESHOLD})")
    p.add_argument("--out", required=True, type=Path, help="output JSON file")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def read_detection_boxes(path: Path, fixations: dict) -> dict[str, list[list[float]]]:
    """``{file stem: [[x1, y1, x2, y2], ...]}`` from a COCO detection-results file, keeping the
    file's order. COCO integer ids are mapped to stems through the fixations' ``image_id``; a
    string id may be a stem or a number. Raises :class:`CommandError` on a malformed file or an
    image id without fixations."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"boxes file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"{path}: cannot read JSON ({exc})") from None
    stem_of_id = {str(fx.image_id): stem for stem, fx in fixations.items() if fx.image_id is not None}
    if isinstance(entries, dict) and "images" in entries:
        return _ground_truth_boxes(path, fixations, stem_of_id)
    if not isinstance(entries, list):
        raise CommandError(f"{path}: expected a list of detections [{{\"image_id\", \"bbox\", \"score\"}}, ...] "
                           "or a COCO ground-truth file {\"images\": [...], \"annotations\": [...]}")
    boxes: dict[str, list[list[float]]] = {}
    unknown: list[str] = []
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image_id" not in entry or "bbox" not in entry:
            raise CommandError(f"{path}: entry [{k}] needs fields 'image_id' and 'bbox'")
        bbox = entry["bbox"]
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
            raise CommandError(f"{path}: entry [{k}].bbox must be [x, y, w, h] numbers, got {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        if not all(map(_finite, (x, y, w, h))) or w < 0 or h < 0:
            raise CommandError(f"{path}: entry [{k}].bbox must be finite with w, h >= 0, got {bbox!r}")
        raw = entry["image_id"]
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise CommandError(f"{path}: entry [{k}].image_id must be an int or a string, got {raw!r}")
        key = str(raw)
        stem = key if key in fixations else stem_of_id.get(key)
        if stem is None:
            unknown.append(key)
            continue
        boxes.setdefault(stem, []).append([x, y, x + w, y + h])
    _check_unknown(path, unknown)
    return boxes


def _ground_truth_boxes(path: Path, fixations: dict, stem_of_id: dict) -> dict[str, list[list[float]]]:
    """Boxes of a COCO ground-truth file (``images`` + ``annotations``), keyed like the fixations."""
    from salrank.data.sample import load_coco_boxes

    try:
        by_stem = load_coco_boxes(path)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    boxes: dict[str, list[list[float]]] = {}
    unknown: list[str] = []
    for stem, arr in by_stem.items():
        if len(arr) == 0:
            continue
        key = stem if stem in fixations else stem_of_id.get(stem)
        if key is None:
            unknown.append(stem)
            continue
        boxes[key] = arr.tolist()
    _check_unknown(path, unknown)
    return boxes


def _check_unknown(path: Path, unknown: list[str]) -> None:
    if unknown:
        distinct = sorted(set(unknown))
        shown = ", ".join(distinct[:5]) + (" ..." if len(distinct) > 5 else "")
        raise CommandError(f"{path}: {len(distinct)} image id(s) have no fixations in the fixations file: {shown}")


def _finite(v: float) -> bool:
    return v == v and v not in (float("inf"), float("-inf"))


def run(args) -> int:
    import numpy as np

    from salrank.data import load_salicon
    from salrank.gt import relabel_dataset
    from salrank.gt.scores import check_options

    check_output_file(args.out)
    check_options(args.method, args.gamma, args.beta, sigma=args.sigma, threshold=args.threshold)
    try:
        fixations = load_salicon(args.fixations, progress=not args.no_progress)
    except FileNotFoundError as exc:
        raise CommandError(f"fixations not found: {exc}") from None
    except ValueError as exc:  # SaliconFormatError is a ValueError
        raise CommandError(str(exc)) from None
    boxes = read_detection_boxes(args.boxes, fixations)
    options = {}
    if args.method in ("map-max", "map-avg", "binary-map"):
        options["sigma"] = args.sigma
    if args.method == "binary-map":
        options["threshold"] = args.threshold
    arrays = {stem: np.asarray(b, dtype=np.float64) for stem, b in boxes.items()}
    try:
        table = relabel_dataset(fixations, arrays, method=args.method, gamma=args.gamma, beta=args.beta,
                                cache=False, progress=not args.no_progress, **options)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    out = {}
    for stem, rows in table.groupby("image", sort=True):
        out[stem] = {
            "boxes": rows[["x1", "y1", "x2", "y2"]].to_numpy().tolist(),
            "scores": rows["score"].to_numpy().tolist(),
            "ranks": rows["rank"].to_numpy().tolist(),
        }
    atomic_write_json(args.out, out)
    print(f"wrote ranks of {len(table)} boxes in {len(out)} images to {args.out}")
    return 0
