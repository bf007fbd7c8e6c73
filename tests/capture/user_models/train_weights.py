"""Train the user-model zoo briefly on MNIST and write the float16 weights shipped in ``weights/``.

Run from the repository root (MNIST must be fetched: ``capsq data fetch mnist``)::

    .venv/bin/python tests/capture/user_models/train_weights.py [--style NAME] [--epochs N]

Adam (lr 1e-3), margin loss (m+ 0.9, m- 0.1, lambda 0.5), no decoder, batch 128, a fixed seed per style,
on the 55,000-image training split; the test accuracy is measured on the full 10,000-image test set with
the weights as shipped (rounded to float16). Each weights file is written atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make ``capture.user_models`` importable from tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from capture.user_models import ALL_STYLES, WEIGHTS_DIR, build, load_trained, weights_path
else:
    from . import ALL_STYLES, WEIGHTS_DIR, build, load_trained, weights_path

#: Epochs each style is trained for unless --epochs says otherwise. The input-softmax routing learns more
#: slowly (97.5 % after 2 epochs), so it gets a third.
DEFAULT_EPOCHS = 2
EPOCHS = {"input_softmax": 3}


def margin_loss(lengths: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    target = torch.nn.functional.one_hot(labels, lengths.size(1)).to(lengths.dtype)
    present = target * torch.relu(0.9 - lengths) ** 2
    absent = 0.5 * (1 - target) * torch.relu(lengths - 0.1) ** 2
    return (present + absent).sum(dim=1).mean()


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch):
        lengths = model(images[start : start + batch].float())
        correct += int((lengths.argmax(dim=1) == labels[start : start + batch]).sum())
    return correct / len(labels)


def save_float16(model: torch.nn.Module, destination: Path) -> None:
    """Write ``model``'s state dict as float16 to ``destination`` atomically (temp file + os.replace)."""
    state = {
        name: tensor.detach().to(torch.float16).contiguous() for name, tensor in model.state_dict().items()
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def train_style(style: str, train, test, epochs: int, batch_size: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build(style)
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    shuffle = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train.labels), generator=shuffle)
        total_loss, correct, seen = 0.0, 0, 0
        epoch_started = time.perf_counter()
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            images, labels = train.images[index].float(), train.labels[index]
            lengths = model(images)
            loss = margin_loss(lengths, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += int((lengths.argmax(dim=1) == labels).sum())
            seen += len(labels)
        print(
            f"[{style}] epoch {epoch}/{epochs}: loss {total_loss / seen:.4f}, train accuracy "
            f"{100 * correct / seen:.2f} %, {time.perf_counter() - epoch_started:.0f} s",
            flush=True,
        )
    seconds = time.perf_counter() - started
    save_float16(model, weights_path(style))
    shipped = load_trained(style)  # evaluate exactly what is shipped: float16 weights cast back
    test_accuracy = accuracy(shipped, test.images, test.labels)
    size_kb = weights_path(style).stat().st_size / 1024
    print(
        f"[{style}] test accuracy {100 * test_accuracy:.2f} %, wrote {weights_path(style)} ({size_kb:.0f} kB)"
    )
    return {
        "style": style,
        "parameters": parameters,
        "epochs": epochs,
        "seconds": seconds,
        "accuracy": test_accuracy,
        "kb": size_kb,
    }


def print_table(rows: list[dict]) -> None:
    columns = ("style", "parameters", "epochs", "seconds", "test accuracy", "kB")
    cells = [
        (
            row["style"],
            f"{row['parameters']:,}",
            str(row["epochs"]),
            f"{row['seconds']:.0f}",
            f"{100 * row['accuracy']:.2f} %",
            f"{row['kb']:.0f}",
        )
        for row in rows
    ]
    widths = [max(len(text) for text in column) for column in zip(columns, *cells, strict=True)]
    print("| " + " | ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for line in cells:
        print(
            "| "
            + " | ".join(
                text.ljust(width) if i == 0 else text.rjust(width)
                for i, (text, width) in enumerate(zip(line, widths, strict=True))
            )
            + " |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--style", action="append", choices=list(ALL_STYLES), help="train only this style (repeatable)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help=f"epochs for every style (default: {DEFAULT_EPOCHS}, or the style's count in EPOCHS {EPOCHS})",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    from capsnet_nncf_plugin.data import load_dataset

    train = load_dataset("mnist", "train")
    test = load_dataset("mnist", "test")
    print(
        f"MNIST: {len(train)} training and {len(test)} test images; weights go to {WEIGHTS_DIR}", flush=True
    )
    rows = [
        train_style(
            style, train, test, args.epochs or EPOCHS.get(style, DEFAULT_EPOCHS), args.batch_size, args.seed
        )
        for style in args.style or ALL_STYLES
    ]
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
