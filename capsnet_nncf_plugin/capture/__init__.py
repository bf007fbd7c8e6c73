"""Capture: quantize CapsNets as their authors wrote them.

``capture(model, example_inputs)`` exports a user's model with ``torch.export``, recognizes the capsule
patterns in the graph (squash, vote transforms, dynamic routing, primary capsules, capsule length) and
returns an equivalent module built from the plugin's modules, weights moved over, for ``prepare_fx``,
``quantize_fx``, the NNCF adapter, ``allocate`` and ``export_onnx``. docs/capture.md lists what is
recognized, what stays float and why, and how a plugin adds a pattern.
"""

from capsnet_nncf_plugin.capture.capture import (
    Capture,
    CaptureReport,
    CaptureWarning,
    capture,
    capture_with_report,
)
from capsnet_nncf_plugin.capture.graph import CapturedGraph, CaptureError
from capsnet_nncf_plugin.capture.matches import FloatRegion, Layout, Match
from capsnet_nncf_plugin.capture.need import ensure_captured, needs_capture
from capsnet_nncf_plugin.capture.rebuild import CapturedModel
from capsnet_nncf_plugin.capture.recognizers import BUILTIN_RECOGNIZERS, RecognitionContext, ordered

__all__ = [
    "BUILTIN_RECOGNIZERS",
    "Capture",
    "CaptureError",
    "CaptureReport",
    "CaptureWarning",
    "CapturedGraph",
    "CapturedModel",
    "FloatRegion",
    "Layout",
    "Match",
    "RecognitionContext",
    "capture",
    "capture_with_report",
    "ensure_captured",
    "needs_capture",
    "ordered",
]
