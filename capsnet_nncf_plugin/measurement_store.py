"""Measurements kept on disk, each under the fingerprint of everything it depends on
(:mod:`capsnet_nncf_plugin.fingerprint`), so that a rerun reads what it would measure again.

A fingerprint names the file, so a changed model, image or setting is another file and never a stale
answer; a damaged or foreign file is measured over with a warning. Files are written atomically: an
interrupted run leaves the old one or none. ``FOLDER/KIND/FINGERPRINT.json`` (or ``.pt`` for tensors,
loaded with ``weights_only=True``: a file of the folder cannot run code).
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from capsnet_nncf_plugin.atomic_file import write_bytes_atomically, write_text_atomically

logger = logging.getLogger(__name__)


class MeasurementStore:
    """The folder of kept measurements, by kind (``fp32-test``, ``fp32-validation``, ...)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, kind: str, fingerprint: str, suffix: str = ".json") -> Path:
        return self.folder / kind / f"{fingerprint}{suffix}"

    def read_json(self, kind: str, fingerprint: str) -> dict[str, Any] | None:
        """The document kept under ``fingerprint``; None when there is none or it cannot be read."""
        path = self.path(kind, fingerprint)
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            logger.warning("ignoring the kept measurement %s (%s); measuring afresh", path, error)
            return None
        if not isinstance(document, dict):
            logger.warning("ignoring the kept measurement %s (not an object); measuring afresh", path)
            return None
        return document

    def write_json(self, kind: str, fingerprint: str, document: dict[str, Any]) -> None:
        """Keep ``document``; a folder that cannot be written costs the next run the measurement, nothing
        else (a warning)."""
        path = self.path(kind, fingerprint)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomically(path, json.dumps(document) + "\n")
        except OSError as error:
            logger.warning("could not keep the measurement in %s (%s)", path, error)

    def read_tensors(self, kind: str, fingerprint: str) -> dict[str, torch.Tensor] | None:
        """The tensors kept under ``fingerprint``; None when there are none or they cannot be read."""
        path = self.path(kind, fingerprint, ".pt")
        if not path.exists():
            return None
        try:
            tensors = torch.load(path, weights_only=True)
        except Exception as error:  # torch.load raises many types on a damaged file; all mean "measure"
            logger.warning("ignoring the kept measurement %s (%s); measuring afresh", path, error)
            return None
        if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
            logger.warning("ignoring the kept measurement %s (not named tensors); measuring afresh", path)
            return None
        return tensors

    def write_tensors(self, kind: str, fingerprint: str, tensors: dict[str, torch.Tensor]) -> None:
        """Keep ``tensors`` (as :meth:`write_json` keeps a document)."""
        path = self.path(kind, fingerprint, ".pt")
        content = io.BytesIO()
        torch.save(tensors, content)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(path, content.getvalue())
        except OSError as error:
            logger.warning("could not keep the measurement in %s (%s)", path, error)
