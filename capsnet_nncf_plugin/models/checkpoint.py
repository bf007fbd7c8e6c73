"""Checkpoints: model name, config, weights and metadata, readable with ``torch.load(weights_only=True)``.

A checkpoint is a file anyone can edit, so :func:`load_checkpoint` proves every part before using it: the
format version, the model name, each config value against the type and bounds of the architecture's
constructor, the weights' names, shapes and finiteness, the metadata. Whatever is wrong, the result is one
:class:`CheckpointError` of one line naming the problem and the fix, never a traceback from deep inside
torch, and a config can never make the constructor allocate more than :data:`MAX_PARAMETERS` values.
"""

from __future__ import annotations

import inspect
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from capsnet_nncf_plugin.atomic_file import atomic_output
from capsnet_nncf_plugin.core.real_numbers import is_finite_number
from capsnet_nncf_plugin.errors import CheckpointError
from capsnet_nncf_plugin.models import registry
from capsnet_nncf_plugin.models.base import CapsuleClassifier

FORMAT = "capsnet_nncf_plugin.checkpoint"
VERSION = 1

#: The most values (parameters and buffers) a checkpoint's config may make a model allocate: 8x the
#: largest model of the zoo's set-ups (DeepCaps at 64x64 RGB), far below what a hostile config could ask.
MAX_PARAMETERS = 1 << 26

#: Inclusive bounds of the registered architectures' integer constructor arguments. The architectures
#: refuse what their layers cannot take (ShallowCaps needs 25x25 images); these refuse what no dataset
#: needs, so a damaged value fails here with its name instead of as an allocation failure.
CONFIG_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "in_channels": (1, 4),
    "image_size": (1, 256),
    "num_classes": (1, 1000),
    "routing_iterations": (1, 16),
    "pixel_shift": (0, 16),
}
#: Bounds of an integer argument not listed above.
_DEFAULT_INT_BOUNDS = (0, 1 << 16)

_RECREATE = "re-create it with `capsq train --out DIR` or restore the original file"
# Factory functions whose first argument(s) give the size of the tensor they allocate.
_SIZED_FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn, torch.full})


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode), its metadata and, if saved, the training state."""

    model: CapsuleClassifier
    metadata: dict[str, Any] = field(default_factory=dict)
    training_state: dict[str, Any] | None = None


def save_checkpoint(
    path: str | os.PathLike,
    model: CapsuleClassifier,
    metadata: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Writes ``model`` (its registry name, config and state dict) atomically."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.name,
        "config": dict(model.config),
        "state_dict": model.state_dict(),
        "metadata": dict(metadata or {}),
    }
    if training_state is not None:
        payload["training_state"] = training_state
    path = Path(path)
    with atomic_output(path) as pending:
        torch.save(payload, pending.stream)
    return path


def _malformed(path: Path, problem: str, fix: str = _RECREATE) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} is malformed: {problem}; {fix}")


def _describe(value: Any) -> str:
    text = repr(value) if isinstance(value, (bool, int, float, str, type(None))) else type(value).__name__
    return text if len(text) <= 60 else f"{text[:57]}..."


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Reads a checkpoint written by :func:`save_checkpoint` (tensors and plain data only).

    Raises:
        CheckpointError: the file is missing, a directory, unreadable, not a checkpoint, or any part of it
            is malformed (see the module docstring); the message names the problem and the fix.
    """
    path = Path(path)
    if path.is_dir():
        inside = [name for name in ("best.pt", "last.pt") if (path / name).is_file()]
        hint = f"pass {path / inside[0]}" if inside else "pass the .pt file `capsq train` wrote into it"
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file; {hint}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `capsq train --out DIR`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    # torch.load raises whatever its unpickler trips over (UnpicklingError, RuntimeError, EOFError...).
    except Exception as error:
        summary = " ".join(str(error).split())[:200]
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({summary}); it is truncated or not a checkpoint"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a capsnet_nncf_plugin checkpoint (no {FORMAT!r} marker)")
    _check_version(path, payload)
    metadata = _checked_metadata(path, payload)
    training_state = payload.get("training_state")
    if training_state is not None and not isinstance(training_state, dict):
        raise _malformed(path, f"'training_state' is {_describe(training_state)}, not a mapping")
    name, config = _checked_model_and_config(path, payload)
    state_dict = _checked_state_dict(path, payload)
    model = _build(path, name, config)
    _load_weights(path, model, state_dict)
    model.eval()
    return Checkpoint(model, metadata, training_state)


def _check_version(path: Path, payload: dict[str, Any]) -> None:
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _malformed(path, f"format version {_describe(version)} is not a positive integer")
    if version > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}; this plugin reads up to {VERSION}: "
            "upgrade capsnet-nncf-plugin"
        )


def _checked_metadata(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    metadata = payload.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(key, str) for key in metadata):
        raise _malformed(path, f"'metadata' is {_describe(metadata)}, not a mapping with string keys")
    dataset = metadata.get("dataset")
    # Only its type: a model trained on the caller's own data records that data's name (train(...,
    # dataset="synthetic")); commands that look the name up report an unknown one themselves.
    if dataset is not None and (not isinstance(dataset, str) or not dataset.strip()):
        raise _malformed(path, f"metadata 'dataset' is {_describe(dataset)}, not a dataset name")
    return dict(metadata)


def _checked_model_and_config(path: Path, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = payload.get("model")
    known = registry.available_models()
    if not isinstance(name, str) or name.lower() not in known:
        raise _malformed(path, f"'model' is {_describe(name)}, not one of {known}")
    if "config" not in payload:
        raise _malformed(path, "it has no 'config'")
    config = payload["config"]
    if not isinstance(config, dict):
        raise _malformed(path, f"'config' is {_describe(config)}, not a mapping of constructor arguments")
    types = _constructor_types(name.lower())
    return name.lower(), {
        key: _checked_config_value(path, name.lower(), types, key, config) for key in config
    }


def _constructor_types(name: str) -> dict[str, Any]:
    architecture = registry._ARCHITECTURES[name]  # the registry lists the classes it builds
    parameters = inspect.signature(architecture.__init__).parameters
    hints = typing.get_type_hints(architecture.__init__)
    return {key: hints.get(key, Any) for key in parameters if key != "self"}


def _checked_config_value(
    path: Path, name: str, types: dict[str, Any], key: Any, config: dict[Any, Any]
) -> Any:
    if not isinstance(key, str) or key not in types:
        raise _malformed(path, f"config key {_describe(key)} is not an argument of {name}: {sorted(types)}")
    value, expected = config[key], types[key]
    if expected is bool and not isinstance(value, bool):
        raise _malformed(path, f"config '{key}' is {_describe(value)}, not true/false")
    if expected is int:
        low, high = CONFIG_INT_BOUNDS.get(key, _DEFAULT_INT_BOUNDS)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _malformed(path, f"config '{key}' is {_describe(value)}, not an integer in {low}..{high}")
    if expected is float and not is_finite_number(value):
        raise _malformed(path, f"config '{key}' is {_describe(value)}, not a finite number")
    if expected is str and not isinstance(value, str):
        raise _malformed(path, f"config '{key}' is {_describe(value)}, not a string")
    return value


def _checked_state_dict(path: Path, payload: dict[str, Any]) -> Mapping[str, torch.Tensor]:
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, Mapping):
        raise _malformed(path, f"'state_dict' is {_describe(state_dict)}, not a mapping of weights")
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise _malformed(path, f"'state_dict' entry {_describe(key)} is {_describe(value)}, not a tensor")
    total = sum(value.numel() for value in state_dict.values())
    if total > MAX_PARAMETERS:
        raise _malformed(path, f"its weights hold {total:,} values, more than the {MAX_PARAMETERS:,} allowed")
    return state_dict


class _AllocationBudget(TorchFunctionMode):
    """Refuses, before allocating, any tensor that would take the total past ``limit`` values."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.total = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _SIZED_FACTORIES:
            self.total += _requested_values(func, args, kwargs)
            if self.total > self.limit:
                raise _TooLargeError(self.total)
        return func(*args, **kwargs)


def _requested_values(func: Any, args: tuple, kwargs: dict) -> int:
    """How many values a factory call asks for: ``f(*size)``, ``f(size)``, ``f(size=...)``."""
    if "size" in kwargs:
        size = kwargs["size"]
    elif func is torch.full or (args and not isinstance(args[0], int)):
        size = args[0] if args else ()
    else:
        size = args
    try:
        return math.prod(int(extent) for extent in size)
    except (TypeError, ValueError):
        return 0  # a call this parser does not understand is left to torch


class _TooLargeError(Exception):
    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.total = total


def _build(path: Path, name: str, config: dict[str, Any]) -> CapsuleClassifier:
    try:
        with _AllocationBudget(MAX_PARAMETERS):
            return registry.create(name, **config)
    except _TooLargeError as error:
        raise _malformed(
            path,
            f"its config describes a model of over {error.total:,} values, beyond the "
            f"{MAX_PARAMETERS:,} allowed",
        ) from None
    # The constructors refuse what their layers cannot take with ValueError (create turns TypeError into
    # it); a RuntimeError from torch for a value within the bounds above means the same.
    except (ValueError, RuntimeError) as error:
        raise _malformed(path, f"it describes a model this plugin cannot build: {error}") from None


def _load_weights(path: Path, model: CapsuleClassifier, state_dict: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    reshaped = [key for key in expected if key in state_dict and state_dict[key].shape != expected[key].shape]
    problems = []
    if missing:
        problems.append(f"missing weights {missing[:3]}{' ...' if len(missing) > 3 else ''}")
    if unexpected:
        problems.append(f"unexpected weights {unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}")
    for key in reshaped[:3]:
        problems.append(f"{key} is {list(state_dict[key].shape)}, expected {list(expected[key].shape)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not match its model config: {'; '.join(problems)}; {_RECREATE}"
        )
    for key, value in state_dict.items():
        if value.is_complex() or (value.is_floating_point() and not torch.isfinite(value).all()):
            raise _malformed(path, f"weight {key} holds complex, NaN or infinite values")
    try:
        model.load_state_dict(state_dict)
    # Whatever copying a well-shaped tensor still refuses (a sparse or quantized layout): one line.
    except (RuntimeError, TypeError, ValueError) as error:
        raise _malformed(
            path, f"its weights cannot be loaded ({' '.join(str(error).split())[:200]})"
        ) from None
