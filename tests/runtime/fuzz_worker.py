"""Robustness fuzz of the custom-op library, run in a child process by test_fuzz.py (so that a crash fails
the test instead of killing pytest).

Every case is a one-node model with random shapes (empty, rank 0..5, oversized dimensions), dtypes
(valid and not), attributes (missing, wrong type, out of range, wrong list lengths, unknown extras, wrong
declared output type) and values (in range, extremes of the dtype, beyond the declared range). The library
must either fail with an onnxruntime error or return exactly the torch reference's result; and it must fail
exactly when the reference fails or the case is outside what the ONNX op accepts.

    python fuzz_worker.py SEED MAX_CASES MAX_SECONDS   ->  one JSON line of counts; exit 1 on a mismatch
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import onnx
import onnxruntime
import torch
from onnx import AttributeProto, TensorProto, helper

from capsnet_nncf_plugin.ops import RoutingQuantization, int_dynamic_routing, int_squash
from capsnet_nncf_plugin.runtime import InferenceSession

ONNX_TYPES = {
    np.int8: TensorProto.INT8,
    np.int16: TensorProto.INT16,
    np.int32: TensorProto.INT32,
    np.int64: TensorProto.INT64,
    np.uint8: TensorProto.UINT8,
    np.float32: TensorProto.FLOAT,
    np.bool_: TensorProto.BOOL,
}
KERNEL_INPUT_TYPES = (np.int8, np.int16, np.int32)
DTYPES = [*KERNEL_INPUT_TYPES * 4, np.int64, np.uint8, np.float32, np.bool_]
ROUTING_INT_ATTRIBUTES = ("iterations", "votes_exponent", "votes_bits")
ROUTING_LIST_ATTRIBUTES = (
    "coupling_bits",
    "pre_exponents",
    "pre_bits",
    "out_bits",
    "logit_exponents",
    "logit_bits",
)
BAD_INTS = [0, 1, 17, -1, -32, 7, 100, -(1 << 40), 1 << 40]


class Case:
    def __init__(self, op_type, dtype, values, attributes, output_type, output_rank):
        self.op_type = op_type
        self.dtype = dtype
        self.values = values
        self.attributes = attributes  # name -> python value or AttributeProto (a malformed one)
        self.output_type = output_type
        self.output_rank = output_rank

    def model(self) -> bytes:
        node = helper.make_node(self.op_type, ["x"], ["y"], domain="capsnet")
        for name, value in self.attributes.items():
            if isinstance(value, AttributeProto):
                node.attribute.append(value)
            elif isinstance(value, list) and not value:
                node.attribute.append(helper.make_attribute(name, [], attr_type=AttributeProto.INTS))
            else:
                node.attribute.append(helper.make_attribute(name, value))
        rank = self.values.ndim
        graph = helper.make_graph(
            [node],
            "fuzz",
            [helper.make_tensor_value_info("x", ONNX_TYPES[self.dtype], [f"d{i}" for i in range(rank)])],
            [
                helper.make_tensor_value_info(
                    "y", self.output_type, [f"o{i}" for i in range(self.output_rank)]
                )
            ],
        )
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("capsnet", 1)]
        return helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()


def random_values(rng, dtype, shape):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype == np.float32:
        return (rng.standard_normal(shape) * 100).astype(np.float32)
    info = np.iinfo(dtype)
    mode = rng.integers(0, 4)
    if mode == 0:  # the whole dtype range, including its extremes
        values = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=np.int64)
    elif mode == 1:  # within a 16-bit signed range
        values = rng.integers(
            max(info.min, -(1 << 15)), min(info.max, (1 << 15) - 1), size=shape, endpoint=True
        )
    else:  # small values
        values = rng.integers(max(info.min, -20), min(info.max, 20), size=shape, endpoint=True)
    values = np.asarray(values, dtype=np.int64)
    if values.size and rng.random() < 0.3:
        values.reshape(-1)[rng.integers(0, values.size)] = info.min if rng.random() < 0.5 else info.max
    return values.astype(dtype)


def random_shape(rng, rank, capsule_axis=None):
    shape = [int(rng.integers(0, 4)) if rng.random() < 0.15 else int(rng.integers(1, 6)) for _ in range(rank)]
    if capsule_axis is not None and rank:
        shape[capsule_axis] = int(rng.choice([1, 2, 3, 8, 16, 32, 64, 65, 0]))
    return tuple(shape)


def mutate_attributes(rng, attributes, int_names, list_names):
    """Break one or two attributes: remove, change type, put out of range, change a list's length."""
    for _ in range(int(rng.integers(1, 3))):
        name = str(rng.choice([*list(attributes), "unknown_extra"]))
        action = int(rng.integers(0, 6))
        if name == "unknown_extra":
            attributes[name] = int(rng.integers(-5, 5))
        elif action == 0:
            attributes.pop(name, None)
        elif action == 1:
            attributes[name] = helper.make_attribute(name, 1.5)  # a float
        elif action == 2:
            attributes[name] = helper.make_attribute(name, "eight")  # a string
        elif action == 3 and name in int_names:
            attributes[name] = [int(rng.integers(2, 9))]  # a list instead of an int
        elif action == 3:
            attributes[name] = int(rng.integers(2, 9))  # an int instead of a list
        elif name in int_names:
            attributes[name] = int(rng.choice(BAD_INTS))
        elif name in list_names and isinstance(attributes[name], list):
            values = list(attributes[name])
            if action == 4 or not values:
                values.append(int(rng.integers(2, 9)))  # wrong length
            else:
                values[int(rng.integers(0, len(values)))] = int(rng.choice(BAD_INTS))
            attributes[name] = values


def squash_case(rng):
    dtype = DTYPES[int(rng.integers(0, len(DTYPES)))]
    rank = int(rng.choice([0, 1, 1, 2, 2, 3, 4, 5]))
    axis = int(rng.integers(-rank, rank)) if rank else 0
    if rng.random() < 0.1:
        axis = int(rng.choice([rank, -rank - 1, 7]))
    shape = random_shape(rng, rank, axis % rank if rank and -rank <= axis < rank else None)
    bits_out = int(rng.integers(2, 17))
    attributes = {"exponent_in": int(rng.integers(-31, 7)), "bits_out": bits_out}
    if rng.random() < 0.7:
        attributes["axis"] = axis
    if rng.random() < 0.3:
        mutate_attributes(rng, attributes, {"exponent_in", "bits_out", "axis"}, set())
    output_type = TensorProto.INT8 if bits_out <= 8 else TensorProto.INT16
    if rng.random() < 0.08:
        output_type = int(
            rng.choice([TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.FLOAT])
        )
    return Case("IntSquash", dtype, random_values(rng, dtype, shape), attributes, output_type, rank)


def routing_case(rng):
    dtype = DTYPES[int(rng.integers(0, len(DTYPES)))]
    rank = 4 if rng.random() < 0.85 else int(rng.choice([0, 1, 3, 5]))
    shape = list(random_shape(rng, rank))
    if rank == 4 and rng.random() < 0.3:
        shape[int(rng.integers(0, 4))] = int(rng.choice([0, 65, 1000])) if rng.random() < 0.5 else 0
    if rank == 4 and np.prod(shape) > 20000:
        shape[0] = 0
    iterations = int(rng.integers(1, 5))

    def widths(count):
        return [int(rng.integers(2, 17)) for _ in range(count)]

    def exponents(count):
        return [int(rng.integers(-31, 7)) for _ in range(count)]

    attributes = {
        "iterations": iterations,
        "votes_exponent": exponents(1)[0],
        "votes_bits": widths(1)[0],
        "coupling_bits": widths(iterations),
        "pre_exponents": exponents(iterations),
        "pre_bits": widths(iterations),
        "out_bits": widths(iterations),
        "logit_exponents": exponents(iterations - 1),
        "logit_bits": widths(iterations - 1),
    }
    if iterations == 1 and rng.random() < 0.5:
        del attributes["logit_exponents"], attributes["logit_bits"]
    if rng.random() < 0.3:
        mutate_attributes(rng, attributes, set(ROUTING_INT_ATTRIBUTES), set(ROUTING_LIST_ATTRIBUTES))
    out_bits = attributes.get("out_bits")
    last = out_bits[-1] if isinstance(out_bits, list) and out_bits else 8
    output_type = TensorProto.INT8 if isinstance(last, int) and last <= 8 else TensorProto.INT16
    if rng.random() < 0.08:
        output_type = int(rng.choice([TensorProto.INT8, TensorProto.INT16, TensorProto.INT32]))
    values = random_values(rng, dtype, tuple(shape))
    return Case("IntDynamicRouting", dtype, values, attributes, output_type, 3)


def plain(attributes, name, kind):
    """The attribute as the reference takes it, or None when it is malformed for the ONNX op."""
    value = attributes.get(name)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "ints" and isinstance(value, list) and all(isinstance(v, int) for v in value):
        return value
    return None


def expected_result(case):
    """The reference's result, or None when the op must fail."""
    if case.dtype not in KERNEL_INPUT_TYPES:
        return None
    tensor = torch.from_numpy(case.values.copy())
    try:
        if case.op_type == "IntSquash":
            exponent_in = plain(case.attributes, "exponent_in", "int")
            bits_out = plain(case.attributes, "bits_out", "int")
            axis = plain(case.attributes, "axis", "int") if "axis" in case.attributes else -1
            if exponent_in is None or bits_out is None or axis is None:
                return None
            result = int_squash(tensor, exponent_in, bits_out, dim=axis).numpy()
        else:
            arguments = {name: plain(case.attributes, name, "int") for name in ROUTING_INT_ATTRIBUTES}
            for name in ROUTING_LIST_ATTRIBUTES:
                optional = name.startswith("logit_") and name not in case.attributes
                arguments[name] = [] if optional else plain(case.attributes, name, "ints")
            if any(value is None for value in arguments.values()):
                return None
            result = int_dynamic_routing(tensor, RoutingQuantization(**arguments)).numpy()
    except ValueError:
        return None
    declared = {TensorProto.INT8: np.int8, TensorProto.INT16: np.int16}.get(case.output_type)
    return result if declared == result.dtype else None


def main() -> int:
    seed, max_cases, max_seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    rng = np.random.default_rng(seed)
    torch.set_num_threads(1)
    counts = {"cases": 0, "results": 0, "errors": 0, "session_errors": 0, "mismatches": 0}
    mismatches = []
    start = time.monotonic()
    while counts["cases"] < max_cases and time.monotonic() - start < max_seconds:
        case = squash_case(rng) if rng.random() < 0.5 else routing_case(rng)
        counts["cases"] += 1
        expected = expected_result(case)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4
        options.intra_op_num_threads = int(rng.integers(1, 3))
        result, error = None, None
        try:
            session = InferenceSession(case.model(), options)
        except Exception as exception:  # onnxruntime's errors have no common base class
            counts["session_errors"] += 1
            error = exception
        else:
            try:
                result = session.run(None, {"x": case.values})[0]
            except Exception as exception:
                error = exception
        if error is not None:
            counts["errors"] += 1
        else:
            counts["results"] += 1
        agrees = (
            error is not None
            if expected is None
            else result is not None and result.dtype == expected.dtype and np.array_equal(result, expected)
        )
        if not agrees:
            counts["mismatches"] += 1
            if len(mismatches) < 5:
                mismatches.append(
                    {
                        "op": case.op_type,
                        "dtype": np.dtype(case.dtype).name,
                        "shape": list(case.values.shape),
                        "attributes": {k: str(v) for k, v in case.attributes.items()},
                        "output_type": onnx.TensorProto.DataType.Name(case.output_type),
                        "expected": "error" if expected is None else "result",
                        "got": f"error: {str(error)[:300]}" if error is not None else "result",
                    }
                )
    print(
        json.dumps({**counts, "seconds": round(time.monotonic() - start, 2), "first_mismatches": mismatches})
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
