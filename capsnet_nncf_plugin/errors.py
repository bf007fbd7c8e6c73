"""The error hierarchy: every error meant for a user derives from :class:`CapsqError`.

Each message names the problem and the fix; the CLI prints it as one line without a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class CapsqError(Exception):
    """Base class of the plugin's user-facing errors."""


class DatasetError(CapsqError):
    """A dataset is missing, corrupted, truncated or in an unexpected format."""


class CheckpointError(CapsqError):
    """A checkpoint file is missing, unreadable or does not describe a known model."""


class ExportError(CapsqError):
    """A model cannot be exported to ONNX, or its export does not reproduce it."""


#: What a command-line entry point reports as one line instead of a traceback: the plugin's own errors, and
#: the argument and missing-file errors whose messages already name the problem and the fix.
USER_ERRORS: tuple[type[Exception], ...] = (CapsqError, ValueError, FileNotFoundError)


def run_reporting_user_errors(main: Callable[[], int | None], program: str) -> int:
    """Run a command-line ``main``: a user error becomes ``PROGRAM: error: MESSAGE`` and exit status 2."""
    try:
        return int(main() or 0)
    except USER_ERRORS as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        return 2
