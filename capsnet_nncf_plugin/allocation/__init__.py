"""Bit-width allocation: memory accounting now; error analysis and the progressive methods build on it."""

from capsnet_nncf_plugin.allocation.memory import MemoryReport, memory_report

__all__ = ["MemoryReport", "memory_report"]
