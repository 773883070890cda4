"""``salrank rank``: rank the salient objects of new images end to end.

detector -> the paper's proposal filtering -> UNISAL + CNN features -> FOSRNet -> ranks
(1 = most salient). Without ``--checkpoint`` the ranker is untrained. Missing pretrained weights:
on the ``sample`` profile every model falls back to seeded random weights (a note says so and
the output records ``"pretrained": false``); on the ``full`` profile the command fails at once,
naming the missing file. ``--no-pretrained`` asks for random weights (smoke tests only: the
ranks are meaningless); random weights come from ``--seed`` (default 0), so a rerun repeats them.
Images that cannot be read are reported, skipped and listed under ``"skipped"`` in the output
(``--strict``: fail instead). Images with a side above ``--max-side`` pixels are scaled down
before the networks; the boxes are given in the file's pixels. Under ``torchrun --nproc_per_node N
-m salrank rank ...`` the images are sharded across the ranks (runs of ``--batch-size`` of the
sorted stems) and rank 0 merges the parts into the same ``--out`` file (:mod:`salrank.distributed`).

Example::

    salrank rank photo.jpg --checkpoint runs/vit/best.pt --out result.json --overlay ranked.png
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from salrank.commands import CommandError, check_output_file


def register(subparsers) -> None:
    from salrank.data.images import DEFAULT_MAX_SIDE

    p = subparsers.add_parser("rank", help="rank the salient objects of images end to end",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--detector", default="efficientdet_d0", help="proposal detector (default efficientdet_d0)")
    p.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint from salrank train")
    p.add_argument("--backbone", choices=("resnet18", "resnet101"), default="resnet101",
                   help="appearance CNN without --checkpoint (default resnet101)")
    p.add_argument("--out", type=Path, required=True, help="result JSON")
    p.add_argument("--overlay", type=Path, default=None,
                   help="save the image with ranked boxes (with several images: IMAGE stem appended)")
    p.add_argument("--no-pretrained", action="store_true", help="random weights everywhere (smoke tests)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random initialisation (default 0)")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                   help=f"scale images down to this longer side (pixels) before the networks; 0 = never "
                        f"(default {DEFAULT_MAX_SIDE})")
    p.add_argument("--strict", action="store_true", help="fail if any image cannot be read (default: skip it)")
    p.add_argument("--device", default=None, help="default: SALRANK_DEVICE; under torchrun cuda:LOCAL_RANK")
    p.add_argument("--batch-size", type=int, default=16,
                   help="images per batch (detector, features, ranking; crops per CNN forward), taken in sorted-stem "
                        "order (under torchrun: the unit of the split)")
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader processes reading and decoding the next images (default 0: in this process)")
    p.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), default="auto",
                   help="autocast of the feature networks (default auto: bf16/fp16 on CUDA, float32 on the CPU)")
    p.set_defaults(func=run)


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def read_image(path, max_side: int | None, config=None):
    """``(path, decoded image, (sx, sy))`` for a readable image (see
    :func:`salrank.data.images.load_image_bounded` and :func:`salrank.fosrnet.features.decode_image`,
    for the feature configuration ``config``), else ``{"image", "error"}``."""
    from salrank.data.images import ImageReadError, load_image_bounded
    from salrank.fosrnet.features import decode_image

    try:
        image, scale = load_image_bounded(path, max_side or None)
    except ImageReadError as exc:
        return {"image": str(path), "error": str(exc)}
    return Path(path), decode_image(image, config), scale


def read_image_batches(paths, batch_size: int, max_side: int | None, strict: bool, log=_warn, workers: int = 0,
                       config=None):
    """Per run of ``batch_size`` paths, ``(loaded, skipped)``: ``loaded`` = ``[(path, decoded image,
    (sx, sy))]`` of the readable images (:func:`read_image`; read by ``workers`` DataLoader
    processes while the caller works on the previous run), ``skipped`` = ``[{"image", "error"}]``
    of the others, each reported through ``log``. ``strict``: an unreadable image raises
    :class:`CommandError` (after its whole run was tried, naming every bad file)."""
    from functools import partial

    from salrank.fosrnet.features import image_batches

    for batch in image_batches(list(paths), batch_size, partial(read_image, max_side=max_side, config=config),
                               workers):
        loaded = [e for e in batch if not isinstance(e, dict)]
        skipped = [e for e in batch if isinstance(e, dict)]
        if strict and skipped:
            raise CommandError(f"{len(skipped)} image(s) cannot be read (--strict): "
                               + "; ".join(s["error"] for s in skipped))
        for entry in skipped:
            log(f"skipped: {entry['error']}")
        yield loaded, skipped


def _to_file_pixels(result, scale: tuple[float, float], size: tuple[int, int]):
    """``result`` with its boxes and image size in the file's pixels (``size`` = (height, width))."""
    from dataclasses import replace

    import numpy as np

    factor = np.array([scale[0], scale[1], scale[0], scale[1]], dtype=np.float64)
    return replace(result, boxes=result.boxes * factor, image_size=tuple(int(v) for v in size))


def _build_pipeline(args, pretrained: bool):
    from salrank.distributed import rank_device
    from salrank.fosrnet.pipeline import RankingPipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return RankingPipeline.from_checkpoint(
            args.checkpoint, detector=args.detector, pretrained=pretrained,
            backbone=args.backbone, device=rank_device(args.device), seed=args.seed, batch_size=args.batch_size,
            amp=args.amp)


def run(args) -> int:
    import json

    from salrank.data.images import image_size
    from salrank.distributed import current, run_sharded
    from salrank.errors import check_int
    from salrank.fosrnet.pipeline import draw_ranking
    from salrank.io import atomic_write_json
    from salrank.profiles import get_profile
    from salrank.weights import WeightsNotFoundError

    check_int("seed", args.seed, 0)
    check_int("max_side", args.max_side, 0)
    check_int("batch_size", args.batch_size, 1)
    check_int("workers", args.workers, 0)
    check_output_file(args.out)
    if args.overlay is not None:
        check_output_file(args.overlay, "--overlay")
    if args.checkpoint is not None:  # a bad checkpoint fails before any image or model is loaded
        from salrank.fosrnet.train import read_checkpoint

        read_checkpoint(args.checkpoint)
    stems = {p.stem for p in args.images}
    if current().sharded and len(stems) < len(args.images):
        raise CommandError("a sharded run needs distinct image file stems (the stem is the image id)")
    pretrained = not args.no_pretrained
    fallback = None
    try:
        pipeline = _build_pipeline(args, pretrained)
    except WeightsNotFoundError as exc:
        if get_profile().pretrained != "auto":  # the profile's "auto": random weights when a file is missing
            raise
        fallback = str(exc).splitlines()[0].rstrip(".")
        print(f"note: {fallback}; the sample profile falls back to random weights (seed {args.seed}): "
              "the ranks are meaningless (SALRANK_PROFILE=full makes this an error)")
        pretrained = False
        pipeline = _build_pipeline(args, pretrained)
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None
    except (ValueError, ImportError) as exc:
        raise CommandError(str(exc)) from None
    if args.no_pretrained:
        print("note: random weights everywhere (--no-pretrained): the ranks are meaningless")
    if args.checkpoint is None:
        print("note: no --checkpoint: the ranker is untrained")
    print(f"feature networks: {pipeline.weights.label}")
    header = {"detector": pipeline.detector.name, "checkpoint": str(args.checkpoint or ""),
              "pretrained": pretrained, "weights": pipeline.weights.to_dict(), "seed": args.seed,
              "max_side": args.max_side}
    if fallback:
        header["fallback"] = fallback
    by_stem: dict[str, list[Path]] = {}
    for p in args.images:
        by_stem.setdefault(p.stem, []).append(p)

    def write(keys, path):
        """Rank the images of ``keys`` (stems) in runs of ``--batch-size`` and write them to ``path``."""
        done, skipped = {}, []
        paths = [p for k in keys for p in by_stem[k]]  # runs of --batch-size: the same for any number of ranks
        for loaded, bad in read_image_batches(paths, args.batch_size, args.max_side, args.strict,
                                              workers=args.workers, config=pipeline.feature_config):
            skipped += bad
            if not loaded:
                continue
            results = pipeline.rank([image for _, image, _ in loaded], names=[p.name for p, _, _ in loaded])
            for (p, image, scale), result in zip(loaded, results, strict=True):
                done[p] = _to_file_pixels(result, scale, image_size(p))
                if args.overlay is not None:
                    target = args.overlay if len(args.images) == 1 else args.overlay.with_name(
                        f"{args.overlay.stem}_{p.stem}{args.overlay.suffix}")
                    draw_ranking(image.rgb, result, target)
                    print(f"overlay: {target}")
        order = {str(p): i for i, p in enumerate(args.images)}  # the command line's order
        skipped.sort(key=lambda s: order[s["image"]])
        atomic_write_json(path, {**header, "images": [done[p].to_dict() for p in args.images if p in done],
                                 "skipped": skipped})

    def merge(parts, out):
        entries, skipped = {}, {}
        for part in parts:
            record = json.loads(Path(part).read_text(encoding="utf-8"))
            entries.update((entry["image"], entry) for entry in record["images"])
            skipped.update((s["image"], s) for s in record["skipped"])
        atomic_write_json(out, {**header, "images": [entries[p.name] for p in args.images if p.name in entries],
                                "skipped": [skipped[str(p)] for p in args.images if str(p) in skipped]})

    if not run_sharded(args.out, sorted(stems), write, merge, chunk=args.batch_size):
        return 0
    record = json.loads(args.out.read_text(encoding="utf-8"))
    if not record["images"]:
        raise CommandError("no image can be read: " + "; ".join(s["error"] for s in record["skipped"]))
    summary = (f"ranked {sum(len(e['ranks']) for e in record['images'])} proposals in "
               f"{len(record['images'])} image(s)")
    if record["skipped"]:
        summary += f", skipped {len(record['skipped'])} unreadable: " + ", ".join(
            Path(s["image"]).name for s in record["skipped"])
    print(f"{summary}: {args.out}")
    return 0
