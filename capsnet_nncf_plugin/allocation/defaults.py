"""The default search of ``allocate()``, ``capsq quantize`` and ``capsq run``, in one place.

Chosen by measurement (issue 35; docs/results.md has the rows and the commit that measured them): with
error-guided assignment, on the zoo's ShallowCaps models,

* a weights budget of 1/8 of FP32 (``DEFAULT_WEIGHT_REDUCTION``): the weights take the memory asked of
  them and leave the rest of the tolerance to the activations, which a search without a budget spends
  on weights far below it (shallowcaps-mnist: 10.64x weights but 5.93x activations without it);
* MSE activation clipping (``DEFAULT_SEARCH_SETTINGS``): the clipping range of each width chosen for its
  quantization error, which lets Fashion-MNIST activations go below 8 bits where the hardware rule's
  full range does not;
* the ``accuracy`` criterion (``DEFAULT_CRITERION``): under ``losses`` a Fashion-MNIST model, whose
  quantized predictions change in both directions, cannot lower any activation at 0.1 pp (5.33x /
  3.68x on shallowcaps-fmnist; with the budget and MSE clipping 6.69x / 3.41x), while its test loss
  under ``accuracy`` stayed within the tolerance (8.43x / 4.83x, -0.11 pp).

Round-to-nearest stays the weight rounding: GPTQ costs minutes more per search on DeepCaps and the NNCF
flow cannot apply it (``--weight-rounding gptq`` keeps it one option away).
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.allocation.memory import FLOAT_BITS
from capsnet_nncf_plugin.core.settings import QuantizationSettings

#: The weights budget, as a reduction against the FP32 weights (8: at most 1/8 of them).
DEFAULT_WEIGHT_REDUCTION = 8.0
#: How every candidate of the default search is quantized.
DEFAULT_SEARCH_SETTINGS = QuantizationSettings(clip="mse")
#: What "within tolerance" means by default (evaluator.py defines both criteria).
DEFAULT_CRITERION = "accuracy"


def weight_budget_for_reduction(model: torch.nn.Module, reduction: float) -> float:
    """The weights budget, in bits as ``memory_report`` counts them, of ``reduction`` against FP32."""
    if not reduction > 0:
        raise ValueError(f"a weight reduction must be > 0, got {reduction}")
    return sum(p.numel() for p in model.parameters()) * FLOAT_BITS / reduction
