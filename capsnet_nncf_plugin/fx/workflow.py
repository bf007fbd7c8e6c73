"""``quantize_fx``: prepare, calibrate and convert in one call, with the plugin's configs."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
import torch.ao.quantization.fx.utils as torch_ao_fx_utils
from torch.ao.quantization import QConfigMapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from tqdm.auto import tqdm

from capsnet_nncf_plugin.fx.bias_correction import BiasCorrection
from capsnet_nncf_plugin.fx.custom_configs import (
    get_capsnet_convert_custom_config,
    get_capsnet_prepare_custom_config,
)
from capsnet_nncf_plugin.fx.gptq_rounding import GptqRounding
from capsnet_nncf_plugin.fx.input_formats import MODEL_INPUT_BITS, separate_input_formats
from capsnet_nncf_plugin.fx.qconfig import get_capsnet_qconfig_mapping
from capsnet_nncf_plugin.observers import DEFAULT_CLIP
from capsnet_nncf_plugin.patterns import get_capsnet_backend_config
from capsnet_nncf_plugin.rounding import check_weight_rounding


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


def check_rounding_options(weight_rounding: str, bias_correction: bool) -> str:
    """``weight_rounding`` if valid and not combined with bias correction, else ``ValueError``."""
    check_weight_rounding(weight_rounding)
    if weight_rounding == "gptq" and bias_correction:
        raise ValueError(
            "GPTQ and bias correction do not combine: GPTQ's error feedback already moves the outputs "
            "back, and a bias measured for round-to-nearest weights would be wrong for GPTQ's; pick one "
            "(weight_rounding='gptq' or bias_correction=True)"
        )
    return weight_rounding


def calibrate(
    prepared: torch.nn.Module,
    batches: Iterable[torch.Tensor],
    progress: bool = False,
    bias_correction: bool = False,
    weight_rounding: str = "nearest",
) -> GptqRounding | None:
    """Run ``batches`` through a prepared model so that its observers see them.

    ``bias_correction``: also measure the mean output error of each layer's quantized weights on these
    batches and subtract it from the layer's bias (see ``bias_correction.py``), ready for ``convert_fx``.
    ``weight_rounding="gptq"``: also gather each layer's input moments and round its weights with GPTQ
    (see ``gptq_rounding.py``); the ``GptqRounding`` is returned, its moments reusable.
    """
    check_rounding_options(weight_rounding, bias_correction)
    correction = BiasCorrection(prepared) if bias_correction else None
    rounding = GptqRounding(prepared) if weight_rounding == "gptq" else None
    with torch.no_grad():
        for batch in tqdm(list(batches), desc="calibrate", disable=not progress, leave=False):
            prepared(batch)
    if correction is not None:
        correction.apply()
    if rounding is not None:
        rounding.apply()
    return rounding


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
    allocation: object = None,
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

    ``clip``, ``bias_correction`` and ``weight_rounding`` left at None take what ``allocation.info``
    records (the settings its search measured with, see ``allocate``), else ``"hardware"``, no bias
    correction and ``"nearest"``.
    """
    batches = list(calibration_batches)
    if not batches:
        raise ValueError("quantize_fx needs at least one calibration batch")
    recorded = getattr(allocation, "info", None) or {}
    clip = str(recorded.get("clip", DEFAULT_CLIP)) if clip is None else clip
    if bias_correction is None:
        bias_correction = bool(recorded.get("bias_correction", False))
    if weight_rounding is None:
        weight_rounding = str(recorded.get("weight_rounding", "nearest"))
    check_rounding_options(weight_rounding, bias_correction)
    qconfig_mapping = get_capsnet_qconfig_mapping(
        weight_bits,
        activation_bits,
        routing_bits,
        clip,
        allocation,
        weight_observer=weight_observer,
        activation_observer=activation_observer,
    )
    prepared = prepare_capsnet_fx(model, qconfig_mapping, batches[0], input_bits)
    calibrate(prepared, batches, progress, bias_correction, weight_rounding)
    return convert_capsnet_fx(prepared)
