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
