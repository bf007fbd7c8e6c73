"""The integer formats of every quantity inside dynamic routing, per iteration: ``RoutingQuantization``.

Iteration ``t`` (0-based, ``T`` iterations) couples with ``C_t`` (unsigned ``coupling_bits[t]``, exponent
``-coupling_bits[t]``), pre-activates ``S_t`` (signed ``pre_bits[t]``, exponent ``pre_exponents[t]``) and
squashes to ``V_t`` (signed ``out_bits[t]``, exponent ``-(out_bits[t] - 1)``). The logits entering
iteration ``t >= 1`` are ``B_t`` with ``logit_bits[t - 1]`` signed bits and exponent
``logit_exponents[t - 1]``; ``B_0 = 0`` needs no format. The field order is the argument order of the
``capsnet::int_dynamic_routing`` op and of the ONNX ``IntDynamicRouting`` attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.ops.operands import check_exponent

#: Upper limit on routing iterations: the papers use 3; more only multiplies the cost.
MAX_ROUTING_ITERATIONS = 16

_PER_ITERATION_FIELDS = ("coupling_bits", "pre_exponents", "pre_bits", "out_bits")
_PER_UPDATE_FIELDS = ("logit_exponents", "logit_bits")


@dataclass(frozen=True)
class RoutingQuantization:
    """Bit-widths and exponents of integer dynamic routing; validated on construction, JSON-serialisable.

    ``coupling_bits``, ``pre_exponents``, ``pre_bits`` and ``out_bits`` have one entry per iteration;
    ``logit_exponents`` and ``logit_bits`` one per logit update (``iterations - 1``). Sequences are stored
    as tuples of ints.
    """

    iterations: int
    votes_exponent: int
    votes_bits: int
    coupling_bits: tuple[int, ...]
    pre_exponents: tuple[int, ...]
    pre_bits: tuple[int, ...]
    out_bits: tuple[int, ...]
    logit_exponents: tuple[int, ...] = ()
    logit_bits: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        iterations = self.iterations
        if isinstance(iterations, bool) or not isinstance(iterations, int):
            raise ValueError(f"iterations must be an int, got {iterations!r}")
        if not 1 <= iterations <= MAX_ROUTING_ITERATIONS:
            raise ValueError(f"iterations must be in 1..{MAX_ROUTING_ITERATIONS}, got {iterations}")
        check_exponent(self.votes_exponent, "votes_exponent")
        check_bits(self.votes_bits, "votes_bits")
        for name in _PER_ITERATION_FIELDS + _PER_UPDATE_FIELDS:
            expected = iterations if name in _PER_ITERATION_FIELDS else iterations - 1
            values = _as_int_tuple(getattr(self, name), name)
            if len(values) != expected:
                what = "iteration" if name in _PER_ITERATION_FIELDS else "logit update (iterations - 1)"
                raise ValueError(
                    f"{name} has {len(values)} entries but iterations={iterations} needs {expected}, "
                    f"one per {what}"
                )
            check = check_exponent if name.endswith("exponents") else check_bits
            for index, value in enumerate(values):
                check(value, f"{name}[{index}]")
            # The dataclass is frozen; normalising lists to tuples here keeps it hashable and comparable.
            object.__setattr__(self, name, values)

    @property
    def output_bits(self) -> int:
        """Signed bit-width of the routed capsules (the last iteration's squash)."""
        return self.out_bits[-1]

    @property
    def output_exponent(self) -> int:
        """Exponent of the routed capsules: ``-(output_bits - 1)``."""
        return -(self.out_bits[-1] - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain ints and lists of ints, in field order: ``json.dumps`` takes it as is."""
        return {
            field.name: list(value) if isinstance(value := getattr(self, field.name), tuple) else value
            for field in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingQuantization:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming missing or unknown keys."""
        if not isinstance(data, Mapping):
            raise ValueError(f"RoutingQuantization.from_dict needs a mapping, got {type(data).__name__}")
        names = [field.name for field in dataclasses.fields(cls)]
        required = [field.name for field in dataclasses.fields(cls) if field.default is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            raise ValueError(
                f"routing quantization dict is missing {missing} and has unknown keys {unknown}; "
                f"expected the keys {names}"
            )
        return cls(**{name: data[name] for name in names if name in data})

    def as_op_arguments(self) -> tuple[int | list[int], ...]:
        """The fields flattened in the order of ``capsnet::int_dynamic_routing``'s arguments after votes."""
        return tuple(self.to_dict().values())


def _as_int_tuple(values: Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of ints, got {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must contain ints only, got {value!r} in {list(values)!r}")
    return tuple(values)
