"""GPTQ rounding in the FX flow: input moments gathered while a prepared model calibrates, codes set
before ``convert_fx``.

Each observed module whose weighted layer GPTQ supports (see ``rounding.supports_gptq``) gets a forward
hook on that layer; after calibration ``apply()`` freezes the layer's weight quantizer exactly as
``convert_fx`` will (the qconfig's weight observer on the float weight), rounds the weight with GPTQ on
that grid and leaves the codes on the observed module (``weight_codes``), where the quantized module takes
them instead of rounding to nearest. Other layers (``Conv3d``, grouped convolutions) keep round-to-nearest.

The moments do not depend on the widths (calibration runs the float model), so ``SharedCalibration``
gathers them once and ``apply(hessians=...)`` reuses them for every allocation.
"""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.fx.observed import ObservedModule
from capsnet_nncf_plugin.rounding import InputMoments, gptq_layer_codes, supports_gptq


def gptq_layers(prepared: nn.Module) -> dict[str, ObservedModule]:
    """The observed modules of ``prepared`` whose weight GPTQ rounds, by name."""
    return {
        name: module
        for name, module in prepared.named_modules()
        if isinstance(module, ObservedModule)
        and module.weighted_layer() is not None
        and supports_gptq(module.weighted_layer())
    }


class GptqRounding:
    """Gathers input moments while ``prepared`` calibrates; ``apply()`` sets GPTQ codes before convert::

        rounding = GptqRounding(prepared)
        for batch in batches:
            prepared(batch)
        rounding.apply()  # before convert_fx

    ``memo``: a dict kept across calls (by ``SharedCalibration``): codes by layer and weight grid, so an
    allocation search rounds each (layer, width) once.
    """

    def __init__(self, prepared: nn.Module, gather: bool = True) -> None:
        self.prepared = prepared
        self.moments: dict[str, InputMoments] = {}
        self._handles = []
        if gather:
            for name, module in gptq_layers(prepared).items():
                moments = self.moments[name] = InputMoments(module.weighted_layer())
                hook = _gathering_hook(moments)
                self._handles.append(module.weighted_layer().register_forward_hook(hook))

    def finish_gathering(self) -> dict[str, torch.Tensor]:
        """Stop gathering; the moments by module name (raises if a layer saw no input)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return {name: moments.hessian for name, moments in self.moments.items()}

    def apply(
        self,
        hessians: dict[str, torch.Tensor] | None = None,
        memo: dict[tuple, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Round every supported layer with GPTQ; returns the moments used (``hessians`` if given)."""
        gathered = self.finish_gathering()
        hessians = gathered if hessians is None else hessians
        with torch.no_grad():
            for name, module in gptq_layers(self.prepared).items():
                layer = module.weighted_layer()
                quantizer = module.weight_quantizer()
                if name not in hessians:
                    raise ValueError(f"no input moments for {name}; calibrate with GptqRounding gathering")
                key = (name, quantizer)
                codes = None if memo is None else memo.get(key)
                if codes is None:
                    codes = gptq_layer_codes(layer, hessians[name], quantizer)
                    if memo is not None:
                        memo[key] = codes
                module.weight_codes = codes
        return hessians


def _gathering_hook(moments: InputMoments):
    def gather(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        moments.add(inputs[0])

    return gather
