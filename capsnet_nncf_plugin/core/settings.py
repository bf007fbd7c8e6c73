"""``QuantizationSettings``: how bit-widths become an integer model, beside the bits themselves.

An allocation search measures every candidate with one clipping rule, one weight rounding and with or
without bias correction; quantizing the found bits any other way loses the accuracy the search measured.
So the settings travel with the bits (``BitAllocation.settings``) and every flow reads them from there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from capsnet_nncf_plugin.core.clipping import DEFAULT_CLIP, check_clip_mode
from capsnet_nncf_plugin.errors import AllocationError, ConfigError

#: How a layer's weights get their integer codes: ``nearest`` (the quantizer's rounding) or ``gptq``.
WEIGHT_ROUNDINGS = ("nearest", "gptq")
DEFAULT_WEIGHT_ROUNDING = "nearest"


def check_weight_rounding(rounding: str) -> str:
    """Return ``rounding`` if it names a weight rounding, else raise ``ValueError`` listing them."""
    if rounding not in WEIGHT_ROUNDINGS:
        raise ConfigError(f"weight rounding must be one of {', '.join(WEIGHT_ROUNDINGS)}; got {rounding!r}")
    return rounding


def check_rounding_options(weight_rounding: str, bias_correction: bool) -> str:
    """``weight_rounding`` if valid and not combined with bias correction, else ``ValueError``."""
    check_weight_rounding(weight_rounding)
    if weight_rounding == "gptq" and bias_correction:
        raise ConfigError(
            "GPTQ and bias correction do not combine: GPTQ's error feedback already moves the outputs "
            "back, and a bias measured for round-to-nearest weights would be wrong for GPTQ's; pick one "
            "(weight_rounding='gptq' or bias_correction=True)"
        )
    return weight_rounding


@dataclass(frozen=True)
class QuantizationSettings:
    """How bits are turned into an integer model.

    ``clip``: the activation clipping rule (``minmax``, ``hardware``, ``percentile``, ``mse``);
    ``bias_correction``: each layer's bias absorbs its quantized weights' mean output error;
    ``weight_rounding``: ``nearest`` or ``gptq`` (not with bias correction).
    """

    clip: str = DEFAULT_CLIP
    bias_correction: bool = False
    weight_rounding: str = DEFAULT_WEIGHT_ROUNDING

    def __post_init__(self) -> None:
        check_clip_mode(self.clip)
        if not isinstance(self.bias_correction, bool):
            raise ConfigError(f"bias_correction must be true or false, got {self.bias_correction!r}")
        check_rounding_options(self.weight_rounding, self.bias_correction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "settings") -> QuantizationSettings:
        """Settings from a mapping of their fields (unknown keys and wrong types refused)."""
        if not isinstance(data, dict):
            raise AllocationError(f"{where} must be an object with keys {sorted(_FIELDS)}, got {data!r}")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise AllocationError(f"{where} has unknown keys {unknown}; known keys: {sorted(_FIELDS)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as error:
            raise AllocationError(f"{where}: {error}") from None


_FIELDS = ("clip", "bias_correction", "weight_rounding")
