"""The observers' user-facing error (defined with the others in :mod:`capsnet_nncf_plugin.errors`)."""

from capsnet_nncf_plugin.errors import CalibrationError

__all__ = ["CalibrationError"]
