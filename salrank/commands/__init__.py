"""Sub-commands of the ``salrank`` CLI: one module each, with ``register(subparsers)``.

A module's ``run(args)`` raises :class:`CommandError` (alias :class:`UserError`) for a
user-facing failure (bad input, missing weights): the CLI prints its message on one line without
a traceback and exits with code 2. So do the API's own user-facing errors
(:class:`salrank.errors.UserFacingError`). A module must import nothing heavy (torch, pandas,
...) at its top level or in ``register``: the parser is built for every call, ``--version``
included; heavy imports go inside ``run``.
"""

from salrank.errors import UserFacingError


class CommandError(UserFacingError):
    """A user-facing error of a sub-command."""


UserError = CommandError


def check_output_file(path, option: str = "--out") -> None:
    """Fail at once (before any work) when the output file ``path`` cannot be written: it is a
    directory, a parent is a file, or the nearest existing folder is not writable."""
    import os
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{option} {path} is a directory; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CommandError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CommandError(f"{option} {path}: the folder {parent} is not writable")


def check_output_dir(path, option: str = "--out") -> None:
    """Fail at once when the output folder ``path`` is a file or lies under a file."""
    from pathlib import Path

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CommandError(f"{option} {path} is a file; give a folder")
    check_output_file(path / "x" if path.is_dir() else path, option=option)
