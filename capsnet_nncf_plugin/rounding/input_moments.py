"""Second moments ``H = sum x x^T`` of a layer's inputs, laid out the way its weight multiplies them.

GPTQ needs, for every group of weights that multiplies the same input vector, the Gram matrix of those
vectors over the calibration data:

* ``Conv2d``: one group; the vectors are the unfolded input patches (``F.unfold``, whose channel-major,
  then kernel-row, then kernel-column order is the order of ``weight.reshape(out, -1)``), ``[1, K, K]``
  with ``K = in_channels / groups * kh * kw`` (grouped convolutions are not supported);
* ``Linear``: one group; the vectors are the input rows, ``[1, in, in]``;
* ``VoteTransform``: one group per input capsule ``i`` (``W_ij`` multiplies the pose ``u_i``),
  ``[I, in_dim, in_dim]``.

Sums are kept in float64 so that 100,000 patches of a DeepCaps layer add up without loss.
"""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.nn import VoteTransform

#: Widest input vector GPTQ rounds against. ``H`` is K x K float64 and the rounding visits K columns one by
#: one: ShallowCaps' 9 x 9 x 256 primary-capsule convolution (K = 20,736) would need a 3.4 GB ``H`` and
#: minutes per width, for 6 % of its weights; such layers keep round-to-nearest.
MAX_GPTQ_COLUMNS = 4096


def input_size(layer: nn.Module) -> int:
    """K: the length of the input vector each output of ``layer`` is a dot product with."""
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
    if isinstance(layer, nn.Linear):
        return layer.in_features
    if isinstance(layer, VoteTransform):
        return layer.in_dim
    return 0


def supports_gptq(layer: nn.Module) -> bool:
    """Whether GPTQ rounds ``layer``'s weight: ungrouped Conv2d, Linear or VoteTransform with K at most
    ``MAX_GPTQ_COLUMNS`` (others keep round-to-nearest)."""
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        return False
    return isinstance(layer, (nn.Conv2d, nn.Linear, VoteTransform)) and input_size(layer) <= MAX_GPTQ_COLUMNS


def input_vectors(layer: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The vectors each weight group multiplies, ``[groups, samples, K]``."""
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ValueError(
                f"GPTQ needs explicit zero padding on {layer}; use padding=int/tuple, or round it to nearest"
            )
        patches = nn.functional.unfold(
            inputs, layer.kernel_size, dilation=layer.dilation, padding=layer.padding, stride=layer.stride
        )
        return patches.transpose(1, 2).reshape(1, -1, patches.shape[1])
    if isinstance(layer, nn.Linear):
        return inputs.reshape(1, -1, inputs.shape[-1])
    if isinstance(layer, VoteTransform):
        # poses [N, I, K] -> [I, N, K]
        return inputs.transpose(0, 1)
    raise TypeError(f"GPTQ rounds Conv2d, Linear and VoteTransform weights, not {type(layer).__name__}")


class InputMoments:
    """Accumulates ``H`` of one layer over the batches it sees (``add``), ``[groups, K, K]``."""

    def __init__(self, layer: nn.Module) -> None:
        if not supports_gptq(layer):
            raise TypeError(f"GPTQ cannot round the weight of {type(layer).__name__}")
        self.layer = layer
        self.total: torch.Tensor | None = None
        self.samples = 0

    def add(self, inputs: torch.Tensor) -> None:
        vectors = input_vectors(self.layer, inputs.detach()).double()
        moments = vectors.transpose(1, 2) @ vectors
        self.total = moments if self.total is None else self.total + moments
        self.samples += vectors.shape[1]

    @property
    def hessian(self) -> torch.Tensor:
        if self.total is None:
            raise RuntimeError("GPTQ saw no input of this layer; run calibration batches through it first")
        return self.total
