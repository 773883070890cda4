"""The ``salrank`` command line.

Each sub-command lives in its own module under :mod:`salrank.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code or ``None``). Modules are discovered automatically; only the
module of the command being run registers its full parser (the others are listed by the summary
line of their docstring), so ``salrank --version`` and ``--help`` import nothing heavy.

Errors: every :class:`salrank.errors.UserFacingError` (``CommandError`` included) raised while a
command runs is printed as one line ``salrank COMMAND: error: MESSAGE`` and gives exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from salrank import __version__
from salrank import commands as _commands
from salrank.errors import InvalidOptionError, UserFacingError

#: what the offline-weights error tells a command-line user instead of the API's ``pretrained=False``
RANDOM_WEIGHTS_FLAGS = {"rank": "--no-pretrained", "proposals": "--random-init", "train": "--pretrained no",
                        "eval": "--pretrained no", "bench": "--no-pretrained"}


def command_names() -> list[str]:
    """The sub-command modules, sorted (found without importing them)."""
    return sorted(m.name for m in pkgutil.iter_modules(_commands.__path__) if not m.name.startswith("_"))


def _summary(module) -> str:
    """The help line of a command: its docstring's first sentence after ``salrank NAME:``."""
    first = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    text = first.split(":", 1)[1].strip() if first.startswith("``") and ":" in first else first
    return text.rstrip(".")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``command`` (default: every command) gets its full sub-parser, the others a
    placeholder with their summary line."""
    parser = argparse.ArgumentParser(
        prog="salrank",
        description="Object saliency ranking: RA-SRGT ground truth, FOSRNet, and the paper's results.",
    )
    parser.add_argument("--version", action="version", version=f"salrank {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_names():
        module = importlib.import_module(f"{_commands.__name__}.{name}")
        if command is None or name == command:
            module.register(sub)
        else:
            sub.add_parser(name, help=_summary(module), add_help=False)
    return parser


def _chosen_command(argv: list[str]) -> str:
    """The sub-command named in ``argv`` (the first non-option word), or ``""``."""
    names = set(command_names())
    for word in argv:
        if word == "--":
            break
        if not word.startswith("-"):
            return word if word in names else ""
    return ""


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in str(message).strip().splitlines() if line.strip())


def _user_message(command: str, exc: BaseException, args=None) -> str:
    message = str(exc) or type(exc).__name__
    name, _, rest = message.partition(" ")
    if isinstance(exc, InvalidOptionError) and args is not None and hasattr(args, name):
        message = f"--{name.replace('_', '-')} {rest}"  # the API names the parameter, the CLI its flag
    flag = RANDOM_WEIGHTS_FLAGS.get(command)
    if flag:  # salrank.weights' offline error, raised as is or re-raised by the command
        message = message.replace("build the model with pretrained=False", f"run with {flag} (random weights)")
    return message


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _chosen_command(argv)
    parser = build_parser(command or "")
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        code = args.func(args)
    except UserFacingError as exc:
        print(f"salrank {args.command}: error: {_one_line(_user_message(args.command, exc, args))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
