"""``SharedCalibration``: calibrate a model once, then quantize it at many bit-width allocations.

Calibration runs the float model, so what the observers record (ranges, value samples, tensor sizes) does
not depend on the widths they will quantize to; the widths only enter when ``convert_fx`` turns ranges into
exponents. An allocation search converts dozens of allocations of one model, and on DeepCaps calibration
was most of each conversion. ``SharedCalibration`` prepares each allocation as ``quantize_fx`` does, fills
its observers with the statistics of the first calibration instead of running the batches again, and
converts: the same integer model as ``quantize_fx``, bit for bit (tests/fx/test_shared_calibration.py).

A width can change which tensors torch.ao observes (a 16-bit last layer needs an observer on the model
output that an 8-bit one shares), so statistics are kept per set of observers, and an allocation whose
prepared model has a set not seen yet is calibrated once more.

Bias correction measures the error of each allocation's own quantized weights, so it cannot be shared;
``quantize_fx`` is the one to call with it. GPTQ rounding can: the input moments it needs come from the
float model, so they are gathered with the first calibration, and each (layer, weight grid) is rounded once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from capsnet_nncf_plugin.fx.custom_modules import ObservedModule, RoutingObservers
from capsnet_nncf_plugin.fx.gptq_rounding import GptqRounding
from capsnet_nncf_plugin.fx.input_formats import MODEL_INPUT_BITS
from capsnet_nncf_plugin.fx.qconfig import get_capsnet_qconfig_mapping
from capsnet_nncf_plugin.fx.workflow import calibrate, convert_capsnet_fx, prepare_capsnet_fx
from capsnet_nncf_plugin.observers import DEFAULT_CLIP, PowerOfTwoObserver
from capsnet_nncf_plugin.rounding import check_weight_rounding

#: The observer buffers calibration fills; every other observer state is set by the allocation.
STATISTICS_BUFFERS = ("min_val", "max_val", "batches_seen", "sample_values", "sample_keys")


@dataclass
class _Statistics:
    """What one calibration left in a prepared model, by module name."""

    observers: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    elements: dict[str, dict[str, int]] = field(default_factory=dict)

    @staticmethod
    def signature(prepared: torch.nn.Module) -> tuple[str, ...]:
        """The names of the modules that hold statistics: equal signatures, interchangeable statistics."""
        return tuple(
            name
            for name, module in prepared.named_modules()
            if isinstance(module, PowerOfTwoObserver | ObservedModule | RoutingObservers)
        )

    @classmethod
    def of(cls, prepared: torch.nn.Module) -> _Statistics:
        statistics = cls()
        for name, module in prepared.named_modules():
            if isinstance(module, PowerOfTwoObserver):
                statistics.observers[name] = {
                    buffer: getattr(module, buffer).clone()
                    for buffer in STATISTICS_BUFFERS
                    if hasattr(module, buffer)
                }
            elif isinstance(module, ObservedModule | RoutingObservers):
                statistics.elements[name] = dict(module.elements)
        return statistics

    def restore(self, prepared: torch.nn.Module) -> None:
        """Give ``prepared`` these statistics; it must have the same observers (same model, any widths)."""
        targets = _Statistics.of(prepared)
        if set(targets.observers) != set(self.observers) or set(targets.elements) != set(self.elements):
            raise ValueError(
                "this prepared model has other observers than the calibrated one: the allocation changes "
                "which tensors are quantized, not only their widths; calibrate it with quantize_fx instead"
            )
        for name, module in prepared.named_modules():
            if name in self.observers:
                for buffer, value in self.observers[name].items():
                    setattr(module, buffer, value.clone())
                module._cached_exponents = None
            elif name in self.elements:
                module.elements = dict(self.elements[name])


class SharedCalibration:
    """``quantize_fx(model, batches, clip=clip, allocation=...)`` for many allocations, calibrated once.

    The model is copied, so later changes to it do not reach the statistics. ``progress`` shows the one
    calibration pass.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        calibration_batches: Iterable[torch.Tensor],
        clip: str = DEFAULT_CLIP,
        input_bits: int = MODEL_INPUT_BITS,
        progress: bool = False,
        weight_rounding: str = "nearest",
    ) -> None:
        self.model = copy.deepcopy(model).eval()
        self.batches = list(calibration_batches)
        if not self.batches:
            raise ValueError("SharedCalibration needs at least one calibration batch")
        self.clip = clip
        self.input_bits = input_bits
        self.progress = progress
        self._statistics: dict[tuple[str, ...], _Statistics] = {}
        self.weight_rounding = check_weight_rounding(weight_rounding)
        self._moments: dict[str, torch.Tensor] = {}
        self._gptq_codes: dict[tuple, torch.Tensor] = {}

    def quantize(self, allocation: object = None) -> torch.fx.GraphModule:
        """The integer model of ``allocation`` (None: 8 bits everywhere), as ``quantize_fx`` builds it."""
        mapping = get_capsnet_qconfig_mapping(8, 8, 8, self.clip, allocation)
        prepared = prepare_capsnet_fx(self.model, mapping, self.batches[0], self.input_bits)
        signature = _Statistics.signature(prepared)
        if signature in self._statistics:
            self._statistics[signature].restore(prepared)
        else:
            gathering = GptqRounding(prepared) if self.weight_rounding == "gptq" else None
            calibrate(prepared, self.batches, self.progress)
            self._statistics[signature] = _Statistics.of(prepared)
            if gathering is not None:
                self._moments.update(gathering.finish_gathering())
        if self.weight_rounding == "gptq":
            GptqRounding(prepared, gather=False).apply(self._moments, self._gptq_codes)
        return convert_capsnet_fx(prepared)

    @property
    def calibrations(self) -> int:
        """Calibration passes run so far: one per set of observers the allocations needed."""
        return len(self._statistics)
