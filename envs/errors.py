"""The base class of the errors a user can fix (bad input, config, files); the lowest layer, imported by all."""

from __future__ import annotations

import re


class UserError(Exception):
    """A problem with the user's input (flag, config, file, environment), not a bug.

    The command line prints ``error: <message>`` (one line) and exits 2 for these and only these; any other
    exception keeps its traceback.
    """


def one_line(err: BaseException) -> str:
    """``err``'s message on one line, for ``error: <message>``: torch's several-paragraph refusal of a file that
    holds more than tensors (``torch.load(weights_only=True)``) is cut to its reason; other messages' lines are
    joined."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # torch bolds part of its refusal
    for line in text.splitlines():
        if "WeightsUnpickler error:" in line:
            reason = line.strip().split(". ")[0].removeprefix("WeightsUnpickler error: ")
            return f"it holds objects other than tensors, which are not loaded ({reason})"
    return " ".join(text.split())
