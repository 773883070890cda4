"""``salrank info``: the resolved settings and versions (useful in bug reports)."""

from __future__ import annotations

import json
import platform


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="print the resolved settings and library versions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args) -> int:
    from importlib.metadata import PackageNotFoundError, version

    from salrank import __version__
    from salrank.config import get_settings

    s = get_settings()
    info = {
        "salrank": __version__,
        "python": platform.python_version(),
        "profile": s.profile,
        "data_root": str(s.data_root) if s.data_root else None,
        "weights_dir": str(s.weights_dir) if s.weights_dir else None,
        "cache_dir": str(s.cache_dir),
        "device": s.device,
    }
    for pkg in ("torch", "torchvision", "timm", "effdet", "numpy", "scipy"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = None
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:12s} {v}")
    return 0
