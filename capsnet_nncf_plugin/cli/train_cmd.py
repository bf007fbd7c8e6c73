"""``capsq train``: train a float capsule network on a dataset's train split."""

from __future__ import annotations

import argparse
import json

import torch

from capsnet_nncf_plugin.cli.arguments import non_negative_float, positive_float, positive_int
from capsnet_nncf_plugin.models import available_models
from capsnet_nncf_plugin.training import TrainConfig, train


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train ShallowCaps or DeepCaps (margin + reconstruction loss, Adam)",
        description="Train a capsule network on the 'train' split, validating on 'val' after every epoch. "
        "Each epoch writes OUT/last.pt (resumable) and, when validation improves, OUT/best.pt, "
        "both atomically, plus OUT/history.json and OUT/curves.png (loss and accuracy per epoch).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", default="shallowcaps", choices=available_models(), help="architecture")
    parser.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, cifar10 or svhn")
    parser.add_argument("--data-root", default=None, help="directory with the official dataset files")
    parser.add_argument("--out", default=None, help="run directory (default: runs/MODEL-DATASET)")
    parser.add_argument("--epochs", type=positive_int, default=10, help="total number of epochs")
    parser.add_argument("--batch-size", type=positive_int, default=100)
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument(
        "--lr-decay", type=positive_float, default=0.96, help="learning-rate factor per epoch"
    )
    parser.add_argument(
        "--reconstruction-weight",
        type=non_negative_float,
        default=0.0005,
        help="weight of the decoder's reconstruction loss; 0 trains without a decoder",
    )
    parser.add_argument("--no-augment", action="store_true", help="disable random shifts and flips")
    parser.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="resize inputs to this size (DeepCaps' CIFAR-10 set-up uses 64)",
    )
    parser.add_argument("--routing-iterations", type=positive_int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)"
    )
    parser.add_argument(
        "--train-subset", type=positive_int, default=None, help="train on the first N images only"
    )
    parser.add_argument(
        "--val-subset", type=positive_int, default=None, help="validate on the first N images only"
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    parser.add_argument(
        "--init-from",
        default=None,
        help="start from this checkpoint's weights with a fresh optimizer and learning-rate schedule "
        "(fine-tuning; --resume instead continues a run's own schedule)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=50,
        help="also refresh OUT/last.pt every N steps inside an epoch (0: only at epoch ends)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {"routing_iterations": args.routing_iterations}
    if args.image_size is not None:
        options["image_size"] = args.image_size
    config = TrainConfig(
        model=args.model,
        dataset=args.dataset,
        out_dir=args.out or f"runs/{args.model}-{args.dataset}",
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_decay=args.lr_decay,
        reconstruction_weight=args.reconstruction_weight,
        augment=not args.no_augment,
        seed=args.seed,
        device=args.device,
        data_root=args.data_root,
        train_subset=args.train_subset,
        val_subset=args.val_subset,
        checkpoint_every=args.checkpoint_every,
        init_from=args.init_from,
        model_options=options,
    )
    result = train(config, resume=args.resume, progress=not args.no_progress)
    print(
        json.dumps(
            {
                "best_checkpoint": str(result.best_checkpoint),
                "best_val_accuracy": round(result.best_val_accuracy, 4),
            }
        )
    )
    return 0
