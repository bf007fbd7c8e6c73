"""``BitAllocation``: per-layer bit-widths (weights, activation, routing tensors) and how they were found.

It is what the FX qconfig mapping (``get_capsnet_qconfig_mapping(allocation=...)``), the NNCF adapter and
export consume, and it round-trips through JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.fx.qconfig import LayerBits, RoutingBits

FORMAT_VERSION = 1


def _routing_to_json(routing: RoutingBits) -> dict[str, Any]:
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in (
            ("logits", routing.logits),
            ("coupling", routing.coupling),
            ("pre_activation", routing.pre_activation),
            ("output", routing.output),
        )
    }


@dataclass
class BitAllocation:
    """Bits per layer name; ``info`` records the search (method, tolerance, accuracies, evaluations)."""

    layers: dict[str, LayerBits]
    method: str = "manual"
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def uniform(
        cls, names: list[str], weight: int = 8, activation: int = 8, routing: int = 8
    ) -> BitAllocation:
        bits = LayerBits(weight, activation, RoutingBits.from_dict(routing))
        return cls({name: bits for name in names}, method="uniform")

    def with_layer(self, name: str, **changes: Any) -> BitAllocation:
        """A copy with one layer's ``weight``, ``activation`` or ``routing`` changed."""
        current = self.layers[name]
        values = {"weight": current.weight, "activation": current.activation, "routing": current.routing}
        values.update(changes)
        return BitAllocation({**self.layers, name: LayerBits(**values)}, self.method, dict(self.info))

    def key(self) -> tuple:
        """A hashable identity of the bits (for evaluation caches)."""
        return tuple(
            sorted((name, bits.weight, bits.activation, bits.routing) for name, bits in self.layers.items())
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "method": self.method,
            "layers": {
                name: {"weight": b.weight, "activation": b.activation, "routing": _routing_to_json(b.routing)}
                for name, b in self.layers.items()
            },
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BitAllocation:
        if data.get("format") != FORMAT_VERSION or not isinstance(data.get("layers"), dict):
            raise ValueError(
                f"not a bit allocation of format {FORMAT_VERSION} (expected keys format, method, layers); "
                "write one with BitAllocation.save or `capsq quantize`"
            )
        layers = {}
        for name, bits in data["layers"].items():
            routing = bits.get("routing", 8)
            layers[name] = LayerBits(
                weight=int(bits.get("weight", 8)),
                activation=int(bits.get("activation", 8)),
                routing=RoutingBits.from_dict(routing),
            )
        return cls(layers, str(data.get("method", "manual")), dict(data.get("info", {})))

    def save(self, path: str | os.PathLike) -> Path:
        destination = Path(path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(destination, json.dumps(self.to_dict(), indent=2) + "\n")
        return destination

    @classmethod
    def load(cls, path: str | os.PathLike) -> BitAllocation:
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(
                f"allocation file {source} does not exist; write one with `capsq quantize`"
            )
        try:
            data = json.loads(source.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{source} is not valid JSON ({error})") from error
        return cls.from_dict(data)
