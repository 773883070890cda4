"""``salrank rank``: rank the salient objects of new images end to end.

detector -> the paper's proposal filtering -> UNISAL + CNN features -> FOSRNet -> ranks
(1 = most salient). Without ``--checkpoint`` the ranker is untrained. Offline without pretrained
weights this fails at once, naming the missing file; ``--no-pretrained`` runs every model with
random weights (smoke tests only: the ranks are meaningless). Under ``torchrun --nproc_per_node N
-m salrank rank ...`` the images are sharded across the ranks and rank 0 merges the parts into the
same ``--out`` file (:mod:`salrank.distributed`).

Example::

    salrank rank photo.jpg --checkpoint runs/vit/best.pt --out result.json --overlay ranked.png
"""

from __future__ import annotations

import warnings
from pathlib import Path

from salrank.commands import CommandError


def register(subparsers) -> None:
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
    p.add_argument("--device", default=None, help="default: SALRANK_DEVICE; under torchrun cuda:LOCAL_RANK")
    p.add_argument("--batch-size", type=int, default=16,
                   help="images per pipeline call, taken in sorted-stem order (under torchrun: the unit of the split)")
    p.set_defaults(func=run)


def run(args) -> int:
    from salrank.distributed import rank_device
    from salrank.fosrnet.pipeline import RankingPipeline, draw_ranking
    from salrank.io import atomic_write_json
    from salrank.weights import WeightsNotFoundError

    if args.batch_size < 1:
        raise CommandError("--batch-size must be >= 1")
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise CommandError(f"image not found: {', '.join(missing)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            pipeline = RankingPipeline.from_checkpoint(
                args.checkpoint, detector=args.detector, pretrained=not args.no_pretrained,
                backbone=args.backbone, device=rank_device(args.device))
    except WeightsNotFoundError as exc:
        raise CommandError(str(exc)) from None
    except (FileNotFoundError, KeyError, ValueError, ImportError) as exc:
        raise CommandError(str(exc)) from None
    if args.no_pretrained:
        print("note: random weights everywhere (--no-pretrained): the ranks are meaningless")
    if args.checkpoint is None:
        print("note: no --checkpoint: the ranker is untrained")
    import json

    from salrank.distributed import current, run_sharded

    stems = {p.stem for p in args.images}
    if current().sharded and len(stems) < len(args.images):
        raise CommandError("a sharded run needs distinct image file stems (the stem is the image id)")
    header = {"detector": pipeline.detector.name, "checkpoint": str(args.checkpoint or ""),
              "pretrained": not args.no_pretrained}

    def write(keys, path):
        by_stem: dict[str, list[Path]] = {}
        for p in args.images:
            by_stem.setdefault(p.stem, []).append(p)
        done = {}
        for start in range(0, len(keys), args.batch_size):  # the same batches for any number of ranks
            batch = [p for k in keys[start : start + args.batch_size] for p in by_stem[k]]
            done.update(zip(batch, pipeline.rank([str(p) for p in batch]), strict=True))
        paths = [p for p in args.images if p in done]  # the command line's order
        results = [done[p] for p in paths]
        atomic_write_json(path, {**header, "images": [r.to_dict() for r in results]})
        if args.overlay is not None:
            for image, result in zip(paths, results, strict=True):
                target = args.overlay if len(args.images) == 1 else args.overlay.with_name(
                    f"{args.overlay.stem}_{image.stem}{args.overlay.suffix}")
                draw_ranking(image, result, target)
                print(f"overlay: {target}")

    def merge(parts, out):
        entries = {}
        for part in parts:
            for entry in json.loads(part.read_text(encoding="utf-8"))["images"]:
                entries[entry["image"]] = entry
        atomic_write_json(out, {**header, "images": [entries[p.name] for p in args.images]})

    if run_sharded(args.out, sorted(stems), write, merge, chunk=args.batch_size):
        n = sum(len(e["ranks"]) for e in json.loads(args.out.read_text(encoding="utf-8"))["images"])
        print(f"ranked {n} proposals in {len(args.images)} image(s): {args.out}")
    return 0
