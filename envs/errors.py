"""The base class of the errors a user can fix (bad input, config, files); the lowest layer, imported by all."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (flag, config, file, environment), not a bug.

    The command line prints ``error: <message>`` (one line) and exits 2 for these and only these; any other
    exception keeps its traceback.
    """
