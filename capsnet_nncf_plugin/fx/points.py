"""``quantization_points(model)``: every quantized tensor of a quantized model, for memory and export."""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.fx.custom_modules import QuantizationPoint, QuantizedModule


def quantization_points(model: torch.nn.Module) -> list[QuantizationPoint]:
    """Name, kind (weight, activation, routing), bits, exponent and elements per sample of each point.

    Input points (where torch quantized a float tensor for a layer) are reported under ``<layer>.input``
    once the model has run at least one batch.
    """
    points: list[QuantizationPoint] = []
    for name, module in model.named_modules():
        if isinstance(module, QuantizedModule):
            if module.input_quantizer is not None and "input" in module.elements:
                q = module.input_quantizer
                points.append(
                    QuantizationPoint(
                        f"{name}.input", "activation", q.bits, q.signed, q.exponent, module.elements["input"]
                    )
                )
            points.extend(module.points(name))
    if not points:
        raise ValueError(
            "the model has no quantization points; pass a model converted with the plugin's configs "
            "(get_capsnet_convert_custom_config)"
        )
    return points
