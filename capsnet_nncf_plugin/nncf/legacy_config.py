"""The NNCF 2.x JSON layout, translated to ``nncf.quantize`` arguments and the plugin's section.

NNCF 3.x dropped ``NNCFConfig``; teams still keep configurations like::

    {"input_info": {"sample_size": [1, 1, 28, 28]},
     "target_device": "CPU",
     "compression": [
        {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 256}},
         "weights": {"mode": "symmetric", "bits": 8}, "activations": {"mode": "symmetric", "bits": 8},
         "ignored_scopes": ["ShallowCaps/Conv2d[conv1]"]},
        {"algorithm": "capsnet_progressive_bitwidth", "method": "progressive-descent", "tolerance": 0.1}]}

The common quantization keys map onto today's arguments; every other key is refused with what to use
instead, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.errors import ConfigError

#: The plugin's algorithm entry in a 2.x ``compression`` list; its keys are the ``capsnet`` section's.
CAPSNET_ALGORITHM = "capsnet_progressive_bitwidth"

_TOP_LEVEL_KEYS = {"input_info", "target_device", "compression"}

#: 2.x keys with no counterpart, and what replaces them.
_REPLACEMENTS = {
    "precision": "NNCF 3.x has no precision initializers (HAWQ, AutoQ); use the 'capsnet' section's method",
    "batchnorm_adaptation": (
        "use nncf.quantize's fast_bias_correction or advanced_parameters.bias_correction_params"
    ),
    "target_scopes": "list the layers to skip in ignored_scopes instead",
    "scope_overrides": "per-layer bits come from a BitAllocation ('capsnet' section: method or allocation)",
    "per_channel": "weights are per-channel and activations per-tensor in the integer model; remove the key",
    "signed": "signedness follows the calibrated range; remove the key",
    "logarithm_scale": "scales are powers of two; remove the key",
    "overflow_fix": "use advanced_parameters.overflow_fix of the nncf.quantize layout",
    "export_to_onnx_standard_ops": "export with capsnet_nncf_plugin.export.export_onnx",
    "quantize_inputs": "inputs are always quantized: the first layer reads raw pixels; remove the key",
    "quantize_outputs": "use advanced_parameters.quantize_outputs of the nncf.quantize layout",
    "log_dir": "the adapter writes no logs of its own; remove the key",
}


def _refuse(path: str, key: str) -> ConfigError:
    hint = _REPLACEMENTS.get(key, "it has no counterpart in nncf.quantize; remove it")
    return ConfigError(f"NNCF 2.x key '{path}' is not supported: {hint}")


def _check_keys(section: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in section:
        if key not in allowed:
            raise _refuse(f"{path}.{key}" if path else key, key)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"NNCF 2.x key '{path}' must be a mapping, got {type(value).__name__}")
    return value


def _bits_and_mode(section: Mapping[str, Any], path: str) -> int | None:
    _check_keys(section, {"mode", "bits"}, path)
    mode = section.get("mode", "symmetric")
    if mode != "symmetric":
        raise ConfigError(
            f"'{path}.mode' is {mode!r}: the plugin's integer ops use symmetric power-of-two scales; "
            "set it to 'symmetric'"
        )
    bits = section.get("bits")
    if bits is not None:
        try:
            check_bits(bits, f"'{path}.bits'")
        except (TypeError, ValueError) as error:
            raise ConfigError(str(error)) from None
    return bits


_SCOPES_PATH = "compression[quantization].ignored_scopes"
_REGEX_PREFIX = "{re}"


def _ignored_scope(scopes: Any) -> dict[str, list[str]]:
    # NNCF 2.x took one scope as a plain string: it is one name, never a list of its characters.
    names = [scopes] if isinstance(scopes, str) else scopes
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(
            f"'{_SCOPES_PATH}' must be a list of node names (strings; '{_REGEX_PREFIX}' marks a regular "
            f"expression), got {type(scopes).__name__} {scopes!r:.60}"
        )
    # 2.x marked regular expressions with a "{re}" prefix; 3.x keeps them apart as patterns.
    patterns = [name[len(_REGEX_PREFIX) :] for name in names if name.startswith(_REGEX_PREFIX)]
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(
                f"'{_SCOPES_PATH}': '{_REGEX_PREFIX}{pattern}' is not a valid regular expression ({error}); "
                "fix the pattern (escape special characters such as ( [ { with a backslash)"
            ) from None
    return {"names": [name for name in names if not name.startswith(_REGEX_PREFIX)], "patterns": patterns}


def _num_init_samples(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            "'compression[quantization].initializer.range.num_init_samples' counts calibration samples, so "
            f"it must be a positive integer, got {value!r:.60}"
        )
    return value


def _quantization(algorithm: Mapping[str, Any], kwargs: dict[str, Any], capsnet: dict[str, Any]) -> None:
    allowed = {"algorithm", "initializer", "weights", "activations", "ignored_scopes", "preset"}
    _check_keys(algorithm, allowed, "compression[quantization]")
    initializer = _mapping(algorithm.get("initializer", {}), "initializer")
    _check_keys(initializer, {"range"}, "compression[quantization].initializer")
    value_range = _mapping(initializer.get("range", {}), "initializer.range")
    _check_keys(value_range, {"num_init_samples", "type"}, "compression[quantization].initializer.range")
    if "num_init_samples" in value_range:
        kwargs["subset_size"] = _num_init_samples(value_range["num_init_samples"])
    range_type = value_range.get("type", "min_max")
    if range_type != "min_max":
        raise ConfigError(
            f"initializer.range.type {range_type!r}: use advanced_parameters."
            "activations_range_estimator_params (nncf.quantize layout), or 'min_max'"
        )
    for key, bits_key in (("weights", "weight_bits"), ("activations", "activation_bits")):
        if key in algorithm:
            bits = _bits_and_mode(_mapping(algorithm[key], key), f"compression[quantization].{key}")
            if bits is not None:
                capsnet[bits_key] = bits
    if "ignored_scopes" in algorithm:
        kwargs["ignored_scope"] = _ignored_scope(algorithm["ignored_scopes"])
    if "preset" in algorithm:
        kwargs["preset"] = algorithm["preset"]


def translate_legacy_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(nncf.quantize keyword arguments, capsnet section)`` from an NNCF 2.x configuration."""
    _check_keys(config, _TOP_LEVEL_KEYS, "")
    kwargs: dict[str, Any] = {}
    capsnet: dict[str, Any] = {}
    if "target_device" in config:
        kwargs["target_device"] = config["target_device"]
    algorithms = config.get("compression", [])
    if isinstance(algorithms, Mapping):
        algorithms = [algorithms]
    if not isinstance(algorithms, list):
        raise ConfigError(
            f"NNCF 2.x key 'compression' must be a list of algorithm entries, got {type(algorithms).__name__}"
        )
    seen = set()
    for algorithm in algorithms:
        algorithm = _mapping(algorithm, "compression[]")
        name = algorithm.get("algorithm")
        if not isinstance(name, str):
            raise ConfigError(
                f"an entry of 'compression' has algorithm {name!r:.60}; name it, e.g. "
                f'{{"algorithm": "quantization"}} or {{"algorithm": "{CAPSNET_ALGORITHM}"}}'
            )
        if name in seen:
            raise ConfigError(f"compression lists algorithm {name!r} twice; keep one entry")
        seen.add(name)
        if name == "quantization":
            _quantization(algorithm, kwargs, capsnet)
        elif name == CAPSNET_ALGORITHM:
            capsnet.update({key: value for key, value in algorithm.items() if key != "algorithm"})
        else:
            raise ConfigError(
                f"compression algorithm {name!r} is not supported: the adapter runs post-training "
                f"quantization; keep 'quantization' and '{CAPSNET_ALGORITHM}'"
            )
    return kwargs, capsnet
