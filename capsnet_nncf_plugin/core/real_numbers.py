"""What counts as a number in a user's option, config or file: an int or a finite float, never a bool."""

from __future__ import annotations

import math


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is an ``int`` or a finite ``float`` (NaN, infinities and ``bool`` are not).

    ``bool`` is a subclass of ``int``: without the check, ``true`` in a JSON config would pass as 1.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    # An int is always finite; math.isfinite would overflow converting a huge one to float.
    return isinstance(value, int) or math.isfinite(value)
