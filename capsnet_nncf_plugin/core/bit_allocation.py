"""``BitAllocation``: per-layer bit-widths, how to quantize them, and how they were found; its JSON file.

It is what the FX qconfig mapping, the NNCF adapter, export and the reports consume. The file is read
strictly: a misspelled key, a layer the model does not have, a fractional or out-of-range width is an
:class:`~capsnet_nncf_plugin.errors.AllocationError` naming it, never bits silently left at 8
(:meth:`BitAllocation.check_layers` compares the names with the model's).

File layout (``format`` 1)::

    {"format": 1, "method": "error-guided",
     "layers": {"conv1": {"weight": 5, "activation": 8, "routing": 8}, ...},
     "settings": {"clip": "hardware", "bias_correction": false, "weight_rounding": "nearest"},
     "info": {... the search's record: tolerance, accuracies, evaluations, reductions ...}}

Files written before ``settings`` existed kept ``clip``, ``bias_correction`` and ``weight_rounding`` in
``info``; they still load, the settings read from there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.core.bit_widths import DEFAULT_BITS, LayerBits, RoutingBits
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.errors import AllocationError, MissingFileError

FORMAT_VERSION = 1
_TOP_LEVEL_KEYS = ("format", "method", "layers", "settings", "info")
#: The keys an allocation file once kept its settings under, inside ``info``.
_LEGACY_SETTINGS_KEYS = ("clip", "bias_correction", "weight_rounding")
#: Far more layers than any capsule network has: a file with more is not an allocation.
MAX_LAYERS = 10_000
#: Largest allocation file read: a megabyte holds thousands of layers.
MAX_FILE_BYTES = 16 * 2**20


def _names_listed(names: Iterable[str], limit: int = 12) -> str:
    names = list(names)
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class BitAllocation:
    """Bits per layer name; ``settings`` say how to quantize them (``None``: the quantizing flow's own);
    ``info`` records the search (method, tolerance, accuracies, evaluations)."""

    layers: dict[str, LayerBits]
    method: str = "manual"
    info: dict[str, Any] = field(default_factory=dict)
    settings: QuantizationSettings | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.layers, Mapping):
            raise AllocationError(f"layers must map layer names to bits, got {type(self.layers).__name__}")
        self.layers = {
            name: bits if isinstance(bits, LayerBits) else _layer_bits(name, bits)
            for name, bits in self.layers.items()
        }

    @classmethod
    def uniform(
        cls, names: list[str], weight: int = DEFAULT_BITS, activation: int = DEFAULT_BITS, routing: int = 8
    ) -> BitAllocation:
        bits = LayerBits(weight, activation, RoutingBits.from_dict(routing))
        return cls({name: bits for name in names}, method="uniform")

    def with_layer(self, name: str, **changes: Any) -> BitAllocation:
        """A copy with one layer's ``weight``, ``activation`` or ``routing`` changed."""
        return replace(
            self, layers={**self.layers, name: replace(self.layers[name], **changes)}, info=dict(self.info)
        )

    def with_settings(self, settings: QuantizationSettings | None) -> BitAllocation:
        return replace(self, info=dict(self.info), settings=settings)

    def resolved_settings(self, default: QuantizationSettings | None = None) -> QuantizationSettings:
        """The settings to quantize with: the allocation's own, else ``default`` (else the defaults)."""
        return self.settings or default or QuantizationSettings()

    def key(self) -> tuple:
        """A hashable identity of the bits and settings (for evaluation caches)."""
        bits = tuple(sorted((name, b.weight, b.activation, b.routing) for name, b in self.layers.items()))
        return bits, self.settings

    def check_layers(self, model_layers: Mapping[str, int | None]) -> BitAllocation:
        """Check the names and routing widths against a model's quantizable layers; returns ``self``.

        ``model_layers`` maps each layer name to its routing iterations (``None`` for a layer that does not
        route). Raises :class:`AllocationError` listing the valid names for an unknown layer, and for
        routing widths a layer cannot use.
        """
        unknown = [name for name in self.layers if name not in model_layers]
        if unknown:
            raise AllocationError(
                f"the allocation names {len(unknown)} layer(s) the model does not have "
                f"({_names_listed(unknown)}); its quantizable layers are {_names_listed(model_layers, 50)}: "
                "fix the names (capsq quantize writes a matching file)"
            )
        for name, bits in self.layers.items():
            iterations = model_layers[name]
            if iterations is None:
                if bits.routing != RoutingBits():
                    raise AllocationError(
                        f"layer {name!r} does not route, but the allocation gives it routing bits "
                        f"{bits.routing.to_json()}: remove its 'routing' entry"
                    )
                continue
            try:
                bits.routing.check_iterations(iterations, f"layer {name!r}")
            except ValueError as error:
                raise AllocationError(str(error)) from None
        return self

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "method": self.method,
            "layers": {name: bits.to_json() for name, bits in self.layers.items()},
        }
        if self.settings is not None:
            document["settings"] = self.settings.to_dict()
        document["info"] = self.info
        return document

    @classmethod
    def from_dict(cls, data: Any, source: str = "the allocation") -> BitAllocation:
        """Parse and validate a document of :meth:`to_dict`'s layout (module doc)."""
        if not isinstance(data, Mapping):
            raise AllocationError(
                f"{source} is a {type(data).__name__}, not an object with keys format, method, layers; "
                "write one with BitAllocation.save or `capsq quantize`"
            )
        if data.get("format") != FORMAT_VERSION:
            raise AllocationError(
                f"{source} is not a bit allocation of format {FORMAT_VERSION} (format is "
                f"{data.get('format')!r}); write one with BitAllocation.save or `capsq quantize`"
            )
        unknown = sorted(set(data) - set(_TOP_LEVEL_KEYS), key=str)
        if unknown:
            raise AllocationError(f"{source} has unknown keys {unknown}; known keys: {list(_TOP_LEVEL_KEYS)}")
        layers = data.get("layers")
        if not isinstance(layers, Mapping):
            raise AllocationError(f"{source}: 'layers' must map layer names to bits, got {layers!r:.60}")
        if len(layers) > MAX_LAYERS:
            raise AllocationError(f"{source} lists {len(layers)} layers; no capsule network has that many")
        method = data.get("method", "manual")
        if not isinstance(method, str):
            raise AllocationError(f"{source}: 'method' must be a string, got {method!r}")
        info = data.get("info", {})
        if not isinstance(info, Mapping):
            raise AllocationError(f"{source}: 'info' must be an object, got {type(info).__name__}")
        info = dict(info)
        if "settings" in data:
            settings = QuantizationSettings.from_dict(data["settings"], f"{source}: 'settings'")
        else:
            legacy = {key: info.pop(key) for key in _LEGACY_SETTINGS_KEYS if key in info}
            settings = QuantizationSettings.from_dict(legacy, f"{source}: 'info'") if legacy else None
        parsed = {}
        for name, bits in layers.items():
            if not isinstance(name, str) or not name:
                raise AllocationError(f"{source}: layer names must be non-empty strings, got {name!r}")
            parsed[name] = _layer_bits(name, bits, source)
        return cls(parsed, method, info, settings)

    def save(self, path: str | os.PathLike) -> Path:
        destination = Path(path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(destination, json.dumps(self.to_dict(), indent=2, default=_json_value) + "\n")
        return destination

    @classmethod
    def load(cls, path: str | os.PathLike) -> BitAllocation:
        source = Path(path)
        if source.is_dir():
            raise AllocationError(f"allocation file {source} is a directory; pass the allocation.json in it")
        if not source.is_file():
            raise MissingFileError(
                f"allocation file {source} does not exist; write one with `capsq quantize`"
            )
        if source.stat().st_size > MAX_FILE_BYTES:
            raise AllocationError(f"{source} is {source.stat().st_size} bytes, too large for an allocation")
        try:
            data = json.loads(source.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
        except UnicodeDecodeError as error:
            raise AllocationError(f"{source} is not UTF-8 text ({error.reason}); pass a JSON file") from None
        except (json.JSONDecodeError, RecursionError, ValueError) as error:
            raise AllocationError(f"{source} is not valid JSON ({_one_line(error)})") from None
        return cls.from_dict(data, str(source))


def _layer_bits(name: str, bits: Any, source: str = "the allocation") -> LayerBits:
    try:
        return LayerBits.from_dict(bits)
    except (TypeError, ValueError) as error:
        raise AllocationError(f"{source}: layer {name!r}: {error}") from None


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _json_value(value: Any) -> Any:
    """JSON for the values a search records in ``info`` that ``json`` does not know (numpy numbers)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
