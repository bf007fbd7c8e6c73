"""Storing weights of <= 4 bits as INT4 initializers (opset 21), two per byte, and widening them back.

The export forms keep such weights in int8 buffers named :data:`INT4_BUFFER`; :func:`store_int4_weights`
turns each of them into an INT4 initializer and drops its DequantizeLinear's (zero) zero point, whose type
would have to match. :func:`widen_int4_weights` is its inverse for running (the runtime calls it).
Plain ``onnx`` and numpy: the runtime uses it where torch is not installed.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from capsnet_nncf_plugin.core.integer_format import INT4_MAX_BITS, IntegerType

#: The name part that marks an initializer holding INT4 codes in an int8 buffer (the export forms name
#: their <= ``INT4_MAX_BITS``-bit weight buffers so).
INT4_BUFFER = "int4_codes"
_INT4_LOW, _INT4_HIGH = IntegerType.INT4.range


def pack_int4(codes: np.ndarray) -> bytes:
    """Two's-complement nibbles, two per byte, the first element in the low nibble (the ONNX layout)."""
    nibbles = (codes.astype(np.int8).reshape(-1) & 0x0F).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).tobytes()


def store_int4_weights(model: onnx.ModelProto) -> int:
    """Convert every ``int4_codes`` initializer to INT4 in place; returns how many it converted."""
    graph = model.graph
    converted = {}
    for index, initializer in enumerate(graph.initializer):
        if INT4_BUFFER not in initializer.name or initializer.data_type != TensorProto.INT8:
            continue
        codes = numpy_helper.to_array(initializer)
        if codes.size and (codes.min() < _INT4_LOW or codes.max() > _INT4_HIGH):
            raise ValueError(
                f"{initializer.name} holds codes outside the int4 range {_INT4_LOW}..{_INT4_HIGH} "
                f"(weights of at most {INT4_MAX_BITS} bits)"
            )
        packed = onnx.helper.make_tensor(
            initializer.name, TensorProto.INT4, list(codes.shape), pack_int4(codes), raw=True
        )
        graph.initializer[index].CopyFrom(packed)
        converted[initializer.name] = index
    _retyped(graph, set(converted))
    return len(converted)


def _retyped(graph: onnx.GraphProto, names: set[str]) -> None:
    """After initializers ``names`` changed type: drop their DequantizeLinear zero points (whose type must
    match; 0 is the default), the constants that fed only those, and the type annotations that would now
    contradict them."""
    detached = set()
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in names and len(node.input) > 2:
            detached.add(node.input[2])
            del node.input[2]
    _drop_unconsumed(graph, detached)
    stale = [value for value in graph.value_info if value.name in names]
    for value in stale:
        graph.value_info.remove(value)


def _drop_unconsumed(graph: onnx.GraphProto, names: set[str]) -> None:
    """Remove the values ``names`` (Constant nodes or initializers) where nothing reads them any more:
    onnxruntime would warn about each at every session start, and they cost bytes in the file."""
    consumed = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
    unread = names - consumed
    for node in [n for n in graph.node if n.op_type == "Constant" and set(n.output) <= unread]:
        graph.node.remove(node)
    for initializer in [t for t in graph.initializer if t.name in unread]:
        graph.initializer.remove(initializer)
    for value in [v for v in graph.value_info if v.name in unread]:
        graph.value_info.remove(value)


def widen_int4_weights(model: onnx.ModelProto) -> int:
    """Store every INT4 initializer as INT8 with the same values, in place; returns how many it widened.

    The inverse of :func:`store_int4_weights` for running rather than shipping: onnxruntime's CPU provider
    has no INT4 convolution, so ``DequantizeLinear(INT4) -> Conv`` runs as a float convolution, while an
    INT8 weight fuses into ``QLinearConv`` (about 2.8x faster on ShallowCaps with 3-bit weights). The
    dequantized weights are identical, so unoptimized outputs stay bit for bit the same. Initializers kept
    in external files are left as they are.
    """
    graph = model.graph
    widened = set()
    for index, initializer in enumerate(graph.initializer):
        if initializer.data_type != TensorProto.INT4 or initializer.data_location == TensorProto.EXTERNAL:
            continue
        values = numpy_helper.to_array(initializer).astype(np.int8)
        graph.initializer[index].CopyFrom(numpy_helper.from_array(values, initializer.name))
        widened.add(initializer.name)
    _retyped(graph, widened)
    return len(widened)
