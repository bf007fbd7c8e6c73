"""Figures: matplotlib without a display, and PNG files written atomically.

pyplot is imported on first use: it costs about a second, which commands that draw nothing should not pay.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from capsnet_nncf_plugin.atomic_file import atomic_output


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend, so figures render on machines without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure: Any, path: str | os.PathLike) -> None:
    """Write ``figure`` to ``path`` as a PNG (a reader never sees half a file), then release it."""
    with atomic_output(path) as pending:
        figure.savefig(pending.stream, format="png", dpi=110)
    pyplot().close(figure)
