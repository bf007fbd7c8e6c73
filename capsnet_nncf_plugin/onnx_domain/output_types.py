"""Declaring the output dtypes of ``capsnet`` nodes in a model, which onnxruntime cannot infer.

The output dtype of ``IntSquash`` / ``IntDynamicRouting`` depends on an attribute (int8 up to 8 bits, else
int16), and onnxruntime's custom-op interface only derives output types from input types. So the native
library declares its outputs untyped and onnxruntime takes their type from the model: a graph output or a
``value_info`` entry must state it. :func:`declare_output_types` adds the missing ``value_info`` entries;
:func:`capsnet_nncf_plugin.runtime.InferenceSession` calls it, and ``onnx.shape_inference.infer_shapes``
does the same once :func:`capsnet_nncf_plugin.runtime.register_schemas` ran.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from onnx import AttributeProto, GraphProto, ModelProto

from capsnet_nncf_plugin.onnx_domain.schemas import DOMAIN, output_bits, signed_storage_type


def declare_output_types(model: ModelProto) -> bool:
    """Add a ``value_info`` with the dtype of every ``capsnet`` node output that has no declared type.

    Works on the main graph and every subgraph, in place; existing declarations are left as they are (the
    library rejects a wrong one with a message naming the expected type). Returns whether it added any.
    """
    changed = False
    for graph in _graphs(model.graph):
        declared = {
            value.name
            for value in (*graph.input, *graph.output, *graph.value_info)
            if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type
        }
        for node in graph.node:
            if node.domain != DOMAIN or not node.output or not node.output[0]:
                continue
            if node.output[0] in declared:
                continue
            bits = output_bits(node.op_type, {attribute.name: attribute for attribute in node.attribute})
            if bits is None:
                continue  # an op this module does not know, or missing attributes: the library says which
            graph.value_info.append(
                onnx.helper.make_tensor_value_info(node.output[0], signed_storage_type(bits), None)
            )
            declared.add(node.output[0])
            changed = True
    return changed


def _graphs(graph: GraphProto) -> Iterator[GraphProto]:
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                yield from _graphs(attribute.g)
            elif attribute.type == AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from _graphs(subgraph)
