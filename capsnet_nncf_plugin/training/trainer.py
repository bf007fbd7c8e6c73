"""Training loop for capsule classifiers: margin (+ reconstruction) loss, Adam with exponential decay."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.data import ImageDataset, load_dataset
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.models import CapsuleClassifier, create, load_checkpoint, save_checkpoint
from capsnet_nncf_plugin.training.augmentation import Augmentation
from capsnet_nncf_plugin.training.losses import margin_loss, reconstruction_loss

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
HISTORY = "history.json"


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in every checkpoint so ``--resume`` continues it."""

    model: str = "shallowcaps"
    dataset: str = "mnist"
    out_dir: str = "runs/shallowcaps-mnist"
    epochs: int = 10
    batch_size: int = 100
    learning_rate: float = 1e-3
    lr_decay: float = 0.96
    reconstruction_weight: float = 0.0005
    augment: bool = True
    seed: int = 0
    device: str = "cpu"
    data_root: str | None = None
    train_subset: int | None = None
    val_subset: int | None = None
    model_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    best_checkpoint: Path
    last_checkpoint: Path
    best_val_accuracy: float
    history: list[dict[str, Any]]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def build_model(
    config: TrainConfig, in_channels: int, image_size: int, num_classes: int
) -> CapsuleClassifier:
    options = dict(config.model_options)
    options.setdefault("decoder", config.reconstruction_weight > 0)
    return create(
        config.model, in_channels=in_channels, image_size=image_size, num_classes=num_classes, **options
    )


def train(
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    train_set: ImageDataset | None = None,
    val_set: ImageDataset | None = None,
) -> TrainResult:
    """Trains ``config.model`` on ``config.dataset``'s train split, validating on its val split each epoch.

    ``train_set``/``val_set`` replace the named dataset's splits (any :class:`ImageDataset`). Each epoch
    ends with an atomic ``last.pt`` (with optimizer and RNG state) and, when validation improves,
    ``best.pt``; with ``resume=True`` training continues from ``last.pt`` in ``out_dir``.
    """
    if config.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {config.epochs}")
    if config.batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {config.batch_size}")
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    train_set = train_set or load_dataset(config.dataset, "train", root=config.data_root)
    val_set = val_set or load_dataset(config.dataset, "val", root=config.data_root)
    if config.train_subset:
        train_set = train_set.subset(config.train_subset)
    if config.val_subset:
        val_set = val_set.subset(config.val_subset)
    _, channels, image_size, _ = train_set.images.shape
    _seed_everything(config.seed)
    model = build_model(config, channels, image_size, train_set.num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    best_val = -1.0
    start_epoch = 0

    last_path, best_path = out_dir / LAST_CHECKPOINT, out_dir / BEST_CHECKPOINT
    if resume and last_path.exists():
        checkpoint = load_checkpoint(last_path)
        state = checkpoint.training_state or {}
        if not state:
            raise ValueError(f"{last_path} holds no training state to resume from")
        if (
            state.get("config", {}).get("model") != config.model
            or state["config"].get("dataset") != config.dataset
        ):
            raise ValueError(
                f"{last_path} belongs to a different run ({state['config'].get('model')} on "
                f"{state['config'].get('dataset')}); pick another --out or drop --resume"
            )
        model.load_state_dict(checkpoint.model.state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = list(state["history"])
        best_val = float(state["best_val_accuracy"])
        start_epoch = int(state["epoch"])
        logger.info("resuming %s from epoch %d (best val %.2f%%)", out_dir, start_epoch, best_val)
    elif resume:
        logger.info("no %s yet: starting a new run", last_path)

    augmentation = Augmentation.for_dataset(train_set.name) if config.augment else Augmentation()
    images, labels = train_set.images, train_set.labels
    steps_per_epoch = (len(train_set) + config.batch_size - 1) // config.batch_size

    for epoch in range(start_epoch, config.epochs):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(train_set), generator=generator)
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress)
        for step in bar:
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            batch = augmentation(images[index], generator).to(device=device, dtype=torch.float32)
            targets = labels[index].to(device)
            capsules = model.class_capsules(batch)
            lengths = model.length(capsules)
            loss = margin_loss(lengths, targets)
            if config.reconstruction_weight > 0 and model.decoder is not None:
                target_pixels = model.pixel_scale(batch)
                loss = loss + config.reconstruction_weight * reconstruction_loss(
                    model.reconstruct(capsules, targets), target_pixels
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(index)
            correct += int((lengths.argmax(dim=1) == targets).sum())
            seen += len(index)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{100.0 * correct / seen:.2f}%")
        bar.close()
        scheduler.step()
        val_accuracy = evaluate_accuracy(model, val_set, progress=progress, description="val")
        record = {
            "epoch": epoch + 1,
            "train_loss": total_loss / seen,
            "train_accuracy": 100.0 * correct / seen,
            "val_accuracy": val_accuracy,
            "learning_rate": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        }
        history.append(record)
        logger.info(
            "epoch %d/%d: loss %.4f, train %.2f%%, val %.2f%% (%.0f s)",
            epoch + 1,
            config.epochs,
            record["train_loss"],
            record["train_accuracy"],
            val_accuracy,
            record["seconds"],
        )
        metadata = {
            "dataset": config.dataset,
            "epoch": epoch + 1,
            "val_accuracy": val_accuracy,
            "train_config": asdict(config),
        }
        if val_accuracy > best_val:
            best_val = val_accuracy
            save_checkpoint(best_path, model, metadata)
        training_state = {
            "config": asdict(config),
            "epoch": epoch + 1,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": history,
            "best_val_accuracy": best_val,
        }
        save_checkpoint(last_path, model, metadata, training_state)
        write_text_atomically(out_dir / HISTORY, json.dumps(history, indent=2))
    return TrainResult(best_path, last_path, best_val, history)
