"""Reproduces every zoo manifest accuracy on the full official test set and prints a table.

    python benchmarks/zoo_accuracy.py            # all zoo models
    python benchmarks/zoo_accuracy.py NAME ...   # some of them

Exits non-zero if any measured accuracy differs from the manifest.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.models import load_pretrained, read_manifest


def parse_arguments(argv: list[str], known: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"zoo models (default: all: {', '.join(known)})"
    )
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.names if name not in known]
    if unknown:
        parser.error(
            f"not in the zoo: {', '.join(unknown)}; "
            f"the zoo has {', '.join(known)} (`capsq zoo list` shows them)"
        )
    return arguments


def main(argv: list[str]) -> int:
    manifest = read_manifest()
    known = sorted(manifest)
    names = parse_arguments(argv, known).names or known
    print(f"{'model':<22}{'dataset':<15}{'manifest %':>11}{'measured %':>11}{'images':>8}{'seconds':>9}")
    mismatches = 0
    for name in names:
        entry = manifest[name]
        test_set = load_dataset(entry.dataset, "test")
        started = time.perf_counter()
        accuracy = evaluate_accuracy(load_pretrained(name), test_set, progress=True, description=name)
        seconds = time.perf_counter() - started
        mismatches += round(accuracy, 4) != entry.test_accuracy
        print(
            f"{name:<22}{entry.dataset:<15}{entry.test_accuracy:>11.2f}{accuracy:>11.2f}"
            f"{len(test_set):>8}{seconds:>9.1f}"
        )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(run_reporting_user_errors(lambda: main(sys.argv[1:]), Path(__file__).name))
