"""The one exception a user can cause.

Library code raises `VoxloraError` with a message that names the file, the line where there is one,
and what is wrong, e.g. ``train.jsonl:17: missing "audio"``. The commands print it as one line
(``Error: …``) and exit 1; anything else is a bug and shows a traceback only under ``--debug``.
"""


class VoxloraError(Exception):
    """A problem with the user's input or environment, reported as one line."""


def where(path, line: int | None = None) -> str:
    """``path`` or ``path:line``, the prefix every error message starts with."""
    return f"{path}:{line}" if line is not None else str(path)


class UsageError(VoxloraError):
    """A bad option value or combination found by the library (e.g. ``--targets`` unknown to the
    model's family): the commands report it as click's usage errors, exit 2."""
