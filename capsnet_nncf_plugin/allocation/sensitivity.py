"""Quantization-error analysis: how much each layer's output suffers from each bit-width, alone.

For every quantizable layer, every kind of tensor it quantizes (weights, its activation, its routing
tensors) and every candidate width, the layer is quantized *alone* with that kind at that width and every
other kind at 16 bits, and run on its cached FP32 inputs; the error is measured on its output against the
cached FP32 output (SQNR in dB and MSE). Only the layer under test runs (the FP32 inputs and outputs of all
layers come from one pass over the calibration data), so the whole analysis costs about one calibration
pass per (layer, kind, width).

A lazy analysis (``analyze_errors(..., lazy=True)``) measures each (layer, kind, width) the first time a
method asks for it: progressive descent reads one width per kind, so it pays for 6 of ShallowCaps' 49.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.ao.nn.intrinsic import ConvReLU2d
from tqdm.auto import tqdm

from capsnet_nncf_plugin.allocation.layers import Layer, quantizable_layers
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.fx.bias_correction import BiasCorrection
from capsnet_nncf_plugin.fx.custom_modules import FLOAT_TO_OBSERVED, OBSERVED_TO_QUANTIZED
from capsnet_nncf_plugin.fx.qconfig import LayerBits, RoutingBits, make_qconfig

KINDS = ("weight", "activation", "routing")
CANDIDATE_BITS = (2, 3, 4, 5, 6, 7, 8)
#: Width of every kind not under test: close enough to float that it adds no visible error.
REFERENCE_BITS = 16


def sqnr_db(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum ref^2 / sum (ref - approx)^2)`` in dB."""
    signal = float((reference.double() ** 2).sum())
    noise = float(((reference.double() - approximation.double()) ** 2).sum())
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


Measure = Callable[[str, str, int], dict[str, float]]


@dataclass
class ErrorAnalysis:
    """``errors[layer][kind][bits] = {"sqnr_db": ..., "mse": ...}`` and the layers' order and blocks.

    ``kinds[layer]`` lists the kinds of tensor each layer quantizes. With ``measure`` set (a lazy analysis),
    the accessors measure a missing entry on first use; ``complete()`` measures all of them.
    """

    layers: list[Layer]
    errors: dict[str, dict[str, dict[int, dict[str, float]]]] = field(default_factory=dict)
    seconds: float = 0.0
    kinds: dict[str, list[str]] = field(default_factory=dict)
    candidate_bits: list[int] = field(default_factory=lambda: list(CANDIDATE_BITS))
    measure: Measure | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, by_kind in self.errors.items():  # an analysis built from finished errors
            self.kinds.setdefault(name, list(by_kind))

    def error(self, layer: str, kind: str, bits: int) -> dict[str, float]:
        """The entry of ``(layer, kind, bits)``, measured now if the analysis is lazy and lacks it."""
        by_bits = self.errors.get(layer, {}).get(kind, {})
        if bits not in by_bits:
            if self.measure is None or kind not in self.kinds.get(layer, ()):
                raise KeyError(f"the error analysis has no entry for {layer} / {kind} / {bits} bits")
            started = time.perf_counter()
            entry = self.measure(layer, kind, bits)
            self.seconds += time.perf_counter() - started
            self.errors.setdefault(layer, {}).setdefault(kind, {})[bits] = entry
            return entry
        return by_bits[bits]

    def complete(self) -> ErrorAnalysis:
        """Measure every missing (layer, kind, candidate width) and order the widths; returns ``self``."""
        for name, kinds in self.kinds.items():
            for kind in kinds:
                for bits in self.candidate_bits:
                    self.error(name, kind, bits)
                self.errors[name][kind] = dict(sorted(self.errors[name][kind].items()))
        return self

    def sqnr(self, layer: str, kind: str, bits: int) -> float:
        return self.error(layer, kind, bits)["sqnr_db"]

    def kinds_of(self, layer: str) -> list[str]:
        return list(self.kinds.get(layer, ()))

    def ranking(self, kind: str, bits: int) -> list[str]:
        """Layers having ``kind`` from least to most susceptible at ``bits`` (highest SQNR first)."""
        names = [layer.name for layer in self.layers if kind in self.kinds.get(layer.name, ())]
        return sorted(names, key=lambda name: -self.sqnr(name, kind, bits))

    def smallest_bits(self, layer: str, kind: str, min_sqnr_db: float, default: int = 8) -> int:
        """The smallest candidate width whose SQNR reaches ``min_sqnr_db`` (``default`` if none does)."""
        for bits in sorted(self.candidate_bits):
            if self.sqnr(layer, kind, bits) >= min_sqnr_db:
                return min(bits, default)
        return default

    def to_dict(self) -> dict:
        if self.measure is not None:
            self.complete()
        return {
            "layers": [layer.__dict__ for layer in self.layers],
            "errors": {
                name: {
                    kind: {str(bits): value for bits, value in by_bits.items()}
                    for kind, by_bits in kinds.items()
                }
                for name, kinds in self.errors.items()
            },
            "seconds": self.seconds,
        }

    def save(self, path: str | os.PathLike) -> Path:
        destination = Path(path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(destination, json.dumps(self.to_dict(), indent=2, default=float) + "\n")
        return destination


def _capture_fp32(
    model: torch.nn.Module, layers: list[Layer], batches: list[torch.Tensor]
) -> dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]]:
    modules = dict(model.named_modules())
    captured: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {
        layer.name: ([], []) for layer in layers
    }
    handles = []
    for layer in layers:

        def hook(module, inputs, output, name=layer.name):
            captured[name][0].append(inputs[0].detach())
            captured[name][1].append(output.detach())

        handles.append(modules[layer.name].register_forward_hook(hook))
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def quantize_alone(
    module: torch.nn.Module,
    inputs: list[torch.Tensor],
    bits: LayerBits,
    clip: str,
    fused_relu: bool,
    bias_correction: bool = False,
) -> torch.nn.Module:
    """The plugin's quantized module for ``module`` alone, calibrated (and bias-corrected) on ``inputs``."""
    float_layer = ConvReLU2d(copy.deepcopy(module), torch.nn.ReLU()) if fused_relu else copy.deepcopy(module)
    # A 16-bit reference weight needs no clipping search (it would cost more than the rest of the run).
    weight_clip = "minmax" if bits.weight >= REFERENCE_BITS else "mse"
    float_layer.qconfig = make_qconfig(bits, clip, weight_clip)
    observed_class = FLOAT_TO_OBSERVED[type(module)]
    observed = observed_class.from_float(float_layer)
    observed.activation_post_process = observed.qconfig.activation()
    correction = BiasCorrection(observed) if bias_correction else None
    with torch.no_grad():
        for batch in inputs:
            observed.activation_post_process(observed(batch))
    if correction is not None:
        correction.apply()
    return OBSERVED_TO_QUANTIZED[observed_class].from_observed(observed)


def _bits_for(kind: str, bits: int) -> LayerBits:
    wide = REFERENCE_BITS
    return LayerBits(
        weight=bits if kind == "weight" else wide,
        activation=bits if kind == "activation" else wide,
        routing=RoutingBits.from_dict(bits if kind == "routing" else wide),
    )


def analyze_errors(
    model: torch.nn.Module,
    calibration_batches: Iterable[torch.Tensor],
    candidate_bits: Iterable[int] = CANDIDATE_BITS,
    clip: str = "hardware",
    progress: bool = False,
    lazy: bool = False,
    bias_correction: bool = False,
) -> ErrorAnalysis:
    """The error of every (layer, kind, bits) alone, on the layer's output (see the module doc).

    ``lazy``: measure nothing but the FP32 pass now, each entry when first asked for.
    ``bias_correction``: each layer's bias absorbs its quantized weights' mean error, as in ``quantize_fx``.
    """
    started = time.perf_counter()
    model = model.eval()
    layers = quantizable_layers(model)
    batches = list(calibration_batches)
    if not batches:
        raise ValueError("analyze_errors needs at least one calibration batch")
    captured = _capture_fp32(model, layers, batches)
    modules = dict(model.named_modules())
    by_name = {layer.name: layer for layer in layers}

    def measure(name: str, kind: str, bits: int) -> dict[str, float]:
        layer = by_name[name]
        inputs, outputs = captured[name]
        quantized = quantize_alone(
            modules[name], inputs, _bits_for(kind, bits), clip, layer.fused_relu, bias_correction
        )
        with torch.no_grad():
            approximations = [quantized(batch) for batch in inputs]
        approximation = torch.cat([a.dequantize() if a.is_quantized else a for a in approximations])
        reference = torch.cat(outputs)
        if layer.fused_relu:
            reference = torch.relu(reference)
        error = reference.double() - approximation.double()
        return {"sqnr_db": sqnr_db(reference, approximation), "mse": float((error * error).mean())}

    kinds = {
        layer.name: [
            kind
            for kind in KINDS
            if (kind != "routing" or layer.routing) and (kind != "weight" or _has_weight(modules[layer.name]))
        ]
        for layer in layers
    }
    candidate_bits = sorted(set(candidate_bits))
    analysis = ErrorAnalysis(layers, kinds=kinds, candidate_bits=candidate_bits, measure=measure)
    analysis.seconds = time.perf_counter() - started
    if not lazy:
        jobs = [(name, kind, bits) for name in kinds for kind in kinds[name] for bits in candidate_bits]
        for name, kind, bits in tqdm(jobs, desc="error analysis", disable=not progress, leave=False):
            analysis.error(name, kind, bits)
    return analysis


def _has_weight(module: torch.nn.Module) -> bool:
    if isinstance(module, torch.nn.BatchNorm2d):
        return False
    return any(isinstance(getattr(m, "weight", None), torch.nn.Parameter) for m in module.modules())
