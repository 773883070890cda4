"""``salrank rehearsal DIR``: write a rehearsal tree (a stand-in for SALICON, the peers' datasets
and the pretrained weights) to run the full profile where the real files cannot be had.

See :mod:`salrank.data.rehearsal`. Prints the two ``export`` lines that point ``SALRANK_DATA`` and
``SALRANK_WEIGHTS`` at it. Running it again finishes an interrupted tree and writes nothing else.
"""

from __future__ import annotations

from pathlib import Path

from salrank.commands import CommandError


def register(subparsers) -> None:
    from salrank.data.rehearsal import DEFAULT_WEIGHTS

    p = subparsers.add_parser(
        "rehearsal", help="write a rehearsal tree for the full profile (data + weights stand-ins)",
        description="Write a small SALICON-layout data root, the ASSR/IRSR trees, saliency-map folders and "
        "random-valued weight files in the published formats, to rehearse the full profile.")
    p.add_argument("dir", type=Path, metavar="DIR", help="folder of the tree (DIR/data, DIR/weights)")
    p.add_argument("--train", type=int, default=24, help="SALICON train images (default 24)")
    p.add_argument("--val", type=int, default=5, help="paper val images (default 5)")
    p.add_argument("--test", type=int, default=15, help="paper test images (default 15)")
    p.add_argument("--peers", type=int, default=3, help="ASSR/IRSR images per split (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", nargs="*", default=list(DEFAULT_WEIGHTS), metavar="NAME",
                   help="salrank.weights names to write (default: those the full profile loads)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from salrank.data.rehearsal import export_lines, make_rehearsal_tree

    try:
        tree = make_rehearsal_tree(args.dir, n_train=args.train, n_val=args.val, n_test=args.test,
                                   n_peers=args.peers, seed=args.seed, weights=args.weights,
                                   progress=not args.quiet)
    except (ValueError, KeyError, FileExistsError) as exc:
        raise CommandError(str(exc)) from None
    print(f"rehearsal tree at {tree.root}")
    print("# rehearsal weights are random: accept them knowingly")
    print("export SALRANK_PROFILE=full SALRANK_TRUST_WEIGHTS=1")
    for line in export_lines(tree):
        print(line)
    return 0
