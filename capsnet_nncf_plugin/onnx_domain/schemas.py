"""ONNX schemas of the ``capsnet`` domain (version 1): ``IntSquash`` and ``IntDynamicRouting``.

:func:`register_schemas` registers them with ``onnx.defs`` (idempotently), so that
``onnx.checker.check_model(model, full_check=True)`` and ``onnx.shape_inference.infer_shapes`` accept and
type models that use the ops. Their inference functions give each output its dtype (int8 up to 8 bits, else
int16, from ``bits_out`` / ``out_bits[-1]``) and, where the input shape is known, its shape. The arithmetic
itself is specified in docs/integer-ops.md; onnxruntime runs it through the native library
(:mod:`capsnet_nncf_plugin.runtime.library`).
"""

from __future__ import annotations

import onnx
from onnx import AttributeProto, TensorProto, TypeProto
from onnx.defs import OpSchema

from capsnet_nncf_plugin.core.integer_format import IntegerType, code_type

#: The ONNX domain of the integer capsule ops and its one version.
DOMAIN = "capsnet"
DOMAIN_VERSION = 1
INT_SQUASH = "IntSquash"
INT_DYNAMIC_ROUTING = "IntDynamicRouting"

_INPUT_TYPES = ["tensor(int8)", "tensor(int16)", "tensor(int32)"]
_OUTPUT_TYPES = ["tensor(int8)", "tensor(int16)"]
_INT = OpSchema.AttrType.INT
_INTS = OpSchema.AttrType.INTS


#: ONNX element types of the integer containers of :mod:`capsnet_nncf_plugin.core.integer_format`.
ONNX_TYPES: dict[IntegerType, int] = {
    IntegerType.INT4: TensorProto.INT4,
    IntegerType.UINT8: TensorProto.UINT8,
    IntegerType.INT8: TensorProto.INT8,
    IntegerType.UINT16: TensorProto.UINT16,
    IntegerType.INT16: TensorProto.INT16,
    IntegerType.INT32: TensorProto.INT32,
}


def signed_storage_type(bits: int) -> int:
    """``TensorProto`` element type of a signed ``bits``-bit result: INT8 up to 8 bits, else INT16."""
    return ONNX_TYPES[code_type(bits, signed=True)]


def output_bits(op_type: str, attributes: dict[str, AttributeProto]) -> int | None:
    """Bit-width of the op's output from its attributes (``None`` if they do not say)."""
    if op_type == INT_SQUASH:
        attribute = attributes.get("bits_out")
        return attribute.i if attribute is not None and attribute.type == AttributeProto.INT else None
    if op_type == INT_DYNAMIC_ROUTING:
        attribute = attributes.get("out_bits")
        if attribute is not None and attribute.type == AttributeProto.INTS and attribute.ints:
            return attribute.ints[-1]
    return None


def int_squash_schema() -> OpSchema:
    return OpSchema(
        INT_SQUASH,
        DOMAIN,
        DOMAIN_VERSION,
        "Integer squash v = s |s| / (1 + |s|^2) of power-of-two quantized capsules along `axis`, rounding "
        "half away from zero (docs/integer-ops.md, section 4). Output: signed `bits_out` bits with exponent "
        "-(bits_out - 1), int8 up to 8 bits, else int16.",
        inputs=[
            OpSchema.FormalParameter(
                "s", "T", "capsules, values in [-2^15, 2^15 - 1], value s * 2^exponent_in"
            )
        ],
        outputs=[OpSchema.FormalParameter("v", "Y", "squashed capsules, same shape")],
        type_constraints=[
            ("T", _INPUT_TYPES, "quantized input"),
            ("Y", _OUTPUT_TYPES, "int8 if bits_out <= 8, else int16"),
        ],
        attributes=[
            OpSchema.Attribute("exponent_in", _INT, "exponent e of s, in -31..6"),
            OpSchema.Attribute("bits_out", _INT, "output bit-width, 2..16"),
            OpSchema.Attribute("axis", onnx.helper.make_attribute("axis", -1), "capsule axis; length 1..64"),
        ],
    )


def int_dynamic_routing_schema() -> OpSchema:
    per_iteration = "one entry per iteration"
    per_update = "one entry per logit update (iterations - 1); absent means empty"
    return OpSchema(
        INT_DYNAMIC_ROUTING,
        DOMAIN,
        DOMAIN_VERSION,
        "Integer dynamic routing (routing by agreement) over votes [N, I, J, D], rounding half away from "
        "zero (docs/integer-ops.md, section 6). Output [N, J, D]: signed out_bits[-1] bits with exponent "
        "-(out_bits[-1] - 1), int8 up to 8 bits, else int16.",
        inputs=[
            OpSchema.FormalParameter("votes", "T", "[N, I, J, D], values in the signed votes_bits range")
        ],
        outputs=[OpSchema.FormalParameter("v", "Y", "routed capsules [N, J, D]")],
        type_constraints=[
            ("T", _INPUT_TYPES, "quantized votes"),
            ("Y", _OUTPUT_TYPES, "int8 if out_bits[-1] <= 8, else int16"),
        ],
        attributes=[
            OpSchema.Attribute("iterations", _INT, "T, 1..16"),
            OpSchema.Attribute("votes_exponent", _INT, "exponent of the votes, -31..6"),
            OpSchema.Attribute("votes_bits", _INT, "signed bit-width of the votes, 2..16"),
            OpSchema.Attribute("coupling_bits", _INTS, f"unsigned bits of the couplings; {per_iteration}"),
            OpSchema.Attribute("pre_exponents", _INTS, f"exponents of the pre-activations; {per_iteration}"),
            OpSchema.Attribute("pre_bits", _INTS, f"signed bits of the pre-activations; {per_iteration}"),
            OpSchema.Attribute("out_bits", _INTS, f"signed bits of the squashed capsules; {per_iteration}"),
            OpSchema.Attribute(
                "logit_exponents", _INTS, f"exponents of the logits; {per_update}", required=False
            ),
            OpSchema.Attribute(
                "logit_bits", _INTS, f"signed bits of the logits; {per_update}", required=False
            ),
        ],
    )


def _infer(ctx, op_type: str) -> None:
    names = ("bits_out", "axis") if op_type == INT_SQUASH else ("out_bits",)
    attributes = {name: ctx.get_attribute(name) for name in names}
    bits = output_bits(op_type, {name: value for name, value in attributes.items() if value is not None})
    if bits is None:
        return
    output = TypeProto()
    output.tensor_type.elem_type = signed_storage_type(bits)
    input_type = ctx.get_input_type(0)
    if input_type is not None and input_type.tensor_type.HasField("shape"):
        dims = list(input_type.tensor_type.shape.dim)
        if op_type == INT_SQUASH:
            output.tensor_type.shape.dim.extend(dims)
        elif len(dims) == 4:
            output.tensor_type.shape.dim.extend([dims[0], dims[2], dims[3]])
    ctx.set_output_type(0, output)


def schemas() -> list[OpSchema]:
    """The op schemas of the domain, with their type and shape inference functions where onnx allows."""
    built = []
    for op_type, build in (
        (INT_SQUASH, int_squash_schema),
        (INT_DYNAMIC_ROUTING, int_dynamic_routing_schema),
    ):
        schema = build()
        if hasattr(schema, "set_type_and_shape_inference_function"):  # onnx >= 1.16
            schema.set_type_and_shape_inference_function(lambda ctx, op_type=op_type: _infer(ctx, op_type))
        built.append(schema)
    return built


def register_schemas() -> None:
    """Register the ``capsnet`` schemas with ``onnx.defs`` once per process; later calls do nothing."""
    for schema in schemas():
        if not onnx.defs.has(schema.name, DOMAIN_VERSION, DOMAIN):
            onnx.defs.register_schema(schema)
