"""``salrank bench``: time every stage (GT relabelling ... end to end) and check the speed targets.

Prints a summary table (median, IQR and range over the repeats; ratios measured in the same run;
PASS/FAIL per target) and writes the full record as JSON with ``--json``. ``--quick`` takes a few
minutes on a 2-core CPU. On CUDA the neural stages run under autocast (``--amp auto``) with larger
batches.

Example::

    salrank bench --quick --json benchmarks/cpu-quick.json
    salrank bench --device cuda --json bench-gpu.json
"""

from __future__ import annotations

from pathlib import Path

from salrank.commands import CommandError


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmark every stage and check the speed targets",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a few minutes on a CPU)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, or auto")
    p.add_argument("--only", default=None, metavar="NAMES",
                   help="comma-separated benchmarks to run (see --list); default: all")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per figure (default 3 quick, 5 full)")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"),
                   help="autocast dtype of the neural stages (auto: bf16/fp16 on CUDA, off on the CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the record here (JSON)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and targets, run nothing")
    p.add_argument("--strict", action="store_true", help="exit with code 1 when a target fails")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from salrank.bench import BENCHMARKS, TARGETS, format_summary, run_suite
    from salrank.io import atomic_write_json

    if args.list:
        for b in BENCHMARKS.values():
            print(f"{b.name:14s} {b.description}")
        print()
        for t in TARGETS:
            print(f"target  {t.description}{' (CUDA only)' if t.requires_cuda else ''}")
        return 0
    try:
        record = run_suite(quick=args.quick, device=args.device, only=args.only, repeats=args.repeats,
                           progress=not args.no_progress, amp=args.amp, seed=args.seed)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if args.json is not None:
        atomic_write_json(args.json, record, indent=1)
    print(format_summary(record))
    if args.json is not None:
        print(f"\nrecord written to {args.json}")
    failed = [n for n, info in record["benchmarks"].items() if info.get("error")]
    if failed:
        return 1
    if args.strict and any(t["status"] == "fail" for t in record["targets"]):
        return 1
    return 0
