"""A zoo of small CapsNets written the way public users write them (plain torch), trained on MNIST.

The models exercise the capture feature: ``torch.export`` them, recognise the capsule patterns (squash, vote
transform, dynamic routing, primary capsules, capsule length) and rebuild them from the plugin's modules.
Each module's docstring lists the variants it uses; ``README.md`` has the matrix and the training table.

All models take raw MNIST pixels (float 0..255, ``[N, 1, 28, 28]``) and return the 10 class-capsule
lengths ``[N, 10]`` (prediction = argmax). The shipped weights (``weights/<style>.pt``) are float16 state
dicts written by ``train_weights.py``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Styles whose routing the capture supports: style name -> "module:factory".
STYLES: dict[str, str] = {
    "einsum": "einsum_caps:factory",
    "matmul5d": "matmul5d_caps:factory",
    "bmm": "bmm_caps:factory",
    "multiconv_primary": "multiconv_primary_caps:factory",
    "linear_votes": "linear_votes_caps:factory",
    "handwritten_softmax": "handwritten_softmax_caps:factory",
    "one_iteration": "one_iteration_caps:factory",
}

#: Styles using a routing variant the capture must leave in float (with a warning).
UNSUPPORTED_STYLES: dict[str, str] = {
    "input_softmax": "input_softmax_caps:factory",
}

#: Every style, supported first.
ALL_STYLES: dict[str, str] = {**STYLES, **UNSUPPORTED_STYLES}


def _spec(style: str) -> str:
    try:
        return ALL_STYLES[style]
    except KeyError:
        raise KeyError(f"unknown user-model style {style!r}; known: {', '.join(ALL_STYLES)}") from None


def build(style: str) -> nn.Module:
    """A fresh, untrained instance of ``style`` (the module's ``factory()``)."""
    module_name, factory_name = _spec(style).split(":")
    module = importlib.import_module(f".{module_name}", __name__)
    return getattr(module, factory_name)()


def weights_path(style: str) -> Path:
    """Where the shipped float16 state dict of ``style`` lies."""
    _spec(style)
    return WEIGHTS_DIR / f"{style}.pt"


def load_trained(style: str) -> nn.Module:
    """``style`` with its shipped weights (float16 on disk, cast back to float32), in eval mode."""
    model = build(style)
    state = torch.load(weights_path(style), map_location="cpu", weights_only=True)
    model.load_state_dict({name: tensor.float() for name, tensor in state.items()})
    return model.eval()
