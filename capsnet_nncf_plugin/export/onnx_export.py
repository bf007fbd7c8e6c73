"""``export_onnx``: a quantized capsule network as a QDQ ONNX model with ``capsnet`` integer ops.

Steps: record each quantized module's input format on the example inputs; rewrite a copy of the converted
graph into its export form (quantized modules -> the export forms of the plugins, built-ins in ``forms.py``,
``torch.quantize_per_tensor`` -> Q/DQ pairs, ``dequantize`` -> nothing); check that the export form
reproduces the quantized model bit for bit; translate it with torch's dynamo exporter (dynamic batch);
store <= 4-bit weights as INT4; declare the ``capsnet`` output types; check the model with ``onnx.checker``;
write it atomically.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch

from capsnet_nncf_plugin.atomic_file import write_bytes_atomically
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.errors import ExportError
from capsnet_nncf_plugin.export import capsule_ops, qdq_ops
from capsnet_nncf_plugin.export.forms import ExportOptions
from capsnet_nncf_plugin.onnx_domain import declare_output_types, register_schemas, store_int4_weights
from capsnet_nncf_plugin.plugins import collect
from capsnet_nncf_plugin.quantized.carrier import exponent_of_scale, read_input, signed_from_container
from capsnet_nncf_plugin.quantized.element_moves import value_source
from capsnet_nncf_plugin.quantized.inspection import quantized_modules
from capsnet_nncf_plugin.quantized.modules import QuantizedModule

logger = logging.getLogger(__name__)

#: torch's dynamo exporter logs one warning per torchvision op it cannot register when torchvision is not
#: installed, at every export; capsule networks use none of those ops.
TORCH_EXPORTER_REGISTRY_LOGGER = "torch.onnx._internal.exporter._registration"

#: The lowest opset with INT4 tensors and per-axis DequantizeLinear of int16/int32 codes.
MIN_OPSET = 21


@dataclass
class ExportedModel:
    """What :func:`export_onnx` wrote."""

    path: Path
    size_bytes: int
    op_types: dict[str, int] = field(default_factory=dict)
    int4_weights: int = 0


def _record_input_formats(
    model: torch.fx.GraphModule, modules: dict[str, QuantizedModule], example_inputs: tuple
) -> dict[str, PowerOfTwoQuantizer]:
    """Each quantized module's input format (its own bit-width), seen on a run over the example inputs."""
    formats: dict[str, PowerOfTwoQuantizer] = {}
    handles = []
    for name, module in modules.items():

        def hook(module: QuantizedModule, inputs: tuple, name: str = name) -> None:
            _, quantizer = read_input(inputs[0], module.input_bits)
            if quantizer is None:
                raise ExportError(
                    f"{name} receives float values, not a quantized tensor; export a model converted with "
                    "the plugin's configs (quantize_fx or convert_fx with get_capsnet_convert_custom_config)"
                )
            formats.setdefault(name, quantizer)

        handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(*example_inputs)
    finally:
        for handle in handles:
            handle.remove()
    missing = sorted(set(modules) - set(formats))
    if missing:
        raise ExportError(f"the example inputs never reach {', '.join(missing)}; pass inputs that run them")
    return formats


def _fake_quantize_node(graph: torch.fx.Graph, value: torch.fx.Node, quantizer: PowerOfTwoQuantizer):
    arguments = (value, quantizer.bits, quantizer.signed, quantizer.exponent)
    return graph.call_function(qdq_ops.fake_quantize_as, arguments)


def export_form(
    model: torch.fx.GraphModule, example_inputs: tuple, options: ExportOptions | None = None
) -> torch.fx.GraphModule:
    """A copy of the converted ``model`` in export form (float in, float out, Q/DQ and capsnet ops inside)."""
    options = options or ExportOptions()
    modules = quantized_modules(model)
    if not isinstance(model, torch.fx.GraphModule) or not modules:
        raise ExportError(
            "export_onnx takes a model quantized by the plugin (quantize_fx, or convert_fx with "
            "get_capsnet_convert_custom_config); this one has no quantized capsule modules"
        )
    formats = _record_input_formats(model, modules, example_inputs)
    export_forms = collect("capsnet_export_forms")
    exported = copy.deepcopy(model)
    graph = exported.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target is torch.quantize_per_tensor:
            source, scale_node, zero_point_node, dtype = node.args
            for user in list(node.users):
                if user.op == "call_module" and user.target in modules:
                    quantizer = formats[user.target]
                elif user.op == "call_method" and user.target == "dequantize" and dtype == torch.quint8:
                    scale = float(getattr(exported, scale_node.target))
                    zero_point = int(getattr(exported, zero_point_node.target))
                    signed = signed_from_container(dtype, zero_point)
                    quantizer = PowerOfTwoQuantizer(8, signed, exponent_of_scale(scale, node.name))
                else:
                    raise ExportError(f"cannot export {node.name} feeding {user.format_node()}")
                with graph.inserting_before(user):
                    replacement = _fake_quantize_node(graph, source, quantizer)
                user.replace_input_with(node, replacement)
            graph.erase_node(node)
    for node in list(graph.nodes):
        if node.op == "call_method" and node.target == "dequantize":
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    for node in graph.nodes:
        if node.op != "call_module" or node.target not in modules:
            continue
        module = modules[node.target]
        source = value_source(node.args[0])
        narrowing = None
        if source.op == "call_module" and source.target in modules:
            producer_bits = modules[source.target].output_quantizer.bits
            if module.input_bits < producer_bits:
                narrowing = formats[node.target]
        builder = export_forms.get(type(module))
        if builder is None:
            raise ExportError(f"no export form for {type(module).__name__} ({node.target})")
        parent_name, _, child = node.target.rpartition(".")
        parent = exported.get_submodule(parent_name) if parent_name else exported
        setattr(parent, child, builder(module, formats[node.target], narrowing, options))
    graph.eliminate_dead_code()
    exported.delete_all_unused_submodules()
    exported.recompile()
    return exported


def _check_reproduces(model: torch.nn.Module, exported: torch.nn.Module, example_inputs: tuple) -> None:
    with torch.no_grad():
        expected, actual = model(*example_inputs), exported(*example_inputs)
    if not isinstance(expected, (tuple, list)):
        expected, actual = [expected], [actual]
    for want, got in zip(expected, actual, strict=True):
        want = want.dequantize() if want.is_quantized else want
        if want.shape != got.shape or not torch.equal(want, got):
            difference = (want - got).abs().max().item() if want.shape == got.shape else "shape"
            raise ExportError(
                "the export form does not reproduce the quantized model on the example inputs (max "
                f"difference {difference}); this is a bug in capsnet_nncf_plugin.export: please report it"
            )


@contextlib.contextmanager
def quiet_torch_exporter() -> Iterator[None]:
    """Run torch's ONNX exporter without its Python warnings and its torchvision registry warnings, which say
    nothing about the model being exported (errors still raise and are still logged)."""
    registry_logger = logging.getLogger(TORCH_EXPORTER_REGISTRY_LOGGER)
    previous_level = registry_logger.level
    registry_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        registry_logger.setLevel(previous_level)


def export_onnx(
    quantized_model: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...] | torch.Tensor,
    path: str | os.PathLike,
    opset: int = MIN_OPSET,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    unsigned_weights: bool = True,
) -> ExportedModel:
    """Export a model quantized by the plugin to a QDQ ONNX file at ``path`` (written atomically).

    Standard layers become DequantizeLinear -> op -> QuantizeLinear groups with power-of-two scales, which
    onnxruntime fuses into QLinearConv and friends; weights of <= 4 bits are stored as INT4, the rest as
    INT8 (INT16 above 8 bits); squash and dynamic routing become ``capsnet`` domain nodes. The batch
    dimension is dynamic. Run the file with :class:`capsnet_nncf_plugin.runtime.InferenceSession`.

    ``unsigned_weights`` (default) stores the weights of a convolution as uint8 with zero point 128 where
    onnxruntime's u8 x s8 kernels could saturate (8-bit weights on 8-bit inputs, on x86 CPUs without VNNI),
    so the fused kernels are exact everywhere; narrower layers keep int8 weights and the faster u8 x s8
    path. ``False`` stores every weight as int8.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is too old: INT4 weights need opset >= {MIN_OPSET}; pass opset=21")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    if not example_inputs or any(x.dim() == 0 for x in example_inputs):
        raise ValueError("example_inputs must be one or more batched tensors, e.g. (images[:2],)")
    if any(x.shape[0] < 2 for x in example_inputs):
        raise ValueError(
            "give example inputs with a batch of at least 2, so the exported batch stays dynamic"
        )
    exported = export_form(quantized_model, example_inputs, ExportOptions(unsigned_weights))
    _check_reproduces(quantized_model, exported, example_inputs)

    translations = {**qdq_ops.onnx_translations(), **capsule_ops.onnx_translations()}
    batch = torch.export.Dim("batch")
    dynamic_shapes = tuple({0: batch} for _ in example_inputs)
    with quiet_torch_exporter():
        program = torch.onnx.export(
            exported,
            example_inputs,
            dynamo=True,
            opset_version=opset,
            dynamic_shapes=dynamic_shapes,
            custom_translation_table=translations,
            input_names=input_names,
            output_names=output_names,
            # onnxscript's optimizer folds `x + 1e-8` into `x` (it treats tiny constants as zero), which
            # would change a capsule length of 0 from 1e-4 to 0: keep the graph as traced.
            optimize=False,
            verbose=False,
        )
    model = program.model_proto
    int4_weights = store_int4_weights(model)
    declare_output_types(model)
    model.producer_name = "capsnet_nncf_plugin"
    register_schemas()
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the exported model fails onnx.checker: {error}") from error
    payload = model.SerializeToString()
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(destination, payload)
    op_types = collections.Counter(
        f"{node.domain}.{node.op_type}" if node.domain else node.op_type for node in model.graph.node
    )
    logger.info("wrote %s (%d bytes, %d INT4 weights)", destination, len(payload), int4_weights)
    return ExportedModel(destination, len(payload), dict(sorted(op_types.items())), int4_weights)


__all__ = ["ExportedModel", "export_form", "export_onnx"]
