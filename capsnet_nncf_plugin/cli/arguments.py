"""Argument types of the ``capsq`` commands: a value out of range is a usage error before any work starts.

``capsq quantize --tolerance -1`` would otherwise load a model and evaluate it for minutes before the
search rejects the tolerance; argparse reports it at once, naming the option and what it accepts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from capsnet_nncf_plugin.core.integer_format import MAX_BITS, MIN_BITS

Number = TypeVar("Number", int, float)


def _argument_type(
    convert: Callable[[str], Number], accepts: Callable[[Number], bool], expected: str
) -> Callable[[str], Number]:
    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type by it in its own messages
    return parse


bit_width = _argument_type(
    int, lambda bits: MIN_BITS <= bits <= MAX_BITS, f"a bit-width in {MIN_BITS}..{MAX_BITS}"
)
positive_int = _argument_type(int, lambda count: count > 0, "a positive integer")
positive_float = _argument_type(float, lambda value: math.isfinite(value) and value > 0, "a number > 0")
non_negative_float = _argument_type(float, lambda value: math.isfinite(value) and value >= 0, "a number >= 0")


def count_or_all(text: str) -> int | None:
    """A positive number of images, or ``all`` (``None``: every image)."""
    if text.strip().lower() == "all":
        return None
    return positive_int(text)


count_or_all.__name__ = "a positive integer or 'all'"


def positive_or_none(text: str) -> float | None:
    """A number > 0, or ``none`` (``None``: switched off)."""
    if text.strip().lower() == "none":
        return None
    return positive_float(text)


positive_or_none.__name__ = "a number > 0 or 'none'"


def folder_or_none(text: str) -> str | None:
    """A folder path, or ``none`` (``None``: switched off)."""
    if text.strip().lower() == "none":
        return None
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return text


folder_or_none.__name__ = "a folder or 'none'"
