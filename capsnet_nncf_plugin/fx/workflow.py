"""``quantize_fx``: prepare, calibrate and convert in one call, with the plugin's configs; and the
prepare and convert steps every FX-built integer model goes through."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
import torch.ao.quantization.fx.utils as torch_ao_fx_utils
from torch.ao.quantization import QConfigMapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from capsnet_nncf_plugin.capture import ensure_captured
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.fx.calibration import calibrate
from capsnet_nncf_plugin.fx.custom_configs import (
    get_capsnet_convert_custom_config,
    get_capsnet_prepare_custom_config,
)
from capsnet_nncf_plugin.fx.input_formats import MODEL_INPUT_BITS, separate_input_formats
from capsnet_nncf_plugin.fx.qconfig import get_capsnet_qconfig_mapping
from capsnet_nncf_plugin.patterns import get_capsnet_backend_config


def release_models_held_by_torch_ao() -> None:
    """Drop the models torch.ao's FX flow keeps alive after ``prepare_fx`` and ``convert_fx`` return.

    torch 2.13 caches each model's device with ``functools.cache`` keyed by the model itself
    (``torch.ao.quantization.fx.utils.assert_and_get_unique_device``), so every model that went through
    ``prepare_fx`` or ``convert_fx`` stays in memory with its weights and observer samples: an allocation
    search on DeepCaps with MSE clipping grew by 0.56 GB per candidate and was killed at 22 GB. Clearing
    the cache costs a device lookup on the next call.
    """
    cache_clear = getattr(torch_ao_fx_utils.assert_and_get_unique_device, "cache_clear", None)
    if cache_clear is not None:  # a torch without the cache has nothing to release
        cache_clear()


def prepare_capsnet_fx(
    model: torch.nn.Module,
    qconfig_mapping: QConfigMapping,
    example_input: torch.Tensor,
    input_bits: int = MODEL_INPUT_BITS,
) -> torch.fx.GraphModule:
    """``prepare_fx`` on a float copy of ``model`` with the plugin's configs; ``separate_input_formats``."""
    float_model = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            prepared = prepare_fx(
                float_model,
                qconfig_mapping,
                (example_input,),
                prepare_custom_config=get_capsnet_prepare_custom_config(),
                backend_config=get_capsnet_backend_config(),
            )
        except torch.fx.proxy.TraceError as error:
            raise ValueError(
                f"the model cannot be traced by torch.fx ({error}); make data-dependent control flow a "
                "module (see docs/fx.md, 'Your own CapsNet')"
            ) from error
        finally:
            release_models_held_by_torch_ao()
    return separate_input_formats(prepared, input_bits)


def convert_capsnet_fx(prepared: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """``convert_fx`` with the plugin's configs: the integer model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return convert_fx(
                prepared,
                convert_custom_config=get_capsnet_convert_custom_config(),
                backend_config=get_capsnet_backend_config(),
            )
        finally:
            release_models_held_by_torch_ao()


def quantize_fx(
    model: torch.nn.Module,
    calibration_batches: Iterable[torch.Tensor],
    weight_bits: int = 8,
    activation_bits: int = 8,
    routing_bits: int = 8,
    clip: str | None = None,
    allocation: BitAllocation | None = None,
    progress: bool = False,
    weight_observer: type | None = None,
    activation_observer: type | None = None,
    input_bits: int = MODEL_INPUT_BITS,
    bias_correction: bool | None = None,
    weight_rounding: str | None = None,
) -> torch.fx.GraphModule:
    """Post-training quantization of ``model`` (left untouched) with power-of-two scales.

    The same steps a user runs with torch.ao's own functions (see docs/fx.md): ``prepare_fx`` with the
    capsule-aware qconfig mapping, custom-module config and BackendConfig, calibration on
    ``calibration_batches`` (images), then ``convert_fx``. The model input gets its own ``input_bits``
    format and each layer reads its producer's (``separate_input_formats``), so a layer's activation bits
    set its output. ``bias_correction``: each convolution's and linear layer's bias absorbs the mean output
    error of its quantized weights, measured on the calibration batches (it pays at 3 bits and below,
    see docs/fx.md). ``weight_rounding``: ``"nearest"`` or ``"gptq"`` (each layer's weights rounded with
    error feedback on its calibration inputs, see docs/fx.md; not with bias correction).

    A model whose capsules are written by hand (not the plugin's modules), or that ``torch.fx`` cannot
    trace, is captured first (``capsnet_nncf_plugin.capture``), on the first calibration batch.

    ``clip``, ``bias_correction`` and ``weight_rounding`` left at None take the allocation's settings (the
    ones its search measured with, see ``allocate``), else ``"hardware"``, no bias correction and
    ``"nearest"``.
    """
    batches = list(calibration_batches)
    if not batches:
        raise ValueError("quantize_fx needs at least one calibration batch")
    model = ensure_captured(model, batches[0])
    settings = resolve_settings(allocation, clip, bias_correction, weight_rounding)
    qconfig_mapping = get_capsnet_qconfig_mapping(
        weight_bits,
        activation_bits,
        routing_bits,
        settings.clip,
        allocation,
        weight_observer=weight_observer,
        activation_observer=activation_observer,
    )
    prepared = prepare_capsnet_fx(model, qconfig_mapping, batches[0], input_bits)
    calibrate(prepared, batches, settings, progress)
    return convert_capsnet_fx(prepared)


def resolve_settings(
    allocation: BitAllocation | None,
    clip: str | None = None,
    bias_correction: bool | None = None,
    weight_rounding: str | None = None,
) -> QuantizationSettings:
    """The settings to quantize with: each one given explicitly, else the allocation's, else the default."""
    recorded = (
        allocation.resolved_settings() if isinstance(allocation, BitAllocation) else QuantizationSettings()
    )
    return QuantizationSettings(
        clip=recorded.clip if clip is None else clip,
        bias_correction=recorded.bias_correction if bias_correction is None else bias_correction,
        weight_rounding=recorded.weight_rounding if weight_rounding is None else weight_rounding,
    )
