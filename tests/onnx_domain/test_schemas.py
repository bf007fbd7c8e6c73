"""The ONNX schemas of the capsnet domain: onnx.checker accepts models using the ops (and rejects malformed
nodes), and shape inference gives their outputs the dtype and shape onnxruntime needs."""

import onnx
import pytest
from onnx import TensorProto, helper

from capsnet_nncf_plugin.onnx_domain import DOMAIN, register_schemas
from capsnet_nncf_plugin.ops import RoutingQuantization

OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
ROUTING = RoutingQuantization(3, -7, 8, (8,) * 3, (-4,) * 3, (8,) * 3, (8, 8, 12), (-6, -6), (8, 8))


def capsule_model(squash_bits=12, squash_output_type=TensorProto.INT16, extra_attribute=None):
    """Routing [N, 1152, 10, 16] int16 votes, then squashing the result again, then an Identity."""
    squash = helper.make_node(
        "IntSquash", ["routed"], ["squashed"], domain=DOMAIN, exponent_in=-11, bits_out=squash_bits
    )
    if extra_attribute is not None:
        squash.attribute.append(extra_attribute)
    graph = helper.make_graph(
        [
            helper.make_node("IntDynamicRouting", ["votes"], ["routed"], domain=DOMAIN, **ROUTING.to_dict()),
            squash,
            helper.make_node("Identity", ["squashed"], ["out"]),
        ],
        "capsules",
        [helper.make_tensor_value_info("votes", TensorProto.INT16, ["N", 1152, 10, 16])],
        [helper.make_tensor_value_info("out", squash_output_type, ["N", 10, 16])],
    )
    return helper.make_model(graph, opset_imports=OPSETS, ir_version=8)


def test_register_schemas_is_idempotent():
    register_schemas()
    register_schemas()
    for name in ("IntSquash", "IntDynamicRouting"):
        schema = onnx.defs.get_schema(name, 1, DOMAIN)
        assert schema.domain == DOMAIN
        assert schema.since_version == 1


def test_checker_accepts_models_using_the_ops():
    register_schemas()
    onnx.checker.check_model(capsule_model(), full_check=True)


def test_shape_inference_types_the_outputs():
    register_schemas()
    inferred = onnx.shape_inference.infer_shapes(capsule_model(), strict_mode=True)
    value_info = {value.name: value.type.tensor_type for value in inferred.graph.value_info}
    assert value_info["routed"].elem_type == TensorProto.INT16  # out_bits[-1] = 12
    assert [d.dim_param or d.dim_value for d in value_info["routed"].shape.dim] == ["N", 10, 16]
    assert value_info["squashed"].elem_type == TensorProto.INT16


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (capsule_model(squash_bits=8), "int8|elem type"),  # inferred int8 against the declared int16 output
        (capsule_model(extra_attribute=helper.make_attribute("dim", 1)), "dim"),
        (capsule_model(extra_attribute=helper.make_attribute("axis", 1.0)), "axis"),
    ],
)
def test_checker_rejects_malformed_nodes(model, message):
    register_schemas()
    with pytest.raises((onnx.checker.ValidationError, onnx.shape_inference.InferenceError), match=message):
        onnx.checker.check_model(model, full_check=True)
