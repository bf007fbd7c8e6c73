"""Float capsule maths as plain functions: the reference every module, adapter and test agrees with."""

from __future__ import annotations

import torch

#: Added under the square root of squash so that a zero vector maps to zero with a finite gradient.
SQUASH_EPS = 1e-8


def squash(tensor: torch.Tensor, dim: int = -1, eps: float = SQUASH_EPS) -> torch.Tensor:
    """Sabour et al.'s non-linearity: keep the direction, map the norm n to n^2 / (1 + n^2)."""
    squared_norm = (tensor * tensor).sum(dim=dim, keepdim=True)
    # rsqrt instead of a division by sqrt: when a quantizer rounds the norm to zero, nothing becomes 0/0.
    return tensor * (squared_norm / (1.0 + squared_norm) * torch.rsqrt(squared_norm + eps))


def capsule_length(capsules: torch.Tensor, dim: int = -1, eps: float = SQUASH_EPS) -> torch.Tensor:
    """Euclidean norm of each capsule: the class score of a capsule classifier.

    The square root runs in float64: torch's float32 CPU sqrt is not always correctly rounded (sqrt(1e-8)
    comes out one ulp high), onnxruntime's is; a float64 root rounded to float32 is correctly rounded
    everywhere, so an exported quantized model gives the same scores bit for bit.
    """
    squared = (capsules * capsules).sum(dim=dim) + eps
    return torch.sqrt(squared.to(torch.float64)).to(squared.dtype)
