"""``capsq zoo``: the shipped FP32 baselines."""

from __future__ import annotations

import argparse
import json

from capsnet_nncf_plugin.cli.arguments import non_negative_float
from capsnet_nncf_plugin.models import add_to_zoo, read_manifest
from capsnet_nncf_plugin.models.zoo import ZOO_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "zoo",
        help="list the pretrained models shipped with the package",
        description="The model zoo: trained FP32 ShallowCaps/DeepCaps baselines inside the package. "
        "Use them anywhere a checkpoint is accepted as zoo:NAME.",
    )
    commands = parser.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)
    listing = commands.add_parser(
        "list", help="print the manifest as a table", description="Print every zoo model's manifest entry."
    )
    listing.add_argument("--json", action="store_true", help="print the manifest as JSON")
    listing.set_defaults(func=run_list)

    add = commands.add_parser(
        "add",
        help="(maintainers) store a trained checkpoint in the zoo",
        description="Store a checkpoint's weights as float16 without decoder in the package's zoo folder, "
        "measure the stored model's full-test-set accuracy and record it in the manifest.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add.add_argument("--checkpoint", required=True, help="best.pt of a `capsq train` run")
    add.add_argument("--name", required=True, help="zoo name, e.g. shallowcaps-mnist")
    add.add_argument("--command", required=True, help="the exact training command")
    add.add_argument(
        "--wall-time", type=non_negative_float, required=True, help="training wall time in seconds"
    )
    add.add_argument("--hardware", default="2 CPU cores", help="what it was trained on")
    add.set_defaults(func=run_add)


def run_list(args: argparse.Namespace) -> int:
    manifest = read_manifest()
    if args.json:
        print(json.dumps({name: vars(entry) for name, entry in manifest.items()}, indent=2))
        return 0
    if not manifest:
        print(f"the zoo is empty ({ZOO_DIR})")
        return 0
    header = ("name", "model", "dataset", "input", "test acc %", "val acc %", "epochs", "size MB", "sha256")
    rows = []
    for entry in manifest.values():
        config = entry.config
        size_mb = (
            (ZOO_DIR / entry.file).stat().st_size / 1e6 if (ZOO_DIR / entry.file).exists() else float("nan")
        )
        rows.append(
            (
                entry.name,
                entry.model,
                entry.dataset,
                f"{config['in_channels']}x{config['image_size']}x{config['image_size']}",
                f"{entry.test_accuracy:.2f}",
                f"{entry.val_accuracy:.2f}",
                str(entry.training.get("epochs", "?")),
                f"{size_mb:.1f}",
                entry.sha256[:12],
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


def run_add(args: argparse.Namespace) -> int:
    from capsnet_nncf_plugin.models import load_checkpoint

    metadata = load_checkpoint(args.checkpoint).metadata
    training = {
        "command": args.command,
        "epochs": metadata.get("epoch"),
        "seed": metadata.get("train_config", {}).get("seed"),
        "wall_time_s": args.wall_time,
        "hardware": args.hardware,
    }
    entry = add_to_zoo(args.checkpoint, args.name, training)
    print(f"{entry.name}: test accuracy {entry.test_accuracy:.2f}% (stored float16 file {entry.file})")
    return 0
