"""``salrank proposals``: offline object proposals for a folder of images (FOSRNet Part 1).

Writes the COCO detection-results format (``image_id`` = file stem, ``bbox`` = ``[x, y, w, h]``
pixels) after the paper's filtering; an interrupted run resumes from ``OUT.partial.jsonl``.
Unreadable images are reported, skipped and listed in ``OUT.skipped.json`` (``--strict``: stop
at the first one). Random weights (``--random-init``, or missing weights on the ``sample``
profile) come from ``--seed``, recorded in the resume header: a resume with another seed is refused.
Under ``torchrun --nproc_per_node N -m salrank proposals ...`` the images are sharded across the
ranks and rank 0 merges the parts into the same file (:mod:`salrank.distributed`).

Examples::

    salrank proposals --detector efficientdet_d0 --images images/ --out proposals.json
    salrank proposals --detector oracle --sample --out synthsal_proposals.json
    salrank proposals --list
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from salrank.commands import CommandError, check_output_file

SAMPLES = ("salicon", "synthsal")
SPLITS = ("train", "val", "test", "all")


def register(subparsers) -> None:
    from salrank.data.images import DEFAULT_MAX_SIDE
    from salrank.proposals.filtering import DEFAULTS

    p = subparsers.add_parser(
        "proposals",
        help="detect and filter object proposals for a folder of images (resumable)",
        description="Detect, filter (the paper's rules) and save object proposals in the COCO "
        "detection-results format; an interrupted run resumes from OUT.partial.jsonl.",
    )
    p.add_argument("--list", action="store_true", help="list the detectors and exit")
    p.add_argument("--detector", default="efficientdet_d0", help="detector name (default: efficientdet_d0)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--images", type=Path, metavar="DIR", help="folder of images (id = file stem)")
    src.add_argument(
        "--sample", nargs="?", const="auto", choices=("auto", *SAMPLES),
        help="the embedded sample: the SALICON examples, or SynthSal (the default for --detector oracle)",
    )
    p.add_argument("--split", choices=SPLITS, default="all", help="SynthSal split for --sample synthsal")
    p.add_argument("--true-boxes", type=Path, metavar="FILE",
                   help="COCO-style boxes for --detector oracle with --images")
    p.add_argument("--out", type=Path, metavar="FILE", help="results file (JSON)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:0 ... (default: SALRANK_DEVICE; under torchrun cuda:LOCAL_RANK)")
    p.add_argument("--weights", type=Path, default=None, help="an explicit weight file")
    p.add_argument("--random-init", action="store_true",
                   help="random weights (no download; for smoke tests, the proposals are meaningless)")
    p.add_argument("--score-threshold", type=float, default=0.05, help="detector score threshold")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of random weights (--random-init) and of the oracle detector's noise (default 0)")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                   help=f"scale images down to this longer side (pixels) before the detector; 0 = never "
                        f"(default {DEFAULT_MAX_SIDE})")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image (default: skip it)")
    f = p.add_argument_group("filtering (the paper's rules)")
    f.add_argument("--no-filter", action="store_true", help="keep the raw detections")
    f.add_argument("--max-area-frac", type=float, default=DEFAULTS["max_area_frac"])
    f.add_argument("--min-area", type=float, default=DEFAULTS["min_area"], help="px^2")
    f.add_argument("--min-side", type=float, default=DEFAULTS["min_side"], help="px")
    f.add_argument("--min-area-frac", type=float, default=DEFAULTS["min_area_frac"])
    f.add_argument("--iou-threshold", type=float, default=DEFAULTS["iou_threshold"])
    f.add_argument("--top-n", type=int, default=DEFAULTS["top_n"])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _sample_images(which: str, split: str, progress: bool = True) -> tuple[dict[str, Path], dict | None]:
    """``({stem: path}, {stem: true boxes} or None)`` of an embedded sample."""
    if which == "salicon":
        from salrank.data.sample import load_salicon_example_boxes, salicon_example_images

        images = salicon_example_images()
        if not images:
            raise CommandError("the embedded SALICON examples are missing from this installation")
        try:
            boxes = load_salicon_example_boxes()
        except FileNotFoundError:
            boxes = None
        return images, boxes
    from salrank.data.sample import load_coco_boxes
    from salrank.data.synthsal import sample_synthsal
    from salrank.proposals import images_in_dir

    dataset = sample_synthsal(progress=progress)
    if not dataset.has_images:
        raise CommandError(f"the SynthSal sample at {dataset.root} was generated without images")
    images: dict[str, Path] = {}
    boxes: dict = {}
    for name in dataset.splits if split == "all" else [split]:
        images.update(images_in_dir(dataset.root / "images" / name))
        boxes.update(load_coco_boxes(dataset.objects_path(name)))
    return images, boxes


def run(args) -> int:
    from salrank.distributed import rank_device
    from salrank.proposals import create_detector, generate_proposals, images_in_dir, list_detectors
    from salrank.proposals.registry import detector_info
    from salrank.weights import WeightsNotFoundError

    if args.list:
        for name in list_detectors():
            info = detector_info(name)
            print(f"{name:34s} {info.description}")
        return 0
    if args.out is None or (args.images is None and args.sample is None):
        raise CommandError("give --out FILE and one of --images DIR or --sample")
    from salrank.errors import check_int, check_number
    from salrank.proposals.filtering import check_filter_options

    check_number("score_threshold", args.score_threshold, 0.0, 1.0)
    check_int("batch_size", args.batch_size, 1)
    check_int("seed", args.seed, 0)
    check_int("max_side", args.max_side, 0)
    check_output_file(args.out)
    filter_options = {
        "max_area_frac": args.max_area_frac,
        "min_area": args.min_area,
        "min_side": args.min_side,
        "min_area_frac": args.min_area_frac,
        "iou_threshold": args.iou_threshold,
        "top_n": args.top_n,
    }
    check_filter_options(**filter_options)
    try:
        name = detector_info(args.detector).name
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None

    true_boxes = None
    if args.images is not None:
        try:
            images = images_in_dir(args.images)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if args.true_boxes is not None:
            from salrank.data.sample import load_coco_boxes

            try:
                true_boxes = load_coco_boxes(args.true_boxes)
            except (FileNotFoundError, ValueError) as exc:
                raise CommandError(str(exc)) from None
    else:
        which = args.sample if args.sample != "auto" else ("synthsal" if name == "oracle" else "salicon")
        images, true_boxes = _sample_images(which, args.split, progress=not args.quiet)
    if name == "oracle":
        if true_boxes is None:
            raise CommandError("--detector oracle needs true boxes: use --sample, or --images with --true-boxes")
        missing = sorted(set(images) - set(true_boxes))
        if missing:
            raise CommandError(f"no true boxes for {len(missing)} image(s), e.g. {missing[0]!r}")

    kwargs = {"score_threshold": args.score_threshold, "batch_size": args.batch_size}
    if name == "oracle":
        kwargs.update(true_boxes=true_boxes, score_threshold=0.0)
    try:
        try:
            detector = create_detector(name, pretrained=not args.random_init, weights=args.weights,
                                       device=rank_device(args.device), seed=args.seed, **kwargs)
        except WeightsNotFoundError as exc:
            from salrank.profiles import get_profile

            if args.weights is not None or get_profile().pretrained != "auto":  # "auto": random when missing
                raise
            print(f"note: {str(exc).splitlines()[0].rstrip('.')}; the sample profile falls back to random weights "
                  f"(seed {args.seed}): the proposals are meaningless (SALRANK_PROFILE=full makes this an error)")
            detector = create_detector(name, pretrained=False, device=rank_device(args.device), seed=args.seed,
                                       **kwargs)
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    from salrank.distributed import run_sharded
    from salrank.proposals.generate import merge_proposal_parts, skipped_path

    def write(keys, path):
        return generate_proposals(detector, {k: images[k] for k in keys}, path, batch_size=args.batch_size,
                                  filter_options=filter_options, apply_filter=not args.no_filter,
                                  progress=not args.quiet, max_side=args.max_side,
                                  on_error="raise" if args.strict else "skip",
                                  log=lambda message: print(message, file=sys.stderr))

    try:
        wrote = run_sharded(args.out, list(images), write, merge_proposal_parts, chunk=args.batch_size)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if wrote:
        skipped = skipped_path(args.out)
        n_skipped = len(json.loads(skipped.read_text(encoding="utf-8"))) if skipped.is_file() else 0
        note = f"; skipped {n_skipped} unreadable image(s), listed in {skipped}" if n_skipped else ""
        print(f"wrote proposals for {len(images) - n_skipped} image(s) to {args.out}{note}")
    return 0
