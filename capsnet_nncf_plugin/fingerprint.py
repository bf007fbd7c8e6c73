"""Content fingerprints: what a measurement depends on, hashed, so that a rerun can tell whether a kept
measurement is still the one it would make.

A model's fingerprint has two parts: its parameters and buffers (:func:`update_with_tensors`) and its code
(:func:`model_code_digest`). Weights alone are not enough: a user who edits the ``forward`` of the model
file they pass keeps the same state dict and would otherwise be handed the old model's numbers.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Iterable
from typing import Any

import torch


def update_with_tensors(digest: Any, tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
    """Feed ``digest`` (a ``hashlib`` object) each tensor's name, shape, dtype and bytes."""
    for name, tensor in tensors:
        data = tensor.detach().cpu().contiguous().view(-1)
        if data.dtype == torch.bool:
            data = data.to(torch.uint8)
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())


def tensor_digest(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """A 128-bit hex digest of named tensors (:func:`update_with_tensors`)."""
    digest = hashlib.blake2b(digest_size=16)
    update_with_tensors(digest, tensors)
    return digest.hexdigest()


def model_code_digest(model: torch.nn.Module) -> str:
    """A digest of the code ``model`` runs: torch's version, the class of every submodule with the source
    file of each class that is not torch's own, and the generated code of traced graphs."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(torch.__version__.encode())
    files: set[str] = set()
    for module in model.modules():
        cls = type(module)
        if isinstance(module, torch.fx.GraphModule):
            digest.update(module.code.encode())
        digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())
        if cls.__module__.split(".")[0] == "torch":  # torch's own: its version above stands for its code
            continue
        try:
            files.add(inspect.getsourcefile(cls) or "")
        except TypeError:  # defined in C or in an interactive session: its name above is all there is
            continue
    for path in sorted(files - {""}):
        try:
            with open(path, "rb") as source:
                digest.update(source.read())
        except OSError:
            digest.update(path.encode())
    return digest.hexdigest()


def measurement_fingerprint(
    model: torch.nn.Module, tensors: Iterable[tuple[str, torch.Tensor]], described: object
) -> str:
    """What a measurement of ``model`` depends on, hashed (SHA-256): ``described`` (JSON: the kind of
    measurement, its settings and layout version), the model's code, its parameters and buffers, then
    ``tensors`` (the images it ran on)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(described).encode())
    digest.update(model_code_digest(model).encode())
    update_with_tensors(digest, [*model.state_dict().items(), *tensors])
    return digest.hexdigest()
