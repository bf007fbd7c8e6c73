"""``export_onnx``: a quantized capsule network as a QDQ ONNX model with ``capsnet`` integer ops.

Steps: check the opset, the example inputs and the destination (each refusal an ``ExportInputError``
naming the fix, before any slow work); record each quantized module's input format on the example inputs;
rewrite a copy of the converted graph into its export form (quantized modules -> the export forms of the
plugins, built-ins in ``forms.py``, ``torch.quantize_per_tensor`` -> Q/DQ pairs, ``dequantize`` ->
nothing); check that the export form reproduces the quantized model bit for bit; translate it with torch's
dynamo exporter (dynamic batch); store <= 4-bit weights as INT4; declare the ``capsnet`` output types;
check the model with ``onnx.checker``; write it atomically.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch

from capsnet_nncf_plugin.atomic_file import TEMPORARY_SUFFIX, write_bytes_atomically
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.errors import ExportError, ExportInputError
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

#: What a failed write of the file is told to do instead.
_DESTINATION_FIX = "pass the path of a .onnx file in a folder where you may write"


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
        _run_on_examples(model, example_inputs)
    finally:
        for handle in handles:
            handle.remove()
    missing = sorted(set(modules) - set(formats))
    if missing:
        raise ExportError(f"the example inputs never reach {', '.join(missing)}; pass inputs that run them")
    return formats


def _run_on_examples(model: torch.nn.Module, example_inputs: tuple) -> None:
    """Run ``model`` on the example inputs; a failure becomes an :class:`ExportInputError` naming their shape.

    A model built for other images fails deep inside (an einsum, a reshape) with a message about tensor
    sizes; the user needs to hear that the examples do not fit. torch.fx prints the generated code around a
    failing line to stderr before re-raising: that goes into a buffer, shown only if the run succeeds.
    """
    captured = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stderr(captured):
            model(*example_inputs)
    except ExportError:
        raise
    except Exception as error:
        shapes = ("shape " if len(example_inputs) == 1 else "shapes ") + ", ".join(
            str(list(x.shape)) for x in example_inputs
        )
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        raise ExportInputError(
            f"the model fails on the example inputs of {shapes} ({type(error).__name__}: {reason}): "
            "they do not fit the model; pass images shaped like the ones it was built and calibrated for, "
            "e.g. images[:2] of its dataset"
        ) from error
    sys.stderr.write(captured.getvalue())


def _fake_quantize_node(graph: torch.fx.Graph, value: torch.fx.Node, quantizer: PowerOfTwoQuantizer):
    arguments = (value, quantizer.bits, quantizer.signed, quantizer.exponent)
    return graph.call_function(qdq_ops.fake_quantize_as, arguments)


def export_form(
    model: torch.fx.GraphModule, example_inputs: tuple, options: ExportOptions | None = None
) -> torch.fx.GraphModule:
    """A copy of the converted ``model`` in export form (float in, float out, Q/DQ and capsnet ops inside)."""
    options = options or ExportOptions()
    modules = quantized_modules(model) if isinstance(model, torch.fx.GraphModule) else {}
    if not modules:
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

    Raises :class:`~capsnet_nncf_plugin.errors.ExportInputError` (a ``ValueError``) before exporting when
    ``opset`` is not 21..the newest onnx knows, the example inputs are not float32 batches of at least 2
    finite images that the model runs on, or ``path`` cannot be written (a directory, a non-regular file,
    a parent that is a file or not writable); :class:`~capsnet_nncf_plugin.errors.ExportError` naming
    ``path`` if writing fails anyway.
    """
    # Everything that can be checked is checked before the export, which takes seconds to minutes.
    _check_opset(opset)
    example_inputs = _checked_example_inputs(example_inputs)
    destination = _checked_destination(path)
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
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(destination, payload)
    except OSError as error:
        # The atomic write names its temporary ``.part`` file; the user asked for ``destination``.
        raise ExportError(
            f"cannot write the ONNX model to {destination} ({error.strerror or error}); {_DESTINATION_FIX}, "
            f"with room for {len(payload):,} bytes"
        ) from error
    op_types = collections.Counter(
        f"{node.domain}.{node.op_type}" if node.domain else node.op_type for node in model.graph.node
    )
    logger.info("wrote %s (%d bytes, %d INT4 weights)", destination, len(payload), int4_weights)
    return ExportedModel(destination, len(payload), dict(sorted(op_types.items())), int4_weights)


def _check_opset(opset: object) -> None:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int):
        raise ExportInputError(f"opset must be an integer, got {opset!r}; pass opset={MIN_OPSET}")
    if opset < MIN_OPSET:
        # Whatever the weights: activations and biases of 9..16 bits are int16/int32 codes, and every
        # weight has one scale per output channel, all of it read by DequantizeLinear as opset 21 defines.
        raise ExportInputError(
            f"opset {opset} is too old: the export uses per-axis DequantizeLinear on int16/int32 codes and "
            f"INT4 weights, which need opset >= {MIN_OPSET}; pass opset={MIN_OPSET}"
        )
    if opset > newest:
        raise ExportInputError(
            f"opset {opset} is newer than the installed onnx knows (at most {newest}); pass opset={MIN_OPSET}"
        )


def _checked_example_inputs(example_inputs: object) -> tuple[torch.Tensor, ...]:
    """The example inputs as a tuple of float32 batches of at least 2 finite values each."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, (tuple, list)) or not all(
        isinstance(x, torch.Tensor) for x in example_inputs
    ):
        raise ExportInputError(
            f"example_inputs must be a tensor or a tuple of tensors, got {type(example_inputs).__name__}; "
            "pass a batch of images, e.g. images[:2]"
        )
    example_inputs = tuple(example_inputs)
    if not example_inputs or any(x.dim() == 0 for x in example_inputs):
        raise ExportInputError("example_inputs must be one or more batched tensors, e.g. (images[:2],)")
    for x in example_inputs:
        if x.dtype != torch.float32:
            # The models take raw pixels as float 0..255 (docs/architecture.md); quantize_per_tensor, the
            # first op of the integer model, refuses any other dtype.
            raise ExportInputError(
                f"example inputs must be float32 (raw pixels as float 0..255), got {x.dtype}; "
                "pass images.float()"
            )
    if any(x.shape[0] < 2 for x in example_inputs):
        raise ExportInputError(
            "give example inputs with a batch of at least 2, so the exported batch stays dynamic"
        )
    if not all(bool(torch.isfinite(x).all()) for x in example_inputs):
        raise ExportInputError(
            "the example inputs hold NaN or infinite values; pass real images (raw pixels as float 0..255)"
        )
    return example_inputs


def _checked_destination(path: str | os.PathLike) -> Path:
    """``path`` as a Path, once it is clear that the file can be written there (before the slow export)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ExportInputError(
            f"path must be a file path (str or os.PathLike), got {type(path).__name__}; {_DESTINATION_FIX}"
        )
    destination = Path(path)
    shown = str(destination) if str(destination).isprintable() else repr(str(destination))
    cannot = f"cannot write the ONNX model to {shown}"
    try:
        problem = _destination_problem(destination)
    except OSError as error:  # a name too long, a folder that cannot be listed, a read-only file system
        problem = f"{error.strerror or error}; {_DESTINATION_FIX}"
    except ValueError as error:  # an embedded NUL character
        problem = f"{error}; {_DESTINATION_FIX}"
    if problem is not None:
        raise ExportInputError(f"{cannot}: {problem}")
    return destination


def _destination_problem(destination: Path) -> str | None:
    """Why a file cannot be written at ``destination`` (the problem and the fix), or None."""
    if destination.is_dir():
        return f"it is a directory; pass a file path such as {destination / 'model.onnx'}"
    if destination.exists() and not destination.is_file():
        return f"it exists and is not a regular file (a device, a pipe or a socket); {_DESTINATION_FIX}"
    parent = destination.absolute().parent
    existing = next(folder for folder in (parent, *parent.parents) if folder.exists())
    if not existing.is_dir():
        return f"{existing} is a file, so no folder can be made under it; {_DESTINATION_FIX}"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable; {_DESTINATION_FIX}"
    if existing == parent:
        # Permissions do not tell everything (a read-only file system, /proc, a name too long, root):
        # create and remove the kind of temporary file the atomic write will use.
        try:
            descriptor, probe = tempfile.mkstemp(
                prefix=f".{destination.name}.", suffix=TEMPORARY_SUFFIX, dir=parent
            )
        except OSError as error:
            return f"{parent} does not accept new files ({error.strerror or error}); {_DESTINATION_FIX}"
        os.close(descriptor)
        os.unlink(probe)
    return None


__all__ = ["ExportedModel", "export_form", "export_onnx"]
