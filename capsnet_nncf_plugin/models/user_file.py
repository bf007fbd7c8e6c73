"""A model from a user's own Python file: ``path/to/file.py:factory`` and, optionally, a state dict.

The factory is the user's code, which the user chose to run (as ``python file.py`` would); the weights are
read with ``torch.load(weights_only=True)``, so a weights file cannot run code. The model is returned as
written: ``capture`` rebuilds it from the plugin's modules before it is quantized.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import torch

from capsnet_nncf_plugin.errors import CheckpointError

#: What separates the file from the factory's name in a model reference.
SEPARATOR = ":"


def is_model_file(reference: str | os.PathLike) -> bool:
    """Whether ``reference`` names a model in a Python file (``file.py:factory``)."""
    path, _, factory = str(reference).rpartition(SEPARATOR)
    return path.endswith(".py") and bool(factory)


def load_model_file(reference: str, weights: str | os.PathLike | None = None) -> torch.nn.Module:
    """``factory()`` of ``file.py:factory``, with ``weights`` (a state dict, or a dict holding one under
    ``state_dict``) loaded strictly, in eval mode."""
    path_text, _, factory_name = str(reference).rpartition(SEPARATOR)
    path = Path(path_text)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist; pass --model path/to/file.py:factory")
    if not factory_name.isidentifier():
        raise CheckpointError(f"{factory_name!r} is not a Python name; pass --model {path}:function_name")
    name = f"capsq_user_model_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's own file: report it in one line with what failed
        sys.modules.pop(name, None)
        raise CheckpointError(
            f"running {path} failed ({type(error).__name__}: {error}); fix the file"
        ) from error
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        found = sorted(n for n in vars(module) if callable(vars(module)[n]) and not n.startswith("_"))
        raise CheckpointError(
            f"{path} has no function {factory_name!r}; it defines {', '.join(found) or 'none'}"
        )
    try:
        model = factory()
    except Exception as error:
        raise CheckpointError(f"{path}:{factory_name}() failed ({type(error).__name__}: {error})") from error
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(
            f"{path}:{factory_name}() returned {type(model).__name__}, not a torch.nn.Module"
        )
    if weights is not None:
        _load_weights(model, Path(weights))
    return model.float().eval()


def _load_weights(model: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist; pass the state dict saved from the model")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path} is not a weights-only torch file ({type(error).__name__})") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise CheckpointError(f"{path} holds no state dict (a mapping of names to tensors)")
    try:
        model.load_state_dict({key: value.float() for key, value in state.items()})
    except RuntimeError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} does not fit {type(model).__name__}: {first}") from None
