"""The user's NNCF configuration: ``nncf.quantize`` keyword arguments plus a ``"capsnet"`` section.

A configuration is a dict, or a JSON or YAML file holding one. Everything outside ``"capsnet"`` is handed to
``nncf.quantize`` unchanged after validation against its signature; string values become NNCF's enums and
nested dicts its parameter dataclasses. The NNCF 2.x layout (``{"compression": [...]}``) is translated by
:mod:`capsnet_nncf_plugin.nncf.legacy_config`.

Every value is checked against the annotation of the ``nncf.quantize`` parameter (or dataclass field) it
fills, recursively: booleans are booleans, counts positive integers, numbers finite, enums their names or
values, lists lists (a string is never split into characters), regular expressions compilable. A value that
fails is a :class:`ConfigError` naming the key and the fix, here, instead of a failure deep inside NNCF
that never names the key.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nncf
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

from capsnet_nncf_plugin.allocation.defaults import (
    DEFAULT_CRITERION,
    DEFAULT_WEIGHT_REDUCTION,
    check_weight_reduction,
)
from capsnet_nncf_plugin.allocation.evaluator import CRITERIA
from capsnet_nncf_plugin.core.clipping import check_clip_mode
from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.core.real_numbers import is_finite_number
from capsnet_nncf_plugin.errors import ConfigError

#: ``nncf.quantize`` arguments that are not configuration.
_CALL_ARGUMENTS = ("model", "calibration_dataset")


#: Integer arguments that count something (calibration samples, bits): at least 1.
_COUNTS = frozenset({"subset_size", "num_bits"})

#: The largest tolerance, in percentage points of accuracy, that means anything.
MAX_TOLERANCE = 100.0


class _TypeMismatch(ConfigError):
    """``value`` is not of the type the annotation at ``key`` names (a union tries its next option)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _show(value: Any) -> str:
    """A value as the configuration file spells it, shortened: ``'ten'``, ``-1``, ``null``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        text = repr(value)
        return text if len(text) <= 40 else f"{text[:37]}..."
    return f"a {type(value).__name__}"


def _keys_text(keys: Any) -> list[str]:
    # Keys from YAML may be numbers or null; sorting them as text never compares a str with an int.
    return sorted(str(key) for key in keys)


@dataclass(frozen=True)
class CapsnetSection:
    """The plugin's own keys: bit-widths (uniform or searched) and how uncalibrated points are clipped.

    ``allocation``: a ``BitAllocation`` JSON file (``capsq quantize`` writes one); ``method``: an allocation
    method name searched with ``tolerance`` on the validation data passed to ``quantize``; neither: uniform
    ``weight_bits``/``activation_bits``/``routing_bits``. ``clip`` applies where NNCF places no quantizer
    (the routing tensors b and s inside the integer routing op). ``criterion`` and ``weight_reduction``
    (the search's weights budget against FP32; null: none) default as ``allocate()``'s do.
    """

    method: str | None = None
    allocation: str | None = None
    tolerance: float = 0.1
    criterion: str = DEFAULT_CRITERION
    weight_reduction: float | None = DEFAULT_WEIGHT_REDUCTION
    clip: str = "minmax"
    weight_bits: int = 8
    activation_bits: int = 8
    routing_bits: int = 8

    def __post_init__(self) -> None:
        if self.method is not None and self.allocation is not None:
            raise ConfigError(
                "capsnet: give either 'method' (search an allocation) or 'allocation' (a file), not both"
            )
        if self.method is not None:
            from capsnet_nncf_plugin.allocation import available_methods  # lazy: plugins load on first use

            methods = available_methods()
            if not isinstance(self.method, str) or self.method not in methods:
                raise ConfigError(f"capsnet.method must be one of {methods}, got {_show(self.method)}")
        if self.allocation is not None and not isinstance(self.allocation, (str, os.PathLike)):
            raise ConfigError(
                "capsnet.allocation must be the path of a BitAllocation JSON file, got "
                f"{_show(self.allocation)}"
            )
        for key in ("weight_bits", "activation_bits", "routing_bits"):
            value = getattr(self, key)
            try:
                check_bits(value, f"capsnet.{key}")
            except (TypeError, ValueError) as error:
                raise ConfigError(str(error)) from None
        if not isinstance(self.criterion, str) or self.criterion not in CRITERIA:
            raise ConfigError(
                f"capsnet.criterion must be one of {list(CRITERIA)}, got {_show(self.criterion)}"
            )
        try:
            check_clip_mode(self.clip)
        # A list or dict is not a mode either (and cannot be looked up): the same error.
        except (TypeError, ValueError) as error:
            raise ConfigError(f"capsnet.clip: {error}") from None
        if not is_finite_number(self.tolerance):
            raise ConfigError(
                f"capsnet.tolerance must be a finite number of percentage points, got {_show(self.tolerance)}"
            )
        check_weight_reduction(self.weight_reduction, "capsnet.weight_reduction")
        if not 0 <= self.tolerance <= MAX_TOLERANCE:
            raise ConfigError(
                f"capsnet.tolerance must be >= 0 and <= {MAX_TOLERANCE:g} percentage points, got "
                f"{self.tolerance}"
            )

    @classmethod
    def from_dict(cls, data: Any) -> CapsnetSection:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"the 'capsnet' section must be a mapping, got {type(data).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = _keys_text(set(data) - known)
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
    if path.is_dir():
        raise ConfigError(f"configuration file {path} is a directory; pass the .json or .yaml file in it")
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ConfigError(f"{path}: a configuration file ends in .json, .yaml or .yml")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {error.start} cannot be decoded); save it as UTF-8"
        ) from None
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{path} is YAML but PyYAML is not installed; pip install pyyaml") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            # PyYAML's messages span lines (with a context excerpt): one line here.
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
        except RecursionError:
            raise ConfigError(f"{path} nests its values too deeply to be a configuration") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path} nests its values too deeply to be a configuration") from None


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
    unknown = _keys_text(set(raw) - set(parameters))
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


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _type_name(annotation: Any) -> str:
    """How a message names what a key takes."""
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a finite number"
    if annotation is str:
        return "a string"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return f"one of {[member.value for member in annotation]}"
    if dataclasses.is_dataclass(annotation):
        return f"a mapping of {annotation.__name__} fields"
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return "a list" if item is Any else f"a list of {_type_name(item).removeprefix('a ')}s"
    if typing.get_origin(annotation) is dict:
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def _convert(value: Any, annotation: Any, key: str) -> Any:
    """A JSON value as the type ``annotation`` names (enums from names/values, dataclasses from dicts),
    checked on the way; ``key`` is the dotted path messages name."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    if _is_union(annotation):
        return _convert_union(value, typing.get_args(annotation), key)
    if value is None:
        raise _TypeMismatch(
            key, f"'{key}' must be {_type_name(annotation)}, got null; give a value or leave it out"
        )
    leaf = key.rsplit(".", 1)[-1].split("[", 1)[0]
    if annotation is bool:
        if not isinstance(value, bool):
            raise _TypeMismatch(key, f"'{key}' must be true or false, got {_show(value)}")
        return value
    if annotation is int:
        # bool is an int subclass, and 1.5 or "10" are not counts: both are refused.
        if isinstance(value, bool) or not isinstance(value, int):
            kind = "a positive integer" if leaf in _COUNTS else "an integer"
            raise _TypeMismatch(key, f"'{key}' must be {kind}, got {_show(value)}")
        if leaf in _COUNTS and value < 1:
            raise ConfigError(f"'{key}' counts something, so it must be a positive integer, got {value}")
        return value
    if annotation is float:
        if not is_finite_number(value):
            raise _TypeMismatch(key, f"'{key}' must be a finite number, got {_show(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise _TypeMismatch(key, f"'{key}' must be a string, got {_show(value)}")
        return value
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_member(annotation, value, key)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise _TypeMismatch(key, f"'{key}' must be {_type_name(annotation)}, got {_show(value)}")
        return _dataclass(annotation, value, key)
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        if isinstance(value, str):
            # A string is iterable: taken as a list, "conv1" would become ["c", "o", "n", "v", "1"].
            raise _TypeMismatch(
                key,
                f"'{key}' must be {_type_name(annotation)}, got the string {_show(value)}; write [{value!r}]",
            )
        if not isinstance(value, (list, tuple)):
            raise _TypeMismatch(key, f"'{key}' must be {_type_name(annotation)}, got {_show(value)}")
        return [_convert(element, item, f"{key}[{index}]") for index, element in enumerate(value)]
    if origin is dict:
        key_type, value_type = typing.get_args(annotation) or (Any, Any)
        if not isinstance(value, Mapping):
            raise _TypeMismatch(key, f"'{key}' must be a mapping, got {_show(value)}")
        return {
            _convert(name, key_type, f"{key} key"): _convert(entry, value_type, f"{key}.{name}")
            for name, entry in value.items()
        }
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise _TypeMismatch(key, f"'{key}' must be {_type_name(annotation)}, got {_show(value)}")
    return value


def _convert_union(value: Any, options: tuple[Any, ...], key: str) -> Any:
    if value is None and type(None) in options:
        return None
    candidates = [option for option in options if option is not type(None)]
    mismatches: list[_TypeMismatch] = []
    for option in candidates:
        try:
            return _convert(value, option, key)
        except _TypeMismatch as error:
            if error.key != key:
                raise  # the value had this option's shape; its problem is deeper, and named there
            mismatches.append(error)
    if len(mismatches) == 1:
        raise mismatches[0]
    dataclass_options = [option for option in candidates if dataclasses.is_dataclass(option)]
    if isinstance(value, Mapping) and len(dataclass_options) == len(candidates):
        fields = sorted({field.name for option in candidates for field in dataclasses.fields(option)})
        unknown = _keys_text(set(value) - set(fields))
        raise _TypeMismatch(key, f"unknown key(s) {unknown} in '{key}'; known keys: {fields}")
    expected = " or ".join(_type_name(option) for option in candidates)
    raise _TypeMismatch(key, f"'{key}' must be {expected}, got {_show(value)}")


def _enum_member(enum_type: type[enum.Enum], value: Any, key: str) -> enum.Enum:
    if isinstance(value, enum_type):
        return value
    for member in enum_type:
        if isinstance(value, str) and (value in (member.value, member.name) or value.upper() == member.name):
            return member
        # Enums with non-string values (numbers) accept the value itself; a bool is never a number here.
        if not isinstance(value, (str, bool)) and type(value) is type(member.value) and value == member.value:
            return member
    choices = [member.value for member in enum_type]
    raise _TypeMismatch(key, f"'{key}': {_show(value)} is not one of {choices}")


def _dataclass(cls: type, data: Mapping[str, Any], key: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = _keys_text(set(data) - fields)
    if unknown:
        raise _TypeMismatch(key, f"unknown key(s) {unknown} in '{key}'; known keys: {sorted(fields)}")
    arguments = {name: _convert(value, hints.get(name, Any), f"{key}.{name}") for name, value in data.items()}
    if cls is nncf.IgnoredScope:
        _check_patterns(arguments.get("patterns", []), f"{key}.patterns")
    try:
        return cls(**arguments)
    # NNCF's dataclasses validate some fields themselves (nncf.ValidationError is not a ValueError).
    except (TypeError, ValueError, nncf.ValidationError) as error:
        raise ConfigError(f"'{key}': {error}") from None


def _check_patterns(patterns: list[str], key: str) -> None:
    """NNCF compiles ignored-scope patterns only once it matches them against the graph: compile now."""
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(
                f"'{key}[{index}]' {pattern!r} is not a valid regular expression ({error}); fix the pattern "
                "(escape special characters such as ( [ { with a backslash)"
            ) from None
