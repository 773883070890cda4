"""``salrank weights``: list, download and verify the pretrained files the project uses.

``list`` shows each registered file, where it was found (explicit ``SALRANK_WEIGHTS`` folder or
the torch hub cache) or ``missing`` with the path where it is expected, and its checksum status; ``download`` fetches missing files
(offline: the error says where to put them); ``verify`` checks SHA-256 digests (prefixes for the
torchvision/effdet files, whose names carry them).
"""

from __future__ import annotations

import json

from salrank.commands import CommandError


def register(subparsers) -> None:
    p = subparsers.add_parser("weights", help="list, download or verify pretrained weight files",
                              description="List, download or verify the pretrained files the project uses.")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    ls = sub.add_parser("list", help="registered files, where they are and their checksum status")
    ls.add_argument("--no-hash", action="store_true", help="do not read the files to check their checksums")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    dl = sub.add_parser("download", help="download files into the torch hub cache (needs the network)")
    dl.add_argument("names", nargs="*", help="weight names (see 'salrank weights list')")
    dl.add_argument("--all", action="store_true", help="every registered file")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    vf = sub.add_parser("verify", help="check the SHA-256 of files found (all found files by default)")
    vf.add_argument("names", nargs="*", help="weight names (default: every file found)")
    p.set_defaults(func=run, action=None)


def _find(spec):
    """The first existing candidate path of ``spec`` (no download), or ``None``."""
    from salrank.weights import candidate_paths

    return next((c for c in candidate_paths(spec) if c.is_file()), None)


def _expected(spec):
    """Where ``spec``'s file is expected: the ``SALRANK_WEIGHTS`` folder when set, else the torch
    hub cache (where downloads go)."""
    from salrank.weights import candidate_paths

    return candidate_paths(spec)[0]


def _status(spec, path, compute: bool) -> str:
    from salrank.weights import verify

    if path is None:
        return "-"
    if not spec.sha256:
        return "no checksum"
    if not compute:
        return "not checked"
    return "ok" if verify(spec, path) else "MISMATCH"


def _specs(names: list[str]):
    from salrank.weights import get_spec

    try:
        return [get_spec(n) for n in names]
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None


def run(args) -> int:
    from salrank.weights import ChecksumError, WeightsNotFoundError, list_weights, resolve

    if args.action is None or args.action == "list":
        compute = not getattr(args, "no_hash", False)
        rows = []
        for spec in list_weights():
            path = _find(spec)
            expected = _expected(spec)
            rows.append({"name": spec.name, "file": spec.filename, "path": str(path) if path else None,
                         "expected": str(expected), "checksum": _status(spec, path, compute), "url": spec.url})
        if getattr(args, "json", False):
            print(json.dumps(rows, indent=2))
            return 0
        name_w = max(len(r["name"]) for r in rows)
        file_w = max(len(r["file"]) for r in rows)
        for r in rows:
            where = r["path"] or f"missing (put it at {r['expected']})"
            print(f"{r['name']:{name_w}s}  {r['file']:{file_w}s}  {where}  [{r['checksum']}]")
        return 0

    if args.action == "download":
        if not args.names and not args.all:
            raise CommandError("name the weights to download, or pass --all")
        specs = list_weights() if args.all else _specs(args.names)
        failures = []
        for spec in specs:
            try:
                path = resolve(spec, progress=not args.quiet)
                print(f"{spec.name}: {path}")
            except (WeightsNotFoundError, ChecksumError) as exc:
                failures.append(str(exc))
        if failures:
            raise CommandError("\n".join(failures))
        return 0

    if args.action == "verify":
        specs = _specs(args.names) if args.names else list_weights()
        bad = []
        for spec in specs:
            path = _find(spec)
            if path is None:
                if args.names:
                    bad.append(spec.name)
                    print(f"{spec.name}: missing")
                continue
            status = _status(spec, path, compute=True)
            print(f"{spec.name}: {status} ({path})")
            if status == "MISMATCH":
                bad.append(spec.name)
        if not args.names and not any(_find(spec) for spec in specs):
            print("no registered weight file found (see 'salrank weights list')")
        if bad:
            raise CommandError(f"{len(bad)} file(s) missing or failing their checksum: {', '.join(bad)}")
        return 0
    raise CommandError(f"unknown action {args.action!r}")  # pragma: no cover (argparse restricts it)
