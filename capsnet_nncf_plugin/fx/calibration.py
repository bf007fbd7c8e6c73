"""Calibration: observers see the data, then biases are corrected and weights rounded - written once.

Every way the FX flow builds an integer model goes through :func:`calibrate` between ``prepare`` and
``convert``: ``quantize_fx`` (one model), ``SharedCalibration`` (many allocations, one pass over the data),
the error analysis (one layer alone, :func:`capsnet_nncf_plugin.fx.observed.observe`) and the NNCF
adapter. The steps, in order:

1. **statistics**: the batches run through the model so that every observer sees them, or, when the
   caller already has them (``restore``), the observers' statistics are restored instead;
2. **bias correction** (``settings.bias_correction``): each layer's bias absorbs the mean output error of
   its quantized weights, measured on the same batches (``bias_correction.py``);
3. **weight rounding** (``settings.weight_rounding == "gptq"``): each layer's weight codes chosen with GPTQ
   on its input moments, gathered during step 1 or passed in (``gptq_rounding.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.fx.bias_correction import BiasCorrection
from capsnet_nncf_plugin.fx.gptq_rounding import GptqRounding, gptq_layers
from capsnet_nncf_plugin.fx.observed import ObservedModule, RoutingObservers
from capsnet_nncf_plugin.observers import PowerOfTwoObserver

#: The observer buffers calibration fills; every other observer state is set by the allocation.
STATISTICS_BUFFERS = ("min_val", "max_val", "batches_seen", "sample_values", "sample_keys")


@dataclass
class CalibrationStatistics:
    """What one calibration left in a prepared model, by module name: observer statistics and tensor
    sizes. They do not depend on the widths (calibration runs the float model), so a model prepared at
    other widths with the same observers takes them instead of running the data again."""

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
    def of(cls, prepared: torch.nn.Module) -> CalibrationStatistics:
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
        targets = CalibrationStatistics.of(prepared)
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


def _run(model: torch.nn.Module, batch: torch.Tensor) -> None:
    if isinstance(model, ObservedModule):  # a layer alone: its output observer is not in a graph
        model.activation_post_process(model(batch))
    else:
        model(batch)


def calibrate(
    model: torch.nn.Module,
    batches: Sequence[torch.Tensor],
    settings: QuantizationSettings | None = None,
    progress: bool = False,
    *,
    restore: CalibrationStatistics | None = None,
    moments: dict[str, torch.Tensor] | None = None,
    gptq_memo: dict[tuple, torch.Tensor] | None = None,
) -> None:
    """Calibrate a prepared model (or one observed module) for conversion: the steps of the module doc.

    ``restore``: statistics of an earlier pass to take instead of running ``batches`` (not with bias
    correction, which measures this model's own weights on the data). ``moments``: GPTQ's input moments
    by module name; an empty dict is filled by this pass, a filled one is used as is. ``gptq_memo``: codes
    by (layer, weight grid) kept across calls, so a search rounds each layer at each width once.
    """
    settings = settings or QuantizationSettings()
    correction = BiasCorrection(model) if settings.bias_correction else None
    rounding = None
    if settings.weight_rounding == "gptq" and gptq_layers(model):
        rounding = GptqRounding(model, gather=restore is None and not moments)
    if restore is not None:
        if correction is not None:
            raise ValueError("bias correction measures each model's own weights: calibrate on the batches")
        restore.restore(model)
    else:
        if not batches:
            raise ValueError("calibration needs at least one batch of inputs")
        with torch.no_grad():
            for batch in tqdm(list(batches), desc="calibrate", disable=not progress, leave=False):
                _run(model, batch)
    if correction is not None:
        correction.apply()
    if rounding is not None:
        used = rounding.apply(moments or None, gptq_memo)
        if moments is not None and not moments:
            moments.update(used)
