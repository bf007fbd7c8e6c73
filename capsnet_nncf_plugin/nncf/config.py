"""The user's NNCF configuration: ``nncf.quantize`` keyword arguments plus a ``"capsnet"`` section.

A configuration is a dict, or a JSON or YAML file holding one. Everything outside ``"capsnet"`` is handed to
``nncf.quantize`` unchanged after validation against its signature; string values become NNCF's enums and
nested dicts its parameter dataclasses. The NNCF 2.x layout (``{"compression": [...]}``) is translated by
:mod:`capsnet_nncf_plugin.nncf.legacy_config`.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nncf
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

from capsnet_nncf_plugin.allocation.evaluator import CRITERIA
from capsnet_nncf_plugin.observers import check_bits
from capsnet_nncf_plugin.observers.clipping import check_clip_mode

#: ``nncf.quantize`` arguments that are not configuration.
_CALL_ARGUMENTS = ("model", "calibration_dataset")


class ConfigError(ValueError):
    """A configuration the NNCF adapter cannot use; the message names the key and the fix."""


@dataclass(frozen=True)
class CapsnetSection:
    """The plugin's own keys: bit-widths (uniform or searched) and how uncalibrated points are clipped.

    ``allocation``: a ``BitAllocation`` JSON file (``capsq quantize`` writes one); ``method``: an allocation
    method name searched with ``tolerance`` on the validation data passed to ``quantize``; neither: uniform
    ``weight_bits``/``activation_bits``/``routing_bits``. ``clip`` applies where NNCF places no quantizer
    (the routing tensors b and s inside the integer routing op).
    """

    method: str | None = None
    allocation: str | None = None
    tolerance: float = 0.1
    criterion: str = "losses"
    clip: str = "minmax"
    weight_bits: int = 8
    activation_bits: int = 8
    routing_bits: int = 8

    def __post_init__(self) -> None:
        if self.method is not None and self.allocation is not None:
            raise ConfigError(
                "capsnet: give either 'method' (search an allocation) or 'allocation' (a file), not both"
            )
        for key in ("weight_bits", "activation_bits", "routing_bits"):
            value = getattr(self, key)
            try:
                check_bits(value, f"capsnet.{key}")
            except (TypeError, ValueError) as error:
                raise ConfigError(str(error)) from None
        if self.criterion not in CRITERIA:
            raise ConfigError(f"capsnet.criterion must be one of {list(CRITERIA)}, got {self.criterion!r}")
        try:
            check_clip_mode(self.clip)
        except ValueError as error:
            raise ConfigError(f"capsnet.clip: {error}") from None
        if isinstance(self.tolerance, bool) or not isinstance(self.tolerance, (int, float)):
            raise ConfigError(
                f"capsnet.tolerance must be a number of percentage points, got {self.tolerance!r}"
            )
        if self.tolerance < 0:
            raise ConfigError(f"capsnet.tolerance must be >= 0 percentage points, got {self.tolerance}")

    @classmethod
    def from_dict(cls, data: Any) -> CapsnetSection:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"the 'capsnet' section must be a mapping, got {type(data).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown key(s) in 'capsnet': {unknown}; known keys: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class NNCFQuantizationConfig:
    """A validated configuration: keyword arguments for ``nncf.quantize`` and the plugin's section."""

    quantize_kwargs: dict[str, Any]
    capsnet: CapsnetSection
    layout: str  # "nncf.quantize" or "nncf-2.x"


def quantize_parameters() -> dict[str, inspect.Parameter]:
    """The configurable keyword parameters of the installed ``nncf.quantize``."""
    parameters = inspect.signature(nncf.quantize).parameters
    return {name: p for name, p in parameters.items() if name not in _CALL_ARGUMENTS}


def read_config_file(path: str | os.PathLike) -> Any:
    """The mapping in a JSON (``.json``) or YAML (``.yaml``/``.yml``) file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{path} is YAML but PyYAML is not installed; pip install pyyaml") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if path.suffix.lower() != ".json":
        raise ConfigError(f"{path}: a configuration file ends in .json, .yaml or .yml")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None


def load_config(config: Mapping[str, Any] | str | os.PathLike | None) -> NNCFQuantizationConfig:
    """Validate ``config`` (a dict, a JSON/YAML path, or None for NNCF's defaults) of either layout."""
    if config is None:
        config = {}
    if isinstance(config, (str, os.PathLike)):
        config = read_config_file(config)
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"a configuration is a mapping of nncf.quantize arguments, got {type(config).__name__}"
        )
    if "compression" in config or "input_info" in config:
        from capsnet_nncf_plugin.nncf.legacy_config import translate_legacy_config

        kwargs, capsnet = translate_legacy_config(config)
        return NNCFQuantizationConfig(
            build_quantize_kwargs(kwargs), CapsnetSection.from_dict(capsnet), "nncf-2.x"
        )
    kwargs = {key: value for key, value in config.items() if key != "capsnet"}
    return NNCFQuantizationConfig(
        build_quantize_kwargs(kwargs), CapsnetSection.from_dict(config.get("capsnet")), "nncf.quantize"
    )


def build_quantize_kwargs(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` checked against ``nncf.quantize``'s signature, with strings and dicts made NNCF objects."""
    parameters = quantize_parameters()
    unknown = sorted(set(raw) - set(parameters))
    if unknown:
        raise ConfigError(
            f"unknown nncf.quantize argument(s) {unknown}; nncf {nncf.__version__} accepts "
            f"{sorted(parameters)} and the plugin's 'capsnet' section"
        )
    kwargs = {name: _convert(value, parameters[name].annotation, name) for name, value in raw.items()}
    preset = kwargs.get("preset")
    if preset is not None and preset != nncf.QuantizationPreset.PERFORMANCE:
        raise ConfigError(
            f"preset {preset.value!r} quantizes activations asymmetrically; the plugin's integer ops use "
            "symmetric power-of-two scales (zero point 0): use preset 'performance' or leave it out"
        )
    if kwargs.get("mode") is not None:
        raise ConfigError("mode selects FP8/FP4 formats; the plugin quantizes to integers: leave 'mode' out")
    kwargs["advanced_parameters"] = _without_overflow_fix(kwargs.get("advanced_parameters"))
    return kwargs


def _without_overflow_fix(advanced: AdvancedQuantizationParameters | None) -> AdvancedQuantizationParameters:
    """NNCF's parameters with the overflow fix off, refusing a configuration that asks for it.

    The fix halves weight ranges so that u8 x s8 kernels cannot saturate; the plugin's export keeps the
    integer kernels exact another way (unsigned weights where a product could saturate, docs/export.md), so
    halving would only cost a bit of precision.
    """
    advanced = advanced or AdvancedQuantizationParameters()
    if advanced.overflow_fix not in (None, OverflowFix.DISABLE):
        raise ConfigError(
            f"advanced_parameters.overflow_fix {advanced.overflow_fix.value!r} halves weight ranges; the "
            "plugin's export avoids the overflow without it: set it to 'disable' or leave it out"
        )
    return dataclasses.replace(advanced, overflow_fix=OverflowFix.DISABLE)


def _options(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(option for option in typing.get_args(annotation) if option is not type(None))
    return (annotation,)


def _convert(value: Any, annotation: Any, key: str) -> Any:
    """A JSON value as the type ``annotation`` names: enums from names/values, dataclasses from dicts."""
    if value is None:
        return None
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, enum.Enum):
            if isinstance(value, option):
                return value
            if isinstance(value, str):
                return _enum_member(option, value, key)
        if dataclasses.is_dataclass(option) and isinstance(value, Mapping):
            fields = {field.name for field in dataclasses.fields(option)}
            if set(value) <= fields:
                return _dataclass(option, value, key)
        if option is nncf.IgnoredScope and isinstance(value, Mapping):
            return _dataclass(option, value, key)
    dataclass_options = [o for o in _options(annotation) if dataclasses.is_dataclass(o)]
    if dataclass_options and isinstance(value, Mapping):
        fields = sorted({f.name for o in dataclass_options for f in dataclasses.fields(o)})
        unknown = sorted(set(value) - set(fields))
        raise ConfigError(f"unknown key(s) {unknown} in '{key}'; known keys: {fields}")
    return value


def _enum_member(enum_type: type[enum.Enum], value: str, key: str) -> enum.Enum:
    for member in enum_type:
        if value in (member.value, member.name) or value.upper() == member.name:
            return member
    choices = [member.value for member in enum_type]
    raise ConfigError(f"'{key}': {value!r} is not one of {choices}")


def _dataclass(cls: type, data: Mapping[str, Any], key: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in '{key}'; known keys: {sorted(fields)}")
    arguments = {name: _convert(value, hints.get(name, Any), f"{key}.{name}") for name, value in data.items()}
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"'{key}': {error}") from None
