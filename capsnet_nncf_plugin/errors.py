"""The error hierarchy: every error meant for a user derives from :class:`CapsqError`.

Each message names the problem and the fix; the CLI prints it as one line without a traceback.
"""

from __future__ import annotations


class CapsqError(Exception):
    """Base class of the plugin's user-facing errors."""


class DatasetError(CapsqError):
    """A dataset is missing, corrupted, truncated or in an unexpected format."""


class CheckpointError(CapsqError):
    """A checkpoint file is missing, unreadable or does not describe a known model."""


class ExportError(CapsqError):
    """A model cannot be exported to ONNX, or its export does not reproduce it."""
