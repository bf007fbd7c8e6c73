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

With ``share_modules=True`` the integer models share every quantized module whose layer was converted
the same way before (``module_reuse.py``): an allocation that changes one layer builds that layer's
module and its consumer's, not the model's. The models must then not be modified in place; the allocation
search, which only runs them, opts in.

Bias correction measures the error of each allocation's own quantized weights, so it cannot be shared;
``quantize_fx`` is the one to call with it. GPTQ rounding can: the input moments it needs come from the
float model, so they are gathered with the first calibration, and each (layer, weight grid) is rounded once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch

from capsnet_nncf_plugin.capture import ensure_captured
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.clipping import DEFAULT_CLIP
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.fx.calibration import CalibrationStatistics, calibrate
from capsnet_nncf_plugin.fx.input_formats import MODEL_INPUT_BITS
from capsnet_nncf_plugin.fx.module_reuse import ModuleReuse
from capsnet_nncf_plugin.fx.observed import ObservedModule
from capsnet_nncf_plugin.fx.qconfig import get_capsnet_qconfig_mapping
from capsnet_nncf_plugin.fx.workflow import convert_capsnet_fx, prepare_capsnet_fx


class SharedCalibration:
    """``quantize_fx(model, batches, clip=clip, allocation=...)`` for many allocations, calibrated once.

    The model is copied, so later changes to it do not reach the statistics. ``progress`` shows the one
    calibration pass. ``weight_rounding="gptq"`` rounds every allocation's weights with GPTQ on moments
    gathered once. ``share_modules``: the models share the quantized modules they have in common (module
    doc); do not modify them in place.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        calibration_batches: Iterable[torch.Tensor],
        clip: str = DEFAULT_CLIP,
        input_bits: int = MODEL_INPUT_BITS,
        progress: bool = False,
        weight_rounding: str = "nearest",
        share_modules: bool = False,
    ) -> None:
        self.batches = list(calibration_batches)
        if not self.batches:
            raise ValueError("SharedCalibration needs at least one calibration batch")
        self.model = ensure_captured(copy.deepcopy(model).eval(), self.batches[0])
        self.settings = QuantizationSettings(clip=clip, weight_rounding=weight_rounding)
        self.input_bits = input_bits
        self.progress = progress
        self._statistics: dict[tuple[str, ...], CalibrationStatistics] = {}
        self._moments: dict[str, torch.Tensor] = {}
        self._gptq_codes: dict[tuple, torch.Tensor] = {}
        self.module_reuse = ModuleReuse() if share_modules else None

    @property
    def clip(self) -> str:
        return self.settings.clip

    @property
    def weight_rounding(self) -> str:
        return self.settings.weight_rounding

    def quantize(self, allocation: BitAllocation | None = None) -> torch.fx.GraphModule:
        """The integer model of ``allocation`` (None: 8 bits everywhere), as ``quantize_fx`` builds it."""
        mapping = get_capsnet_qconfig_mapping(8, 8, 8, self.clip, allocation)
        prepared = prepare_capsnet_fx(self.model, mapping, self.batches[0], self.input_bits)
        signature = CalibrationStatistics.signature(prepared)
        known = self._statistics.get(signature)
        calibrate(
            prepared,
            self.batches,
            self.settings,
            self.progress,
            restore=known,
            moments=self._moments,
            gptq_memo=self._gptq_codes,
        )
        if known is None:
            self._statistics[signature] = CalibrationStatistics.of(prepared)
        if self.module_reuse is None:
            return convert_capsnet_fx(prepared)
        for name, module in prepared.named_modules():
            if isinstance(module, ObservedModule):
                module.reuse_name = name
        with self.module_reuse.active():
            return convert_capsnet_fx(prepared)

    @property
    def calibrations(self) -> int:
        """Calibration passes run so far: one per set of observers the allocations needed."""
        return len(self._statistics)
