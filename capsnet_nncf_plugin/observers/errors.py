"""The observers' user-facing error: calibration went wrong in a way the user can fix."""

from __future__ import annotations

from capsnet_nncf_plugin.errors import CapsqError


class CalibrationError(CapsqError):
    """An observer cannot produce a scale: it saw no data, or it saw NaN or infinite values."""
