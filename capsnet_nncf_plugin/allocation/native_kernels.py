"""The integer squash and routing of the quantized modules run by the native library, for the search.

The torch reference of the capsule ops (:mod:`capsnet_nncf_plugin.ops`) computes in batched int64 and
float64 passes: it is the definition of the arithmetic, and slow. The C++ kernels of the onnxruntime
custom-op library compute the same integers sample by sample in cache (``csrc/``, checked bit for bit
against the reference by tests/runtime). On DeepCaps' class capsules (votes ``[100, 640, 10, 32]``) the
routing takes 42 ms there against 550 ms in torch, on one core. :func:`native_kernels` hands both ops of
every quantized module to them, through one-node onnxruntime sessions kept per set of attributes, while
the rest of the torch integer model (convolutions, carriers) runs as before: the same predictions, bit for
bit (tests/allocation/test_fast_evaluation.py).

Without the library (a source checkout that was never built) :func:`native_kernels` leaves the reference
in place, so a search is slower but gives the same result.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator

import numpy as np
import torch

from capsnet_nncf_plugin.ops import RoutingQuantization, storage_dtype
from capsnet_nncf_plugin.quantized.modules import CapsuleKernels, capsule_kernels

logger = logging.getLogger(__name__)

#: Torch integer dtypes and the ONNX element types the native ops read and write.
_ONNX_TYPES = {torch.int8: 3, torch.int16: 5, torch.int32: 6}  # TensorProto.INT8, INT16, INT32


@functools.cache
def native_kernels_available() -> bool:
    """Whether onnxruntime and the custom-op library load (checked once per process)."""
    try:
        _session("IntSquash", torch.int16, 1, (("exponent_in", 0), ("bits_out", 8), ("axis", -1)))
    except Exception as error:
        logger.info("native capsule kernels unavailable (%s); the torch reference runs them", error)
        return False
    return True


@functools.cache
def _session(op_type: str, input_dtype: torch.dtype, rank: int, attributes: tuple[tuple[str, object], ...]):
    """A one-node onnxruntime session running ``op_type`` with ``attributes`` on any batch."""
    import onnx

    from capsnet_nncf_plugin.runtime import DOMAIN, DOMAIN_VERSION, InferenceSession, session_options

    node = onnx.helper.make_node(op_type, ["x"], ["y"], domain=DOMAIN, **dict(attributes))
    graph = onnx.helper.make_graph(
        [node],
        op_type,
        [onnx.helper.make_tensor_value_info("x", _ONNX_TYPES[input_dtype], [None] * rank)],
        [onnx.helper.make_tensor_value_info("y", _output_type(op_type, dict(attributes)), None)],
    )
    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", 21), onnx.helper.make_opsetid(DOMAIN, DOMAIN_VERSION)],
    )
    options = session_options()
    # The ops parallelise over samples on onnxruntime's pool: as many threads as torch's. Its threads must
    # not spin-wait between calls (onnxruntime's default): they would take the cores from torch's own
    # threads, which run the convolutions in between (2x slower on 2 cores).
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return InferenceSession(model.SerializeToString(), options)


def _output_type(op_type: str, attributes: dict) -> int:
    bits = attributes["bits_out"] if op_type == "IntSquash" else attributes["out_bits"][-1]
    return _ONNX_TYPES[storage_dtype(bits, signed=True)]


def _narrowest(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes of at most ``bits`` signed bits in the narrowest container the ops read, contiguous.

    One pass for both: poses and votes arrive as strided views, and numpy would copy them again on one core.
    Codes already in their container need ``contiguous()``: ``to`` returns a view of the same dtype as it
    is, strides and all, even when asked for the contiguous format.
    """
    dtype = torch.int8 if bits <= 8 else torch.int16 if bits <= 16 else torch.int32
    return codes.to(dtype, memory_format=torch.contiguous_format).contiguous()


def _run(session, codes: torch.Tensor) -> torch.Tensor:
    array = np.ascontiguousarray(codes.numpy())  # a no-op for _narrowest's codes
    return torch.from_numpy(session.run(None, {"x": array})[0])


def native_squash(s: torch.Tensor, exponent_in: int, bits_out: int, dim: int = -1) -> torch.Tensor:
    """``int_squash`` by the native kernel; ``s`` holds signed codes of at most 16 bits (as the op needs)."""
    codes = _narrowest(s, 16)
    attributes = (("exponent_in", exponent_in), ("bits_out", bits_out), ("axis", dim % s.dim()))
    return _run(_session("IntSquash", codes.dtype, s.dim(), attributes), codes)


def native_routing(votes: torch.Tensor, params: RoutingQuantization) -> torch.Tensor:
    """``int_dynamic_routing`` by the native kernel."""
    codes = _narrowest(votes, params.votes_bits)
    attributes = params.to_dict()
    if not attributes["logit_bits"]:  # one iteration: the op takes the update lists absent
        del attributes["logit_bits"], attributes["logit_exponents"]
    frozen = tuple(
        (key, tuple(value) if isinstance(value, list) else value) for key, value in attributes.items()
    )
    session = _session("IntDynamicRouting", codes.dtype, 4, frozen)
    return _run(session, codes)


NATIVE = CapsuleKernels(squash=native_squash, routing=native_routing)


@contextlib.contextmanager
def native_kernels(enabled: bool = True) -> Iterator[bool]:
    """Inside, every quantized module runs squash and routing with the native kernels (if ``enabled`` and
    the library loads); yields whether they do."""
    if not (enabled and native_kernels_available()):
        yield False
        return
    with capsule_kernels(NATIVE):
        yield True
