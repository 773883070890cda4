"""Sub-commands of the ``salrank`` CLI: one module each, with ``register(subparsers)``.

A module's ``run(args)`` raises :class:`CommandError` for a user-facing failure (bad input,
missing weights): the CLI prints its message without a traceback and exits with code 2.
"""


class CommandError(Exception):
    """A user-facing error of a sub-command."""
