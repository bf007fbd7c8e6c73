"""``quantize``: post-training quantization of a CapsNet through NNCF, to the plugin's integer model.

NNCF decides and calibrates (its preset, target device, subset size, range estimators, bias correction and
ignored scope, as the user's configuration says); the plugin supplies what NNCF lacks: capsule metatypes,
power-of-two scales, per-layer bits from a ``BitAllocation`` and the integer squash and routing. The
result is the same integer model the FX flow builds (same modules, same ``quantization_points``, same
``export_onnx``), its ranges taken from NNCF:

1. ``nncf.quantize`` on a copy of the model, with the capsule metatypes registered and every symmetric
   quantizer a :class:`PowerOfTwoSymmetricQuantizer`;
2. NNCF's parameters (bias-corrected) go back into a float copy, which ``prepare_fx`` prepares with the
   allocation's bits and the plugin's observers calibrate on the same samples;
3. each NNCF activation quantizer is paired with the observer that saw the same tensor (equal values on a
   probe batch), which adopts NNCF's range, except where the allocation narrows the point below the
   8 bits NNCF calibrated for (``NNCF_CALIBRATION_BITS``); NNCF's quantizers take the integer model's
   bits, and those narrowed ranges, in turn;
4. ``convert_fx`` gives the integer model. Points NNCF does not quantize (the routing tensors b and s
   inside the integer routing op) keep the plugin's calibration with the ``capsnet.clip`` rule.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nncf
import torch
from nncf.torch.function_hook import get_hook_storage
from nncf.torch.quantization.layers import BaseQuantizer

from capsnet_nncf_plugin.capture import ensure_captured
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.integer_format import quant_range
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.fx.calibration import calibrate
from capsnet_nncf_plugin.fx.qconfig import get_capsnet_qconfig_mapping
from capsnet_nncf_plugin.fx.workflow import convert_capsnet_fx, prepare_capsnet_fx
from capsnet_nncf_plugin.nncf.config import CapsnetSection, ConfigError, load_config, quantize_parameters
from capsnet_nncf_plugin.nncf.metatypes import register_capsule_metatypes
from capsnet_nncf_plugin.nncf.quantizer import PowerOfTwoSymmetricQuantizer, use_power_of_two_quantizers
from capsnet_nncf_plugin.observers import FixedRangeObserver, PowerOfTwoObserver
from capsnet_nncf_plugin.quantized import quantization_points

LOGGER = logging.getLogger(__name__)

#: The width NNCF calibrates its quantizers for: its ranges are min/max statistics (preset ``performance``)
#: chosen for 8 bits. A point an allocation narrows below it takes the plugin's width-aware clip rule
#: instead (``capsnet.clip`` for activations, ``mse`` for weights), as in the FX flow.
NNCF_CALIBRATION_BITS = 8


def keeps_nncf_range(bits: int) -> bool:
    """Whether a quantization point of this width keeps the range NNCF calibrated."""
    return bits >= NNCF_CALIBRATION_BITS


@dataclass
class NNCFQuantization:
    """What ``quantize_with_report`` produced.

    ``model``: the integer model; ``nncf_model``: NNCF's fake-quantized model (power-of-two quantizers with
    the allocation's bits); ``transferred``: observer name -> NNCF quantizer whose range it adopted;
    ``unmatched``: NNCF quantizers with no counterpart in the integer model.
    """

    model: torch.fx.GraphModule
    nncf_model: torch.nn.Module
    allocation: BitAllocation | None
    transferred: dict[str, str] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)


def quantize(
    model: torch.nn.Module,
    calibration_dataset: nncf.Dataset | Iterable[torch.Tensor],
    config: Mapping[str, Any] | str | os.PathLike | None = None,
    validation_dataset: torch.utils.data.Dataset | None = None,
    progress: bool = False,
    allocation: BitAllocation | None = None,
) -> torch.fx.GraphModule:
    """Quantize ``model`` (left untouched) with NNCF and the user's configuration; the integer model.

    ``calibration_dataset``: an ``nncf.Dataset`` or image batches; ``config``: a dict or JSON/YAML file of
    ``nncf.quantize`` arguments plus a ``"capsnet"`` section, or an NNCF 2.x configuration (docs/nncf.md);
    ``validation_dataset``: labelled images, needed when ``capsnet.method`` searches an allocation;
    ``allocation``: per-layer bits as an object (instead of ``capsnet.allocation``, a file).
    """
    return quantize_with_report(
        model, calibration_dataset, config, validation_dataset, progress, allocation
    ).model


def quantize_with_report(
    model: torch.nn.Module,
    calibration_dataset: nncf.Dataset | Iterable[torch.Tensor],
    config: Mapping[str, Any] | str | os.PathLike | None = None,
    validation_dataset: torch.utils.data.Dataset | None = None,
    progress: bool = False,
    allocation: BitAllocation | None = None,
) -> NNCFQuantization:
    """``quantize``, also returning NNCF's own model and how its ranges reached the integer model."""
    settings = load_config(config)
    register_capsule_metatypes()
    dataset = (
        calibration_dataset
        if isinstance(calibration_dataset, nncf.Dataset)
        else nncf.Dataset(list(calibration_dataset))
    )
    subset_size = settings.quantize_kwargs.get("subset_size", quantize_parameters()["subset_size"].default)
    batches = _calibration_batches(dataset, subset_size)
    # A model whose capsules are written by hand, or that torch.fx cannot trace, is captured first, so
    # that NNCF sees capsule ops and the integer model has integer squash and routing.
    float_model = ensure_captured(copy.deepcopy(model).eval(), batches[0])
    allocation = _allocation(settings.capsnet, allocation, float_model, batches, validation_dataset, progress)

    with use_power_of_two_quantizers():
        nncf_model = nncf.quantize(copy.deepcopy(float_model), dataset, **settings.quantize_kwargs)
    quantizers = _nncf_quantizers(nncf_model)
    _load_float_parameters(float_model, nncf_model)

    capsnet = settings.capsnet
    mapping = get_capsnet_qconfig_mapping(
        capsnet.weight_bits,
        capsnet.activation_bits,
        capsnet.routing_bits,
        clip=capsnet.clip,
        allocation=allocation,
        # NNCF's weight ranges are the per-channel maxima (the minmax rule rounds them as NNCF's PoT does);
        # narrower weights take the plugin's width-aware rule, as in the FX flow.
        weight_clip=lambda bits: "minmax" if keeps_nncf_range(bits) else "mse",
    )
    prepared = prepare_capsnet_fx(float_model, mapping, batches[0])
    calibrate(prepared, batches, progress=progress)
    sources, unmatched, weights = _transfer_ranges(nncf_model, quantizers, prepared, batches[0])
    observers = _plugin_observers(prepared)
    activation_bits: dict[BaseQuantizer, int] = {}
    for observer_name, quantizer_names in sources.items():
        for quantizer in (quantizers[q] for q in quantizer_names):
            # A quantizer read by several observers (a concatenation's part) holds the widest format.
            activation_bits[quantizer] = max(activation_bits.get(quantizer, 0), observers[observer_name].bits)
    transferred = {name: " + ".join(names) for name, names in sources.items()}
    integer_model = convert_capsnet_fx(prepared)
    _apply_formats_to_nncf(quantizers, activation_bits, weights, integer_model, sources, observers)
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
        LOGGER.warning(
            "%d NNCF quantizer(s) have no counterpart in the integer model and are not used (ops the integer "
            "model keeps float, such as a routing variant the capture left float): %s",
            len(unmatched),
            shown,
        )
    return NNCFQuantization(integer_model, nncf_model, allocation, transferred, unmatched)


def _calibration_batches(dataset: nncf.Dataset, subset_size: int) -> list[torch.Tensor]:
    """The inputs NNCF calibrates on: the first ``subset_size`` items (NNCF counts items, not images)."""
    batches = []
    for item in itertools.islice(dataset.get_inference_data(), subset_size):
        if not isinstance(item, torch.Tensor):
            raise ConfigError(
                "the calibration dataset must yield image tensors [N, C, H, W]; give nncf.Dataset a "
                "transform_fn that returns the images (e.g. lambda item: item[0])"
            )
        batches.append(item)
    if not batches:
        raise ConfigError("the calibration dataset is empty; pass at least one batch of images")
    return batches


def _allocation(
    capsnet: CapsnetSection,
    given: BitAllocation | None,
    model: torch.nn.Module,
    batches: list[torch.Tensor],
    validation: torch.utils.data.Dataset | None,
    progress: bool,
) -> BitAllocation | None:
    """The allocation to quantize with: the one passed in, ``capsnet.allocation``'s file, a search with
    ``capsnet.method``, or none (uniform bits)."""
    if given is not None and (capsnet.allocation is not None or capsnet.method is not None):
        raise ConfigError(
            "an allocation was passed to quantize() and the configuration's capsnet section names "
            f"{'allocation' if capsnet.allocation is not None else 'method'} too: keep one"
        )
    if given is not None or capsnet.allocation is not None:
        allocation = given if given is not None else BitAllocation.load(capsnet.allocation)
        rounding = allocation.resolved_settings().weight_rounding
        if rounding != "nearest":
            raise ConfigError(
                f"the allocation was searched with {rounding} weight rounding, which the NNCF flow does not "
                "apply (its weights are rounded to nearest, so the allocation's accuracy would not hold); "
                "quantize it with the FX flow (quantize_fx, or `capsq run --flow fx`)"
            )
        return allocation
    if capsnet.method is None:
        return None
    if validation is None:
        raise ConfigError(
            f"capsnet.method {capsnet.method!r} searches bits on labelled data: pass validation_dataset=, "
            "or give capsnet.allocation (a BitAllocation file from `capsq quantize`)"
        )
    from capsnet_nncf_plugin.allocation import allocate

    return allocate(
        model,
        batches,
        validation,
        method=capsnet.method,
        tolerance=capsnet.tolerance,
        criterion=capsnet.criterion,
        weight_reduction=capsnet.weight_reduction,
        settings=QuantizationSettings(clip=capsnet.clip),
        progress=progress,
    )


def _nncf_quantizers(nncf_model: torch.nn.Module) -> dict[str, BaseQuantizer]:
    storage = get_hook_storage(nncf_model)
    quantizers = {
        name: module for name, module in storage.named_modules() if isinstance(module, BaseQuantizer)
    }
    foreign = sorted(n for n, q in quantizers.items() if not isinstance(q, PowerOfTwoSymmetricQuantizer))
    if foreign:
        raise ConfigError(
            f"NNCF placed non-power-of-two quantizers {foreign}: the configuration asks for asymmetric "
            "quantization somewhere (preset 'mixed' or a 'mode' in advanced_parameters); use symmetric"
        )
    return quantizers


def _load_float_parameters(float_model: torch.nn.Module, nncf_model: torch.nn.Module) -> None:
    """NNCF's (possibly bias-corrected) parameters and buffers into the float model."""
    own = float_model.state_dict()
    corrected = {key: value for key, value in nncf_model.state_dict().items() if key in own}
    float_model.load_state_dict(corrected, strict=False)


def _signature(tensor: torch.Tensor) -> torch.Tensor:
    # Reshapes and permutes between NNCF's op and the plugin's observer keep the values, not the layout.
    return tensor.detach().reshape(-1).float().sort().values


def _record_inputs(
    modules: dict[str, torch.nn.Module], run: Any, parameters: dict[int, str] | None = None
) -> dict[str, torch.Tensor | str]:
    """The first input each module sees during ``run()``: a copy, or the name of the parameter it is."""
    seen: dict[str, torch.Tensor | str] = {}
    names = parameters or {}

    def record(name: str, tensor: torch.Tensor) -> None:
        if name not in seen:
            seen[name] = names.get(tensor.data_ptr()) or tensor.detach().clone()

    handles = [
        module.register_forward_pre_hook(lambda _module, args, name=name: record(name, args[0]))
        for name, module in modules.items()
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _plugin_observers(prepared: torch.nn.Module) -> dict[str, PowerOfTwoObserver]:
    return {
        name: module
        for name, module in prepared.named_modules()
        if isinstance(module, PowerOfTwoObserver) and not isinstance(module, FixedRangeObserver)
    }


def _transfer_ranges(
    nncf_model: torch.nn.Module,
    quantizers: dict[str, BaseQuantizer],
    prepared: torch.nn.Module,
    probe: torch.Tensor,
) -> tuple[dict[str, list[str]], list[str], dict[str, str]]:
    """Pair NNCF activation quantizers with the observers that see the same tensor; adopt NNCF's ranges.

    Returns observer -> its NNCF quantizers, the NNCF quantizers without a counterpart, and weight
    quantizer -> the parameter it quantizes (both sides take per-channel maxima there; tests check it)."""
    parameters = {p.data_ptr(): name for name, p in nncf_model.named_parameters()}
    for quantizer in quantizers.values():
        quantizer.disable_quantization()
    try:
        recorded = _record_inputs(quantizers, lambda: nncf_model(probe), parameters)
    finally:
        for quantizer in quantizers.values():
            quantizer.enable_quantization()
    observers = _plugin_observers(prepared)
    # The observers' statistics must not change: record their inputs on a copy.
    probe_model = copy.deepcopy(prepared)
    probe_observers = _plugin_observers(probe_model)
    observer_inputs = _record_inputs(probe_observers, lambda: probe_model(probe))
    signatures = {name: _signature(tensor) for name, tensor in observer_inputs.items()}

    weights = {name: value for name, value in recorded.items() if isinstance(value, str)}
    nncf_signatures = {n: _signature(t) for n, t in recorded.items() if isinstance(t, torch.Tensor)}
    sources = _pair(signatures, nncf_signatures)
    for name, quantizer_names in sources.items():
        if not keeps_nncf_range(observers[name].bits):
            continue  # narrowed by the allocation: the plugin's clip rule for its width (module doc)
        top = max(float(quantizers[q].range_max.detach().abs().max()) for q in quantizer_names)
        # The sign is the data's (an activation observer settles it from what it saw), NNCF's the magnitude.
        observers[name].adopt_magnitude(top)
    used = {q for names in sources.values() for q in names}
    return sources, [q for q in nncf_signatures if q not in used], weights


def _contains(whole: torch.Tensor, part: torch.Tensor) -> bool:
    """Whether every value of sorted ``part`` occurs in sorted ``whole``."""
    positions = torch.searchsorted(whole, part).clamp_(max=whole.numel() - 1)
    return bool(torch.equal(whole[positions], part))


def _pair(observed: dict[str, torch.Tensor], nncf: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Observer -> the NNCF quantizers whose tensors it sees (value signatures, see ``_signature``).

    Mostly one NNCF tensor is one observed tensor. Where the integer model quantizes a concatenation that
    NNCF quantizes in parts (DeepCaps' class capsules read cells 3 and 4 together), the observer takes
    the parts that make it up, and later the union of their ranges.
    """
    sources: dict[str, list[str]] = {}
    for quantizer_name, signature in nncf.items():
        for name, other in observed.items():
            if other.numel() == signature.numel() and torch.equal(other, signature):
                sources.setdefault(name, []).append(quantizer_name)
    for name, whole in observed.items():
        if name in sources:
            continue
        parts = [q for q, part in nncf.items() if part.numel() < whole.numel() and _contains(whole, part)]
        if parts and sum(nncf[q].numel() for q in parts) == whole.numel():
            sources[name] = parts
    return sources


def _apply_formats_to_nncf(
    quantizers: dict[str, BaseQuantizer],
    activation_bits: dict[BaseQuantizer, int],
    weights: dict[str, str],
    integer_model: torch.nn.Module,
    sources: dict[str, list[str]],
    observers: dict[str, PowerOfTwoObserver],
) -> None:
    """The integer model's formats onto NNCF's quantizers, so that both models quantize alike: bits
    everywhere (activations by pairing, weights by parameter), and the plugin's ranges where the
    allocation narrowed a point below the width NNCF calibrated for."""
    for quantizer, bits in activation_bits.items():
        quantizer.num_bits = bits
    for name, quantizer_names in sources.items():
        if not keeps_nncf_range(observers[name].bits):
            exponent = int(torch.log2(observers[name].calculate_qparams()[0]).round().reshape(-1)[0])
            for quantizer_name in quantizer_names:
                _set_exponents(quantizers[quantizer_name], [exponent])
    points = {p.name: p for p in quantization_points(integer_model) if p.kind == "weight"}
    for quantizer_name, parameter in weights.items():
        point = points.get(parameter)
        if point is None:
            continue
        quantizer = quantizers[quantizer_name]
        quantizer.num_bits = point.bits
        if not keeps_nncf_range(point.bits):
            exponents = point.exponent if isinstance(point.exponent, tuple) else (point.exponent,)
            _set_exponents(quantizer, list(exponents))


def _set_exponents(quantizer: BaseQuantizer, exponents: list[int]) -> None:
    """Give an NNCF power-of-two quantizer the range whose step is ``2**exponent`` (per channel)."""
    # The top of the range whose minmax power-of-two step (PowerOfTwoSymmetricQuantizer.exponents) is 2^e.
    high = quant_range(quantizer.num_bits, quantizer.signed)[1]
    steps = torch.tensor([2.0**exponent for exponent in exponents], dtype=torch.float32)
    top = (steps * high).expand(quantizer.range_max.numel()).reshape(quantizer.scale_shape)
    storage = quantizer._scale_param_storage  # NNCF keeps the range there (as its log, if so configured)
    quantizer.scale = torch.nn.Parameter(top.to(storage.device), requires_grad=storage.requires_grad)
