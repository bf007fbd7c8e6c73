"""Invalid models and inputs fail with an onnxruntime error whose message names the problem, at session
creation (attributes, declared types) or at run time (shapes, values, int64 bounds)."""

import numpy as np
import pytest
from onnx import TensorProto

from capsnet_nncf_plugin.ops import RoutingQuantization

SQUASH = {"exponent_in": -4, "bits_out": 8}
ROUTING = RoutingQuantization(2, -6, 8, (8, 8), (-4, -4), (8, 8), (8, 8), (-6,), (8,)).to_dict()


def squash_error(ort_ops, attributes, values, output_type=TensorProto.INT8):
    model = ort_ops.one_node_model("IntSquash", values.dtype, values.ndim, output_type, attributes)
    ort_ops.session(model).run(None, {"x": values})


def routing_error(ort_ops, attributes, values, output_type=TensorProto.INT8):
    model = ort_ops.one_node_model("IntDynamicRouting", values.dtype, values.ndim, output_type, attributes, 3)
    ort_ops.session(model).run(None, {"x": values})


@pytest.mark.parametrize(
    ("changes", "values", "message"),
    [
        ({}, np.array(3, dtype=np.int8), r"s is a scalar"),
        ({"axis": 2}, np.zeros((2, 3), np.int8), r"axis=2 is not a dimension of s with shape \[2, 3\]"),
        ({"axis": -3}, np.zeros((2, 3), np.int8), r"axis=-3 is not a dimension"),
        ({}, np.zeros((2, 65), np.int8), r"capsule dimension 65 along axis=1; IntSquash supports 1\.\.64"),
        ({}, np.zeros((2, 0), np.int8), r"capsule dimension 0"),
        ({"bits_out": 17}, np.zeros((2, 3), np.int8), r"bits_out must be an integer in 2\.\.16, got 17"),
        ({"bits_out": 1}, np.zeros((2, 3), np.int8), r"bits_out must be an integer in 2\.\.16, got 1"),
        (
            {"exponent_in": -32},
            np.zeros((2, 3), np.int8),
            r"exponent_in=-32 is outside the supported -31\.\.6",
        ),
        ({"exponent_in": 7}, np.zeros((2, 3), np.int8), r"exponent_in=7 is outside"),
        (
            {},
            np.array([[40000, 0]], np.int32),
            r"s holds values in 0\.\.40000, outside the signed 16-bit range",
        ),
        ({"bits_out": None}, np.zeros((2, 3), np.int8), r"attribute 'bits_out' is missing"),
        ({"exponent_in": None}, np.zeros((2, 3), np.int8), r"attribute 'exponent_in' is missing"),
        ({"axis": 1.0}, np.zeros((2, 3), np.int8), r"attribute 'axis' must be an int"),
        ({"bits_out": [8]}, np.zeros((2, 3), np.int8), r"attribute 'bits_out' must be an int"),
    ],
)
def test_squash_errors(ort_ops, changes, values, message):
    attributes = {**SQUASH, **changes}
    attributes = {name: value for name, value in attributes.items() if value is not None}
    with pytest.raises(Exception, match=f"IntSquash: .*{message}"):
        squash_error(ort_ops, attributes, values)


def test_squash_wrong_input_and_output_types(ort_ops):
    with pytest.raises(Exception, match=r"tensor\(int64\)"):
        squash_error(ort_ops, SQUASH, np.zeros((2, 3), np.int64))
    with pytest.raises(Exception, match=r"tensor\(float\)"):
        squash_error(ort_ops, SQUASH, np.zeros((2, 3), np.float32))
    with pytest.raises(Exception, match=r"output 0 is declared as int16 .* bits_out=8 makes it int8"):
        squash_error(ort_ops, SQUASH, np.zeros((2, 3), np.int8), output_type=TensorProto.INT16)


def votes(shape, dtype=np.int8):
    return np.zeros(shape, dtype=dtype)


def with_changes(**changes):
    attributes = {**ROUTING, **changes}
    return {name: value for name, value in attributes.items() if value is not None}


@pytest.mark.parametrize(
    ("attributes", "values", "message"),
    [
        (ROUTING, votes((2, 3, 4)), r"votes must be \[N, I, J, D\] \(rank 4\), got rank 3"),
        (ROUTING, votes((1, 2, 3, 4, 5)), r"rank 4\), got rank 5"),
        (ROUTING, votes((2, 3, 0, 8)), r"J=0 output capsules; routing needs 1\.\.65536"),
        (ROUTING, votes((2, 3, 4, 65)), r"capsule dimension D=65"),
        (ROUTING, votes((2, 0, 4, 8)), r"I=0 input capsules"),
        (
            ROUTING,
            np.full((1, 2, 2, 2), 200, np.int16),
            r"votes holds values in 200\.\.200, outside the signed 8-bit",
        ),
        (with_changes(iterations=0), votes((1, 2, 2, 2)), r"iterations must be in 1\.\.16, got 0"),
        (with_changes(iterations=17), votes((1, 2, 2, 2)), r"iterations must be in 1\.\.16, got 17"),
        (
            with_changes(coupling_bits=[8]),
            votes((1, 2, 2, 2)),
            r"coupling_bits has 1 entries but iterations=2",
        ),
        (
            with_changes(logit_bits=[8, 8]),
            votes((1, 2, 2, 2)),
            r"logit_bits has 2 entries but iterations=2 needs 1",
        ),
        (
            with_changes(logit_bits=None, logit_exponents=None),
            votes((1, 2, 2, 2)),
            r"logit_exponents has 0 entries",
        ),
        (with_changes(out_bits=None), votes((1, 2, 2, 2)), r"attribute 'out_bits' is missing"),
        (with_changes(votes_bits=None), votes((1, 2, 2, 2)), r"attribute 'votes_bits' is missing"),
        (with_changes(pre_bits=8), votes((1, 2, 2, 2)), r"attribute 'pre_bits' must be a list of ints"),
        (
            with_changes(pre_exponents=[-4, 1.5]),
            votes((1, 2, 2, 2)),
            r"attribute 'pre_exponents' must be a list",
        ),
        (with_changes(votes_exponent=-40), votes((1, 2, 2, 2)), r"votes_exponent=-40 is outside"),
        (
            with_changes(pre_bits=[8, 20]),
            votes((1, 2, 2, 2)),
            r"pre_bits\[1\] must be an integer in 2\.\.16, got 20",
        ),
        (with_changes(logit_exponents=[9]), votes((1, 2, 2, 2)), r"logit_exponents\[0\]=9 is outside"),
        # 16-bit votes at 2^6 coupled at 16 bits and requantized to 2^-31: the accumulator could overflow.
        (
            with_changes(votes_exponent=6, votes_bits=16, coupling_bits=[16, 16], pre_exponents=[-31, -31]),
            votes((1, 1152, 10, 16), np.int16),
            r"sum_I C\*U can reach .* >= 2\^62 with I=1152",
        ),
        (
            with_changes(votes_exponent=-31, out_bits=[16, 16], logit_exponents=[6], logit_bits=[16]),
            votes((1, 2, 2, 2)),
            None,
        ),
    ],
)
def test_routing_errors(ort_ops, attributes, values, message):
    if message is None:  # a valid corner: coarse logits from fine agreements only round
        routing_error(ort_ops, attributes, values, output_type=TensorProto.INT16)
        return
    with pytest.raises(Exception, match=f"IntDynamicRouting: .*{message}"):
        routing_error(ort_ops, attributes, values)


def test_routing_logit_bound(ort_ops):
    # Logits at 2^6 aligned with agreements at 2^-46 and requantized back to 2^-31: shifted far past 2^62.
    attributes = with_changes(
        iterations=3,
        votes_exponent=-31,
        coupling_bits=[8] * 3,
        pre_exponents=[-4] * 3,
        pre_bits=[8] * 3,
        out_bits=[16] * 3,
        logit_exponents=[6, -31],
        logit_bits=[16, 16],
    )
    with pytest.raises(Exception, match=r"the logit update of iteration 1 can reach .*>= 2\^62"):
        routing_error(ort_ops, attributes, votes((1, 2, 2, 64)), output_type=TensorProto.INT16)


def test_empty_batches(ort_ops):
    model = ort_ops.one_node_model("IntDynamicRouting", np.int16, 4, TensorProto.INT8, ROUTING, 3)
    result = ort_ops.session(model).run(None, {"x": votes((0, 1152, 10, 16), np.int16)})[0]
    assert result.shape == (0, 10, 16)
    assert result.dtype == np.int8
    model = ort_ops.one_node_model("IntSquash", np.int8, 3, TensorProto.INT8, SQUASH)
    assert ort_ops.session(model).run(None, {"x": votes((4, 0, 16))})[0].shape == (4, 0, 16)
