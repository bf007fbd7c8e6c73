"""Where a job's time goes: its phases, each timed and logged, for the summary and the report.

A run that takes minutes should say which part took them: on DeepCaps the error analysis and the two
test-set passes of ``capsq quantize`` cost more than many searches (docs/search-speed.md).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class PhaseTimer:
    """Wall-clock seconds per named phase, in the order the phases first ran (a phase run twice adds up)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as phase ``name``; a block that raises is not recorded."""
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        logger.info("%s: %.1f s", name.replace("_", " "), self.seconds[name])

    def describe(self) -> str:
        """``"123 s: error analysis 40 s, search 50 s, ..."``: the total, then each phase."""
        phases = ", ".join(f"{name.replace('_', ' ')} {value:.0f} s" for name, value in self.seconds.items())
        return f"{sum(self.seconds.values()):.0f} s: {phases}"
