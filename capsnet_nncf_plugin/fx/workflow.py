"""``quantize_fx``: prepare, calibrate and convert in one call, with the plugin's configs."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from tqdm.auto import tqdm

from capsnet_nncf_plugin.fx.custom_configs import (
    get_capsnet_convert_custom_config,
    get_capsnet_prepare_custom_config,
)
from capsnet_nncf_plugin.fx.qconfig import get_capsnet_qconfig_mapping
from capsnet_nncf_plugin.patterns import get_capsnet_backend_config


def quantize_fx(
    model: torch.nn.Module,
    calibration_batches: Iterable[torch.Tensor],
    weight_bits: int = 8,
    activation_bits: int = 8,
    routing_bits: int = 8,
    clip: str = "hardware",
    allocation: object = None,
    progress: bool = False,
) -> torch.fx.GraphModule:
    """Post-training quantization of ``model`` (left untouched) with power-of-two scales.

    The same steps a user runs with torch.ao's own functions (see docs/fx.md): ``prepare_fx`` with the
    capsule-aware qconfig mapping, custom-module config and BackendConfig, calibration on
    ``calibration_batches`` (images), then ``convert_fx``.
    """
    batches = list(calibration_batches)
    if not batches:
        raise ValueError("quantize_fx needs at least one calibration batch")
    qconfig_mapping = get_capsnet_qconfig_mapping(
        weight_bits, activation_bits, routing_bits, clip, allocation
    )
    backend_config = get_capsnet_backend_config()
    float_model = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            prepared = prepare_fx(
                float_model,
                qconfig_mapping,
                (batches[0],),
                prepare_custom_config=get_capsnet_prepare_custom_config(),
                backend_config=backend_config,
            )
        except torch.fx.proxy.TraceError as error:
            raise ValueError(
                f"the model cannot be traced by torch.fx ({error}); make data-dependent control flow a "
                "module (see docs/fx.md, 'Your own CapsNet')"
            ) from error
        with torch.no_grad():
            for batch in tqdm(batches, desc="calibrate", disable=not progress, leave=False):
                prepared(batch)
        return convert_fx(
            prepared, convert_custom_config=get_capsnet_convert_custom_config(), backend_config=backend_config
        )
