"""A bounded, uniform, deterministic sample of every value an observer has seen (bottom-k sampling).

Each observed column (one position across all channels) gets an independent uniform random key; the sample
is the ``capacity`` columns with the smallest keys. That is exactly a uniform sample without replacement
of everything seen so far, whatever the batch sizes, and merging a batch is one ``topk``. The keys come from
a generator seeded by ``(seed, batch index)``, so the same data in the same order gives the same sample, and
a sample restored from a state dict continues identically.
"""

from __future__ import annotations

import torch

_SEED_STRIDE = 2**32


def sampling_generator(seed: int, batch_index: int) -> torch.Generator:
    """The CPU generator that draws the keys of batch ``batch_index`` for a sampler seeded with ``seed``."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed * _SEED_STRIDE + batch_index)
    return generator


def merge_into_reservoir(
    kept_values: torch.Tensor,
    kept_keys: torch.Tensor,
    batch: torch.Tensor,
    capacity: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge the columns of ``batch`` ``[channels, n]`` into a sample ``[channels, k]`` with keys ``[k]``.

    Returns the new ``(values, keys)``, at most ``capacity`` columns.
    """
    new_keys = torch.rand(batch.shape[1], generator=generator, dtype=torch.float64).to(kept_keys.device)
    values = torch.cat([kept_values, batch.to(kept_values.device, kept_values.dtype)], dim=1)
    keys = torch.cat([kept_keys, new_keys])
    if keys.numel() <= capacity:
        return values, keys
    kept = torch.topk(keys, capacity, largest=False, sorted=False).indices
    return values[:, kept], keys[kept]
