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


#: The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED_STATUS = 130


def run_reporting_user_errors(main: Callable[[], int | None], program: str) -> int:
    """Run a command-line ``main``: a user error becomes ``PROGRAM: error: MESSAGE`` and exit status 2;
    Ctrl-C becomes one line and status 130 (jobs leave their output folders as they were)."""
    try:
        return int(main() or 0)
    except USER_ERRORS as error:
        print(f"{program}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{program}: interrupted; output folders are left as they were before the run", file=sys.stderr)
        return INTERRUPTED_STATUS


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class CalibrationError(CapsqError):
    """An observer cannot produce a scale: it saw no data, or it saw NaN or infinite values."""


class ConfigError(CapsqError, ValueError):
    """A configuration the plugin cannot use (a job's options, an NNCF configuration file or dict); the
    message names the option or key and the fix."""


class AllocationError(CapsqError, ValueError):
    """A bit allocation (a file, a dict or an object) is malformed or does not fit the model."""


class MissingFileError(CapsqError, FileNotFoundError):
    """A file the user named (an allocation, a state dict, a configuration) does not exist."""


class ExportInputError(ExportError, ValueError):
    """An argument of ``export_onnx`` cannot work (the opset, the example inputs, the destination path):
    refused before the export starts."""
