"""The C heap tuned for batches of large tensors: freed memory kept for the next batch, not unmapped.

torch allocates CPU tensors with the C library's ``malloc``. glibc serves a request above its mmap
threshold (32 MiB at most) with a fresh ``mmap`` and gives it back with ``munmap`` on free, so each batch
of a DeepCaps evaluation (a batch of 100 images has activations of 40 MB and more) faults every page of its
buffers in again, zero-filled by the kernel. Measured on deepcaps-mnist, FP32 on 2,000 test images, 2 cores:
139 images/s with 9.9 s of system time in 14.4 s; 215 images/s with 0.2 s once such buffers come from the
heap and stay there (peak memory 607 MB instead of 535 MB). The integer model's search gains the same way.

The tuning is process-wide, so the library never applies it on import: the ``capsq`` command calls
:func:`keep_freed_memory` first, as does ``benchmarks/allocation.py``, whose rows time jobs in its own
process; a program that runs the jobs as functions may call it too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger(__name__)

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: Free memory at the top of the heap that glibc keeps instead of returning it: a few batches' buffers.
TRIM_THRESHOLD_BYTES = 1 << 30


def user_tunes_malloc(environment: dict[str, str] | None = None) -> bool:
    """Whether the environment already sets glibc's malloc options (``MALLOC_*_`` or ``GLIBC_TUNABLES``)."""
    environment = os.environ if environment is None else environment
    return "GLIBC_TUNABLES" in environment or any(
        name.startswith("MALLOC_") and name.endswith("_") for name in environment
    )


def keep_freed_memory() -> bool:
    """Serves every allocation from the heap (no ``mmap`` per large tensor) and keeps up to
    :data:`TRIM_THRESHOLD_BYTES` of freed memory for reuse. Returns whether it applied: not outside glibc
    (Linux only; ``mallopt`` is what it calls), nor where the environment tunes malloc already (it wins).
    """
    if not sys.platform.startswith("linux") or user_tunes_malloc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt; musl's stub returns 0 below
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    logger.debug("C heap keeps freed memory for the next batch: %s", applied)
    return applied
