"""Checkpoints: model name, config, weights and metadata, readable with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from capsnet_nncf_plugin.atomic_file import atomic_output
from capsnet_nncf_plugin.errors import CheckpointError
from capsnet_nncf_plugin.models.base import CapsuleClassifier
from capsnet_nncf_plugin.models.registry import create

FORMAT = "capsnet_nncf_plugin.checkpoint"
VERSION = 1


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


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Reads a checkpoint written by :func:`save_checkpoint` (tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `capsq train --out DIR`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({error}); it is truncated or not a checkpoint"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a capsnet_nncf_plugin checkpoint (no {FORMAT!r} marker)")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {payload['version']}; this plugin reads up to {VERSION}: "
            "upgrade capsnet-nncf-plugin"
        )
    config = dict(payload["config"])
    try:
        model = create(payload["model"], **config)
    except ValueError as error:
        raise CheckpointError(
            f"checkpoint {path} describes a model this plugin cannot build: {error}"
        ) from error
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {path} does not match its model config: {error}") from error
    model.eval()
    return Checkpoint(model, dict(payload.get("metadata", {})), payload.get("training_state"))
