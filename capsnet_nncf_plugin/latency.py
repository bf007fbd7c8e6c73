"""Median latency of a classifier callable: what reports and benchmarks quote as ms per image."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


@torch.no_grad()
def median_latency_ms(
    classifier: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    repeats: int = 10,
    warmup: int = 2,
) -> float:
    """Median wall time in milliseconds of ``classifier(images)`` over ``repeats`` runs after ``warmup``."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        classifier(images)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier(images)
        timings.append(1000.0 * (time.perf_counter() - started))
    return statistics.median(timings)
