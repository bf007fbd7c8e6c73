"""Bit-width assignment methods, looked up by name: :func:`available_methods`, :func:`get_method`.

Each method is ``method(context) -> BitAllocation`` over a :class:`SearchContext`. The three progressive
approaches (``progressive-descent``, ``error-guided``, ``block-routing``) and the baselines (``uniform-8``,
``qcapsnets``) are registered the way a third-party plugin registers its own (docs/allocation.md).
"""

from capsnet_nncf_plugin.allocation.methods.context import SearchContext
from capsnet_nncf_plugin.allocation.methods.registry import (
    AllocationMethod,
    available_methods,
    get_method,
    register_method,
)

__all__ = ["AllocationMethod", "SearchContext", "available_methods", "get_method", "register_method"]
