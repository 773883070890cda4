"""``salrank rank``: rank the salient objects of new images end to end.

detector -> the paper's proposal filtering -> UNISAL + CNN features -> FOSRNet -> ranks
(1 = most salient). Without ``--checkpoint`` the ranker is untrained. Offline without pretrained
weights this fails at once, naming the missing file; ``--no-pretrained`` runs every model with
random weights (smoke tests only: the ranks are meaningless).

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
    p.add_argument("--device", default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from salrank.fosrnet.pipeline import RankingPipeline, draw_ranking
    from salrank.io import atomic_write_json
    from salrank.weights import WeightsNotFoundError

    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise CommandError(f"image not found: {', '.join(missing)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            pipeline = RankingPipeline.from_checkpoint(
                args.checkpoint, detector=args.detector, pretrained=not args.no_pretrained,
                backbone=args.backbone, device=args.device)
    except WeightsNotFoundError as exc:
        raise CommandError(str(exc)) from None
    except (FileNotFoundError, KeyError, ValueError, ImportError) as exc:
        raise CommandError(str(exc)) from None
    if args.no_pretrained:
        print("note: random weights everywhere (--no-pretrained): the ranks are meaningless")
    if args.checkpoint is None:
        print("note: no --checkpoint: the ranker is untrained")
    print(f"feature networks: {pipeline.weights.label}")
    results = pipeline.rank([str(p) for p in args.images])
    atomic_write_json(args.out, {"detector": pipeline.detector.name, "checkpoint": str(args.checkpoint or ""),
                                 "pretrained": not args.no_pretrained, "weights": pipeline.weights.to_dict(),
                                 "images": [r.to_dict() for r in results]})
    print(f"ranked {sum(len(r.ranks) for r in results)} proposals in {len(results)} image(s): {args.out}")
    if args.overlay is not None:
        for path, result in zip(args.images, results, strict=True):
            target = args.overlay if len(results) == 1 else args.overlay.with_name(
                f"{args.overlay.stem}_{path.stem}{args.overlay.suffix}")
            draw_ranking(path, result, target)
            print(f"overlay: {target}")
    return 0
