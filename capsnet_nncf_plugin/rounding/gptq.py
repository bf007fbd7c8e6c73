"""GPTQ rounding of power-of-two weights (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
Generative Pre-trained Transformers", ICLR 2023; the column-by-column error feedback of Optimal Brain
Quantization).

For a weight matrix ``W`` (rows = outputs, columns = the input vector's entries) and the inputs' second
moments ``H = sum x x^T``, the output error of codes ``Q`` is ``tr((W - sQ) H (W - sQ)^T)``. GPTQ rounds one
column at a time, nearest on the layer's fixed grid ``s`` (the power-of-two scale the observer chose, with
its clamp to the integer range), and moves the columns not yet rounded by ``-err * H^-1[i, j>i] / H^-1[i, i]``
so that they absorb the error. Columns are taken in decreasing ``H[i, i]`` (the "act order" of the paper):
inputs with the most energy are rounded first, while the most columns are left to compensate.

The scales are never changed, so GPTQ's codes need nothing new downstream: the quantized layer, its bias
on the accumulator grid, the export and the integer kernels are the ones round-to-nearest has. With
``H = I`` (uncorrelated, equal-energy inputs) there is nothing to compensate and GPTQ *is* round-to-nearest.

    W, H = weight as [groups, rows, K], moments as [groups, K, K]    # one H per group of input vectors
    H += damping * mean(diag H) * I;  U = chol(H^-1) upper            # U[i, i:] = the feedback row
    for column i in decreasing diag(H):
        q_i = clamp(round(W_i / s_i), qmin, qmax)
        W_{>i} -= ((W_i - s_i q_i) / U[i, i]) * U[i, >i]
"""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.core.integer_format import quant_range
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.nn import VoteTransform

#: How a layer's weights get their integer codes: ``nearest`` (the quantizer's rounding) or ``gptq``.
WEIGHT_ROUNDINGS = ("nearest", "gptq")
#: Added to the diagonal of ``H`` as a fraction of its mean: keeps the inverse defined when inputs are
#: collinear or dead (the paper's 1 %).
DEFAULT_DAMPING = 0.01
#: Columns whose feedback is applied lazily together (the paper's block; only speed depends on it).
BLOCK_COLUMNS = 128


def check_weight_rounding(rounding: str) -> str:
    if rounding not in WEIGHT_ROUNDINGS:
        raise ValueError(f"weight rounding must be one of {', '.join(WEIGHT_ROUNDINGS)}; got {rounding!r}")
    return rounding


def _feedback_rows(hessian: torch.Tensor, damping: float) -> torch.Tensor:
    """Upper Cholesky factor of ``(H + damping * mean(diag H) I)^-1``, batched over groups."""
    hessian = hessian.clone()
    diagonal = hessian.diagonal(dim1=1, dim2=2)
    # An input that was always zero carries no information; a unit diagonal leaves its column to plain
    # rounding instead of making H singular.
    diagonal[diagonal == 0] = 1.0
    mean = diagonal.mean(dim=1).view(-1, 1)
    diagonal += damping * mean
    try:
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(hessian))
        return torch.linalg.cholesky(inverse, upper=True)
    except torch.linalg.LinAlgError as error:
        raise ValueError(
            f"GPTQ could not invert the input moments ({error}); pass a larger damping than {damping} "
            "or round this layer to nearest"
        ) from error


def gptq_codes(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    scales: torch.Tensor,
    qmin: int,
    qmax: int,
    damping: float = DEFAULT_DAMPING,
    act_order: bool = True,
) -> torch.Tensor:
    """Integer codes (int64) of ``weight`` ``[groups, rows, K]`` on the grid ``scales`` (same shape).

    ``hessian``: ``[groups, K, K]``, the second moments of the inputs each group multiplies.
    """
    if weight.dim() != 3 or hessian.shape != (weight.shape[0], weight.shape[2], weight.shape[2]):
        raise ValueError(
            f"GPTQ needs weight [groups, rows, K] and moments [groups, K, K]; got {tuple(weight.shape)} "
            f"and {tuple(hessian.shape)}"
        )
    if damping <= 0:
        raise ValueError(f"damping must be > 0 (a fraction of the mean diagonal), got {damping}")
    work = weight.detach().double().clone()
    scales = scales.double().expand_as(work)
    hessian = hessian.double()
    columns = work.shape[2]
    order = None
    if act_order:
        order = torch.argsort(hessian.diagonal(dim1=1, dim2=2), dim=1, descending=True, stable=True)
        index = order.unsqueeze(1).expand_as(work)
        work, scales = work.gather(2, index), scales.gather(2, index)
        hessian = hessian.gather(1, order.unsqueeze(2).expand_as(hessian))
        hessian = hessian.gather(2, order.unsqueeze(1).expand_as(hessian))
    feedback = _feedback_rows(hessian, damping)
    codes = torch.empty_like(work)
    for start in range(0, columns, BLOCK_COLUMNS):
        stop = min(start + BLOCK_COLUMNS, columns)
        block = work[:, :, start:stop]
        errors = torch.empty_like(block)
        local = feedback[:, start:stop, start:stop]
        for i in range(stop - start):
            column, scale = block[:, :, i], scales[:, :, start + i]
            code = torch.round(column / scale).clamp_(qmin, qmax)
            codes[:, :, start + i] = code
            error = (column - code * scale) / local[:, i, i].unsqueeze(1)
            block[:, :, i:] -= error.unsqueeze(2) * local[:, i, i:].unsqueeze(1)
            errors[:, :, i] = error
        work[:, :, stop:] -= errors @ feedback[:, start:stop, stop:]
    if order is not None:
        codes = codes.scatter(2, order.unsqueeze(1).expand_as(codes), codes.clone())
    # round(-0.3) is -0.0; +0.0 gives the +0 code round-to-nearest gives.
    return (codes + 0.0).to(torch.int64)


def _as_matrix(layer: nn.Module, tensor: torch.Tensor) -> torch.Tensor:
    """A weight-shaped tensor in GPTQ's ``[groups, rows, K]`` layout (see input_moments.py)."""
    if isinstance(layer, VoteTransform):
        return tensor.reshape(tensor.shape[0], -1, tensor.shape[-1])
    return tensor.reshape(1, tensor.shape[0], -1)


def gptq_layer_codes(
    layer: nn.Module,
    hessian: torch.Tensor,
    quantizer: PowerOfTwoQuantizer,
    damping: float = DEFAULT_DAMPING,
) -> torch.Tensor:
    """GPTQ codes of ``layer.weight`` on ``quantizer``'s grid, shaped like the weight (int64)."""
    weight = layer.weight.detach()
    qmin, qmax = quant_range(quantizer.bits, quantizer.signed)
    scales = quantizer.dequantize(torch.ones_like(weight))
    codes = gptq_codes(_as_matrix(layer, weight), hessian, _as_matrix(layer, scales), qmin, qmax, damping)
    return codes.reshape(weight.shape)
