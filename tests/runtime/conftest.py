"""Fixtures of the onnxruntime custom-op tests: one-node ONNX models built by hand, run through the native
library, and the formats and votes they are fed with.

Test modules do not import conftest (the module name is ambiguous with several conftest.py files); they get
the helpers through the ``ort_ops`` fixture.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper

from capsnet_nncf_plugin.ops import RoutingQuantization, check_routing_bounds
from capsnet_nncf_plugin.runtime import DOMAIN, DOMAIN_VERSION, InferenceSession, library_path

ONNX_TYPES = {
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.int16): TensorProto.INT16,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.uint16): TensorProto.UINT16,
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.bool_): TensorProto.BOOL,
}
OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]
#: IR version 8 (onnx opset 17): loadable by every onnxruntime the library supports (1.21 reads up to 10).
IR_VERSION = 8


def storage_type(bits: int) -> int:
    return TensorProto.INT8 if bits <= 8 else TensorProto.INT16


def one_node_model(
    op_type: str, input_dtype, rank: int, output_type: int, attributes: dict, output_rank: int | None = None
) -> bytes:
    """A model with one ``capsnet`` node from input ``x`` (symbolic shape of ``rank``) to output ``y``."""
    node = helper.make_node(op_type, ["x"], ["y"], domain=DOMAIN)
    for name, value in attributes.items():
        if isinstance(value, onnx.AttributeProto):
            node.attribute.append(value)
        elif isinstance(value, (list, tuple)) and not value:
            node.attribute.append(helper.make_attribute(name, [], attr_type=onnx.AttributeProto.INTS))
        else:
            node.attribute.append(helper.make_attribute(name, value))
    input_shape = [f"d{index}" for index in range(rank)]
    output_rank = rank if output_rank is None else output_rank
    output_shape = [f"o{index}" for index in range(output_rank)]
    graph = helper.make_graph(
        [node],
        op_type,
        [helper.make_tensor_value_info("x", ONNX_TYPES[np.dtype(input_dtype)], input_shape)],
        [helper.make_tensor_value_info("y", output_type, output_shape)],
    )
    return helper.make_model(graph, opset_imports=OPSETS, ir_version=IR_VERSION).SerializeToString()


def squash_model(input_dtype, rank: int, exponent_in: int, bits_out: int, axis: int | None = None) -> bytes:
    attributes = {"exponent_in": exponent_in, "bits_out": bits_out}
    if axis is not None:
        attributes["axis"] = axis
    return one_node_model("IntSquash", input_dtype, rank, storage_type(bits_out), attributes)


def routing_model(input_dtype, params: RoutingQuantization) -> bytes:
    return one_node_model(
        "IntDynamicRouting", input_dtype, 4, storage_type(params.output_bits), params.to_dict(), output_rank=3
    )


def session(model: bytes, threads: int = 1) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # kernel errors are expected in several tests; keep stderr quiet
    return InferenceSession(model, options)


def run(model: bytes, values: np.ndarray, threads: int = 1) -> np.ndarray:
    return session(model, threads).run(None, {"x": values})[0]


def random_params(rng: np.random.Generator, inputs: int, capsule_dim: int, bits: int | None = None):
    """Random routing formats (any bit-widths and exponents in range) that pass the int64 bound checks."""
    while True:
        iterations = int(rng.integers(1, 5))

        def widths(count):
            return [int(bits) if bits else int(rng.integers(2, 17)) for _ in range(count)]

        def exponents(count):
            return [int(rng.integers(-31, 7)) for _ in range(count)]

        params = RoutingQuantization(
            iterations,
            int(rng.integers(-31, 7)),
            widths(1)[0],
            widths(iterations),
            exponents(iterations),
            widths(iterations),
            widths(iterations),
            exponents(iterations - 1),
            widths(iterations - 1),
        )
        try:
            check_routing_bounds(params, inputs, capsule_dim)
        except ValueError:
            continue
        return params


def random_signed(rng: np.random.Generator, shape, bits: int, dtype) -> np.ndarray:
    """Uniform values over the whole signed ``bits`` range, with the two extremes planted."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = rng.integers(low, high + 1, size=shape, dtype=np.int64)
    if values.size >= 2:
        flat = values.reshape(-1)
        flat[rng.integers(0, flat.size)] = low
        flat[rng.integers(0, flat.size)] = high
    return values.astype(dtype)


class OrtOps:
    """The helpers above, handed to tests through the ``ort_ops`` fixture."""

    storage_type = staticmethod(storage_type)
    one_node_model = staticmethod(one_node_model)
    squash_model = staticmethod(squash_model)
    routing_model = staticmethod(routing_model)
    session = staticmethod(session)
    run = staticmethod(run)
    random_params = staticmethod(random_params)
    random_signed = staticmethod(random_signed)


@pytest.fixture(scope="session")
def native_library():
    """Path of the built library; fails (with the fix in the message) when the package was not built."""
    return library_path()


@pytest.fixture
def ort_ops(native_library) -> type[OrtOps]:
    return OrtOps


@pytest.fixture(autouse=True)
def single_intra_op_thread():
    """The torch reference on one thread: these tensors gain nothing from a second one on 2 busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
