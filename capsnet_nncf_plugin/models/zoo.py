"""The model zoo: trained FP32 baselines shipped inside the package, with a manifest and checksums.

Weights are stored as float16 (without decoder or optimizer state) to stay small; ``load_pretrained``
builds the float32 model from them, and that float32 model is the baseline all accuracies are measured on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.errors import CheckpointError
from capsnet_nncf_plugin.models.base import CapsuleClassifier
from capsnet_nncf_plugin.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

#: Folder of the shipped weights and their manifest, inside the installed package.
ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
MANIFEST = "manifest.json"
#: The prefix that names a zoo model wherever a checkpoint path is accepted (``zoo:shallowcaps-mnist``).
ZOO_PREFIX = "zoo:"


@dataclass
class ZooEntry:
    """One shipped model: where its weights are, what it is, how it was trained and how well it does."""

    name: str
    file: str
    sha256: str
    model: str
    config: dict[str, Any]
    dataset: str
    test_accuracy: float
    val_accuracy: float
    storage_dtype: str = "float16"
    training: dict[str, Any] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(zoo_dir: Path = ZOO_DIR) -> dict[str, ZooEntry]:
    """The manifest's entries by name (empty if the zoo has none)."""
    path = zoo_dir / MANIFEST
    if not path.exists():
        return {}
    entries = json.loads(path.read_text())["models"]
    return {entry["name"]: ZooEntry(**entry) for entry in entries}


def available_pretrained(zoo_dir: Path = ZOO_DIR) -> list[str]:
    """Names accepted by :func:`load_pretrained`."""
    return sorted(read_manifest(zoo_dir))


def load_pretrained(name: str, zoo_dir: Path = ZOO_DIR) -> CapsuleClassifier:
    """The FP32 model ``name`` (e.g. ``"shallowcaps-mnist"``) in eval mode, after verifying its checksum."""
    return _open_zoo_checkpoint(name.removeprefix(ZOO_PREFIX), zoo_dir).model


def open_checkpoint(reference: str | os.PathLike) -> Checkpoint:
    """A float32 eval-mode model and its metadata from ``zoo:NAME`` or from a checkpoint path."""
    text = str(reference)
    if text.startswith(ZOO_PREFIX):
        return _open_zoo_checkpoint(text.removeprefix(ZOO_PREFIX), ZOO_DIR)
    checkpoint = load_checkpoint(text)
    checkpoint.model.float().eval()
    return checkpoint


def _open_zoo_checkpoint(name: str, zoo_dir: Path) -> Checkpoint:
    manifest = read_manifest(zoo_dir)
    if name not in manifest:
        known = ", ".join(sorted(manifest)) or "none yet"
        raise CheckpointError(f"no zoo model named {name!r}; available: {known} (see `capsq zoo list`)")
    entry = manifest[name]
    path = zoo_dir / entry.file
    if not path.is_file():
        raise CheckpointError(f"zoo file {path} for {name!r} is missing; reinstall capsnet-nncf-plugin")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise CheckpointError(
            f"zoo file {path} is corrupted: sha256 {actual} does not match the manifest's {entry.sha256}; "
            "reinstall capsnet-nncf-plugin"
        )
    checkpoint = load_checkpoint(path)
    checkpoint.model.float().eval()
    checkpoint.metadata.setdefault("dataset", entry.dataset)
    return checkpoint


def add_to_zoo(
    checkpoint_path: str | os.PathLike,
    name: str,
    training: dict[str, Any],
    zoo_dir: Path = ZOO_DIR,
    progress: bool = True,
    test_set: Any = None,
) -> ZooEntry:
    """Stores a trained checkpoint in the zoo as float16 weights without decoder, and records it.

    The manifest's test accuracy is measured here, on the full test set, with the float32 model built
    from the stored file: exactly what ``load_pretrained`` gives users. ``test_set`` replaces the
    checkpoint dataset's official test split (for tests of this function).
    """
    from capsnet_nncf_plugin.data import load_dataset
    from capsnet_nncf_plugin.evaluation import evaluate_accuracy

    checkpoint = load_checkpoint(checkpoint_path)
    dataset = checkpoint.metadata.get("dataset")
    if not dataset:
        raise CheckpointError(
            f"{checkpoint_path} does not record its dataset; it was not written by capsq train"
        )
    model = checkpoint.model.without_decoder()
    zoo_dir.mkdir(parents=True, exist_ok=True)
    weights = zoo_dir / f"{name}.pt"
    # All floating-point tensors go to float16: half the size, within 20 MB per model.
    save_checkpoint(weights, model.half(), {"dataset": dataset})
    stored = load_checkpoint(weights).model.float().eval()
    test_accuracy = evaluate_accuracy(
        stored, test_set or load_dataset(dataset, "test"), progress=progress, description=f"{name} test"
    )
    entry = ZooEntry(
        name=name,
        file=weights.name,
        sha256=sha256_of(weights),
        model=model.name,
        config=dict(model.config),
        dataset=dataset,
        test_accuracy=round(test_accuracy, 4),
        val_accuracy=round(float(checkpoint.metadata.get("val_accuracy", float("nan"))), 4),
        training=training,
    )
    manifest = read_manifest(zoo_dir)
    manifest[name] = entry
    _write_manifest(zoo_dir, manifest)
    return entry


def _write_manifest(zoo_dir: Path, manifest: dict[str, ZooEntry]) -> None:
    payload = {"models": [asdict(manifest[key]) for key in sorted(manifest)]}
    write_text_atomically(zoo_dir / MANIFEST, json.dumps(payload, indent=2) + "\n")
