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
from capsnet_nncf_plugin.data import ImageDataset, get_spec, load_dataset
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.models import CapsuleClassifier, create, load_checkpoint, save_checkpoint
from capsnet_nncf_plugin.training.augmentation import Augmentation
from capsnet_nncf_plugin.training.curves import CURVES, plot_training_curves
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
    # Steps between mid-epoch saves of last.pt: an interrupted run loses at most this many steps.
    checkpoint_every: int = 50
    # A checkpoint whose weights start the run (fine-tuning with a fresh optimizer and learning-rate
    # schedule); unlike resume, which continues a run's own schedule where it stopped.
    init_from: str | None = None
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


def _same_dataset(saved: str | None, wanted: str) -> bool:
    """Whether two dataset names mean the same data, so ``--dataset fmnist`` resumes a fashion-mnist run."""
    if saved is None:
        return False
    try:
        return get_spec(saved).name == get_spec(wanted).name
    except ValueError:  # a caller-supplied dataset (``train_set=``) has no spec: names must match
        return saved == wanted


def _load_initial_weights(model: CapsuleClassifier, source: str) -> None:
    start = load_checkpoint(source).model.state_dict()
    own = model.state_dict()
    mismatched = sorted(
        key
        for key in own.keys() | start.keys()
        if key not in start or key not in own or own[key].shape != start[key].shape
    )
    if mismatched:
        raise ValueError(
            f"--init-from {source} holds another architecture than this run builds (first differing "
            f"tensors: {', '.join(mismatched[:3])}); pass the same --model, --dataset and model options "
            "it was trained with"
        )
    model.load_state_dict(start)
    logger.info("starting from the weights of %s", source)


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
    ``best.pt``; ``last.pt`` is also refreshed every ``config.checkpoint_every`` steps, so with
    ``resume=True`` training continues from ``last.pt`` in ``out_dir`` at the step where it stopped.
    """
    if config.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {config.epochs}")
    if config.batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {config.batch_size}")
    if config.checkpoint_every < 0:
        raise ValueError(
            f"checkpoint_every must be >= 0 (0 = only at epoch ends), got {config.checkpoint_every}"
        )
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
    partial_epoch: dict[str, Any] | None = None

    last_path, best_path = out_dir / LAST_CHECKPOINT, out_dir / BEST_CHECKPOINT
    if resume and last_path.exists():
        checkpoint = load_checkpoint(last_path)
        state = checkpoint.training_state or {}
        if not state:
            raise ValueError(f"{last_path} holds no training state to resume from")
        if state.get("config", {}).get("model") != config.model or not _same_dataset(
            state["config"].get("dataset"), config.dataset
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
        partial_epoch = state.get("partial_epoch")
        done = f" step {partial_epoch['step']}" if partial_epoch else ""
        logger.info("resuming %s after epoch %d%s (best val %.2f%%)", out_dir, start_epoch, done, best_val)
    elif resume:
        logger.info("no %s yet: starting a new run", last_path)
    if config.init_from and not history and partial_epoch is None:
        _load_initial_weights(model, config.init_from)

    augmentation = Augmentation.for_dataset(train_set.name) if config.augment else Augmentation()
    images, labels = train_set.images, train_set.labels
    steps_per_epoch = (len(train_set) + config.batch_size - 1) // config.batch_size

    def training_state(epochs_done: int, partial: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "config": asdict(config),
            "epoch": epochs_done,
            "partial_epoch": partial,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": history,
            "best_val_accuracy": best_val,
        }

    for epoch in range(start_epoch, config.epochs):
        model.train()
        started = time.perf_counter()
        if partial_epoch is not None:
            # The epoch's shuffle was drawn before the interruption; the generator state saved with it
            # continues the augmentation stream, so the resumed run sees exactly the same batches.
            order = partial_epoch["order"]
            first_step = int(partial_epoch["step"])
            total_loss, correct, seen = (
                partial_epoch["loss_sum"],
                partial_epoch["correct"],
                partial_epoch["seen"],
            )
            started -= partial_epoch["seconds"]
            partial_epoch = None
        else:
            order = torch.randperm(len(train_set), generator=generator)
            first_step, total_loss, correct, seen = 0, 0.0, 0, 0
        bar = tqdm(
            range(first_step, steps_per_epoch),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            initial=first_step,
            total=steps_per_epoch,
            disable=not progress,
        )
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
            steps_done = step + 1
            if (
                config.checkpoint_every
                and steps_done % config.checkpoint_every == 0
                and steps_done < steps_per_epoch
            ):
                partial = {
                    "step": steps_done,
                    "order": order,
                    "loss_sum": total_loss,
                    "correct": correct,
                    "seen": seen,
                    "seconds": time.perf_counter() - started,
                }
                save_checkpoint(
                    last_path,
                    model,
                    {"dataset": config.dataset, "epoch": epoch, "train_config": asdict(config)},
                    training_state(epoch, partial),
                )
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
        save_checkpoint(last_path, model, metadata, training_state(epoch + 1, None))
        write_text_atomically(out_dir / HISTORY, json.dumps(history, indent=2))
        plot_training_curves(out_dir / CURVES, history, title=f"{config.model} on {config.dataset}")
    return TrainResult(best_path, last_path, best_val, history)
