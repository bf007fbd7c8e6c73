"""Bias correction: each layer's bias absorbs the mean error that rounding its weights adds to its outputs.

Rounding a layer's weights to a few bits shifts the mean of each output channel, and every later layer
(squash, routing) sees that shift. With the layer's calibration inputs x, the shift of channel c is
``E[conv(x, W_q - W)]_c`` (or the linear layer's product), the mean over samples and positions; subtracting
it from the float bias before conversion cancels it (Nagel et al., "Data-Free Quantization Through Weight
Equalization and Bias Correction", ICCV 2019, empirical form; NNCF's fast bias correction does the same
on its models). ``W_q`` comes from the layer's own qconfig weight observer, exactly as ``convert_fx``
will quantize it, so the correction fits the deployed integer weights; the corrected bias then goes onto
the accumulator grid like any bias.

The statistics are gathered during the calibration pass (the same forward calls the observers see), so
the correction costs one extra convolution of each corrected layer per batch and no extra pass.
"""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.fx.observed import ObservedModule

#: The float layers whose bias can absorb the error: one output channel per bias entry, along axis 1
#: (convolutions) or the last axis (linear). A vote transform's bias, shared by all input capsules, is
#: left as it is.
CORRECTABLE = (nn.Conv2d, nn.Conv3d, nn.Linear)


class _OutputErrorMean:
    """Running per-channel mean of ``layer(x; W_q - W)`` over the inputs the layer sees."""

    def __init__(self, layer: nn.Module, weight_error: torch.Tensor) -> None:
        self.layer = layer
        self.weight_error = weight_error
        self.total = torch.zeros(layer.bias.shape[0], dtype=torch.float64)
        self.count = 0
        self.handle = layer.register_forward_hook(self._observe)

    def _observe(self, layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        values = inputs[0]
        if isinstance(layer, nn.Linear):
            error = nn.functional.linear(values, self.weight_error).reshape(-1, self.total.shape[0])
            channels_first = error.transpose(0, 1)
        else:
            error = layer._conv_forward(values, self.weight_error, None)
            channels_first = error.transpose(0, 1).reshape(self.total.shape[0], -1)
        self.total += channels_first.sum(dim=1, dtype=torch.float64)
        self.count += channels_first.shape[1]

    def mean(self) -> torch.Tensor:
        return self.total / max(self.count, 1)


class BiasCorrection:
    """Measures, while a prepared model calibrates, what to subtract from each layer's bias; ``apply()``.

    ``prepared``: a model from ``prepare_fx`` with the plugin's configs (its observed modules name the
    weighted layers and carry their weight observers). Use it around the calibration loop::

        correction = BiasCorrection(prepared)
        for batch in batches:
            prepared(batch)
        correction.apply()  # before convert_fx
    """

    def __init__(self, prepared: nn.Module) -> None:
        self._errors: dict[str, _OutputErrorMean] = {}
        with torch.no_grad():
            for name, module in prepared.named_modules():
                if not isinstance(module, ObservedModule):
                    continue
                layer = module.weighted_layer()
                if not isinstance(layer, CORRECTABLE) or layer.bias is None:
                    continue
                weight = layer.weight.detach()
                quantized = module.weight_quantizer().fake_quantize(weight)
                self._errors[name] = _OutputErrorMean(layer, quantized - weight)

    @property
    def layers(self) -> list[str]:
        """The observed modules whose bias is corrected."""
        return list(self._errors)

    def apply(self) -> dict[str, float]:
        """Subtract the measured mean errors from the biases; returns each layer's largest correction."""
        corrections = {}
        with torch.no_grad():
            for name, error in self._errors.items():
                error.handle.remove()
                if error.count == 0:
                    raise RuntimeError(
                        f"bias correction saw no input at {name}; run calibration batches through the "
                        "prepared model before apply()"
                    )
                shift = error.mean().to(error.layer.bias.dtype)
                error.layer.bias -= shift
                corrections[name] = float(shift.abs().max())
        self._errors = {}
        return corrections
