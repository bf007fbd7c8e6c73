"""``capsq eval``: accuracy of a checkpoint on a dataset split."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from capsnet_nncf_plugin.cli.arguments import positive_int
from capsnet_nncf_plugin.data import DatasetSpec, get_spec, load_dataset
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.models import open_checkpoint


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint's accuracy",
        description="Print the top-1 accuracy (percent) of a checkpoint on a dataset split.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model",
        "--checkpoint",
        dest="model",
        required=True,
        help="zoo:NAME or a checkpoint of `capsq train`, as in `capsq run` (--checkpoint: the old spelling)",
    )
    parser.add_argument("--dataset", default=None, help="dataset name (default: the checkpoint's own)")
    parser.add_argument("--split", default="test", choices=["test", "val", "train"])
    parser.add_argument("--data-root", default=None, help="directory with the official dataset files")
    parser.add_argument("--batch-size", type=positive_int, default=500)
    parser.add_argument("--limit", type=positive_int, default=None, help="evaluate the first N images only")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _check_model_fits_dataset(model: str, config: dict[str, Any], spec: DatasetSpec) -> None:
    """Refuse a dataset whose images or classes the model was not built for, before loading it: the
    forward pass would otherwise fail with a shape error deep inside torch, or, for a dataset with fewer
    classes, score predictions of classes the dataset does not have."""
    expected = (config.get("in_channels"), config.get("image_size"), config.get("num_classes"))
    actual = (spec.channels, spec.image_size, spec.num_classes)
    if None not in expected and expected != actual:
        channels, size, classes = expected
        raise ValueError(
            f"{model} takes {channels}x{size}x{size} images of {classes} classes but {spec.name} has "
            f"{spec.shape_text} images of {spec.num_classes} classes; pass --dataset with the dataset the "
            "model was trained on"
        )


def run(args: argparse.Namespace) -> int:
    checkpoint = open_checkpoint(args.model)
    dataset_name = args.dataset or checkpoint.metadata.get("dataset")
    if not dataset_name:
        raise ValueError(f"{args.model} does not record its dataset; pass --dataset NAME")
    _check_model_fits_dataset(args.model, checkpoint.model.config, get_spec(dataset_name))
    dataset = load_dataset(dataset_name, args.split, root=args.data_root)
    started = time.perf_counter()
    accuracy = evaluate_accuracy(
        checkpoint.model,
        dataset,
        batch_size=args.batch_size,
        limit=args.limit,
        progress=not args.no_progress,
        description=f"{dataset_name}/{args.split}",
    )
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    result = {
        "checkpoint": str(args.model),
        "dataset": dataset_name,
        "split": args.split,
        "images": count,
        "accuracy": round(accuracy, 4),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{dataset_name}/{args.split}: accuracy {accuracy:.2f}% on {count} images ({result['seconds']} s)"
        )
    return 0
