"""``salrank reproduce``: the whole paper on the full profile, in one resumable command.

proposals -> features -> GT -> training (every experiment the pages need) -> evaluation (every
other page) -> the book, each stage cached and skipped when done; a progress bar per stage and a
stage timing table at the end. See :mod:`salrank.reproduce`.
"""

from __future__ import annotations

import os
from pathlib import Path

from salrank.commands import CommandError


def register(subparsers) -> None:
    from salrank.reproduce import STAGES

    p = subparsers.add_parser(
        "reproduce", help="run the whole paper on the full profile (resumable) and build the book",
        description="Run proposals, features, GT, training, evaluation and the book on the full profile "
        "(SALRANK_DATA, SALRANK_WEIGHTS). Finished stages are skipped; a killed run resumes.")
    p.add_argument("--data", type=Path, default=None, help="SALICON root (default: SALRANK_DATA)")
    p.add_argument("--weights", type=Path, default=None, help="weights folder (default: SALRANK_WEIGHTS)")
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES, metavar="STAGE",
                   help=f"stages to run, of: {', '.join(STAGES)} (default: all)")
    p.add_argument("--force", nargs="+", default=[], choices=STAGES, metavar="STAGE",
                   help="run these stages again even when done")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="first N images per split in the experiments; caps the pages' image counts")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="cap on training epochs")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:0 ... (default: SALRANK_DEVICE)")
    p.add_argument("--out", type=Path, default=Path("_build/reproduce"),
                   help="where the book goes (OUT/html; default _build/reproduce)")
    p.add_argument("--trust", action="store_true",
                   help="accept weight files whose checksum differs from the published one (rehearsal "
                   "weights); results are labelled accordingly (same as SALRANK_TRUST_WEIGHTS=1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from salrank.config import get_settings
    from salrank.reproduce import reproduce, timing_table
    from salrank.weights import TRUST_ENV, ChecksumError, WeightsFormatError, WeightsNotFoundError

    for name in ("limit", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CommandError(f"--{name} must be >= 1")
    if args.trust:
        os.environ[TRUST_ENV] = "1"
    try:
        settings = get_settings(profile="full", data_root=args.data, weights_dir=args.weights,
                                device=args.device, limit=args.limit, epochs=args.epochs)
        result = reproduce(args.stages, settings=settings, out=args.out, force=args.force,
                           progress=not args.quiet)
    except (FileNotFoundError, ValueError, ChecksumError, WeightsFormatError, WeightsNotFoundError) as exc:
        raise CommandError(str(exc)) from None
    print()
    print(timing_table(result))
    print(f"run record: {result.folder / 'stages.json'}")
    if result.book_html:
        print(f"the book: {result.book_html}")
    return 0
