"""The built-in capsule recognizers, in the order they run (each sees the matches of those before it).

A recognizer is ``recognize(context) -> list[Match]`` with an ``order`` attribute; plugins add their own
through the ``capsnet_capture_recognizers`` hook (docs/capture.md), registered exactly like these.
"""

from __future__ import annotations

from collections.abc import Callable

from capsnet_nncf_plugin.capture.matches import Match
from capsnet_nncf_plugin.capture.recognizers.capsule_length import recognize_capsule_length
from capsnet_nncf_plugin.capture.recognizers.context import RecognitionContext
from capsnet_nncf_plugin.capture.recognizers.layers import recognize_layers
from capsnet_nncf_plugin.capture.recognizers.primary_capsules import recognize_primary_capsules
from capsnet_nncf_plugin.capture.recognizers.routing import recognize_routing
from capsnet_nncf_plugin.capture.recognizers.squash import recognize_squash
from capsnet_nncf_plugin.capture.recognizers.votes import recognize_votes

Recognizer = Callable[[RecognitionContext], list[Match]]

#: Where a recognizer without an ``order`` runs: after the capsule patterns, before the plain layers.
DEFAULT_ORDER = 60


def ordered(recognizer: Recognizer, order: int) -> Recognizer:
    """Give ``recognizer`` its place in the sequence (lower runs first)."""
    recognizer.order = order
    return recognizer


BUILTIN_RECOGNIZERS: dict[str, Recognizer] = {
    "squash": ordered(recognize_squash, 10),
    "dynamic-routing": ordered(recognize_routing, 20),
    "vote-transform": ordered(recognize_votes, 30),
    "primary-capsules": ordered(recognize_primary_capsules, 40),
    "capsule-length": ordered(recognize_capsule_length, 50),
    "layers": ordered(recognize_layers, 90),
}


def run_order(recognizers: dict[str, Recognizer]) -> list[tuple[str, Recognizer]]:
    """The recognizers by ``order``, then name."""
    return sorted(recognizers.items(), key=lambda item: (getattr(item[1], "order", DEFAULT_ORDER), item[0]))
