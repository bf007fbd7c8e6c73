"""keep_freed_memory: a large tensor freed and allocated again costs no new page faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

from capsnet_nncf_plugin.heap import user_tunes_malloc

# 64 MB tensors, each filled (so its pages are touched), freed and allocated again; prints the minor page
# faults of 10 rounds after 10 rounds of warm-up. A fresh process each time: the tuning is process-wide.
_FAULTS = """
import resource, sys, torch
from capsnet_nncf_plugin.heap import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
for _ in range(10):  # small allocations between rounds split freed chunks at first: a steady state later
    torch.empty(16 * 2**20).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(16 * 2**20).fill_(1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES_PER_TENSOR = 64 * 2**20 // 4096


def _page_faults(mode: str) -> int:
    environment = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* / GLIBC_TUNABLES from the caller
    result = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, env=environment, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_tensors_are_reused_without_page_faults():
    # Default glibc: each 64 MB tensor is a fresh mmap, every page faulted in again.
    assert _page_faults("default") > 5 * PAGES_PER_TENSOR
    # Tuned: the same heap memory serves every round.
    assert _page_faults("tuned") < PAGES_PER_TENSOR // 4


def test_the_environment_wins():
    assert user_tunes_malloc({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"})
    assert user_tunes_malloc({"MALLOC_MMAP_MAX_": "0"})
    assert not user_tunes_malloc({"MALLOC_CONF": "x", "PATH": "/bin"})  # jemalloc's, not glibc's
