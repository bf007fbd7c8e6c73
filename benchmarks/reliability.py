"""Hostile input through every public entry point: is each case refused cleanly, reported, or accepted?

    python benchmarks/reliability.py                          # every case, 200 fuzz rounds per parser
    python benchmarks/reliability.py --fuzz-rounds 20 --verbose

Runs the hostile-input cases the tests check (bad bit allocations, bad NNCF configurations, corrupted
datasets, malformed checkpoints, bad ``--out`` folders, bad export destinations and example inputs, the
contradictory options of ``capsq run``) and property-based fuzz rounds of the parsers (fixed seed), each
through the Python API or ``capsnet_nncf_plugin.cli.main([...])``, and classifies each outcome:

- ``clean error``: a user error (``CapsqError``, ``ValueError``, ``FileNotFoundError``) of one non-empty
  line; from the command line, exit status 2 and one ``capsq CMD: error: MESSAGE`` line (argparse's usage
  line may precede it), no traceback;
- ``detected and reported``: the command succeeds and reports the problem (``capsq data info``: a PROBLEM,
  or the test files reported missing, instead of a count);
- ``accepted``: valid input, accepted (where a case can tell, what was accepted is checked to be valid: a
  silently accepted bad input is a crash);
- ``crash``: anything else (another exception, a traceback, a multi-line message, another exit status).

Corrupted inputs are built in a temporary folder: the real dataset files are copied from the cache
(``$CAPSQ_CACHE``) and only the copies are damaged; ``$CAPSQ_CACHE`` points at an empty temporary cache
while the cases run. Cases needing a dataset that is not in the cache are skipped (and counted as such).
Prints one table row per category and entry point, the total, and every crash; exits with status 1 if any
case crashed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import gzip
import io
import json
import logging
import math
import os
import pickle
import random
import shutil
import struct
import sys
import tarfile
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

from capsnet_nncf_plugin.cli import main as capsq
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.data import cache_dir, get_spec, load_dataset
from capsnet_nncf_plugin.data.fetch_stamp import write_stamp
from capsnet_nncf_plugin.data.formats.idx import read_idx_images, read_idx_labels
from capsnet_nncf_plugin.errors import USER_ERRORS, CapsqError, run_reporting_user_errors
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.job import RunConfig, check_output_folder, run
from capsnet_nncf_plugin.models import create, load_checkpoint
from capsnet_nncf_plugin.nn import CapsuleLength, ClassCapsules, PrimaryCapsules
from capsnet_nncf_plugin.nncf import load_config
from capsnet_nncf_plugin.runtime import InferenceSession

# The hostile-input case lists live in tests/hostile_inputs.py, where the tests pin each case's message; the
# folder goes last on the path so that its test folders (nncf, models, ...) cannot shadow real packages.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from hostile_inputs import (
    ALLOCATIONS_NOT_FITTING,
    BAD_NNCF_CONFIGS,
    LEGACY_IGNORED_SCOPE_STRING_NNCF_CONFIG,
    LEGACY_LAYOUT_NNCF_CONFIG,
    MALFORMED_ALLOCATIONS,
    MALFORMED_CHECKPOINT_CHANGES,
    QUANTIZE_LAYOUT_NNCF_CONFIG,
    SHALLOWCAPS_LAYERS,
    UNREADABLE_ALLOCATION_FILES,
    WRONGLY_TYPED_NNCF_CONFIGS,
    allocation_document,
    allocation_documents,
    checkpoint_payload,
    checkpoint_payloads,
    json_values,
    nncf_legacy_layout_configs,
    nncf_quantize_layout_configs,
    valid_allocation,
)

CLEAN, DETECTED, ACCEPTED, CRASH = "clean error", "detected and reported", "accepted", "crash"
OUTCOMES = (CLEAN, DETECTED, ACCEPTED, CRASH)
SEED = 20261206
#: A model that does not exist: a run that gets as far as loading it passed every check of its options.
NO_MODEL = "zoo:not-a-model"
NO_MODEL_MESSAGE = "no zoo model named 'not-a-model'"
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: Log lines the command line may print before its one error line (format of ``capsq``'s logging).
LOG_PREFIXES = ("DEBUG ", "INFO ", "WARNING ", "ERROR ", "CRITICAL ")


# --- outcomes --------------------------------------------------------------------------------------------


@dataclass
class Case:
    category: str
    source: str  # the entry point, or "fuzz: PARSER"
    name: str
    outcome: str
    detail: str
    #: For a clean error from the Python API: the exception class, when it is not a CapsqError (a plain
    #: ValueError or FileNotFoundError is a user error to the CLI, but may be a library's raw message).
    plain_error: str = ""


@dataclass
class Record:
    """Every case run so far, and the ones skipped (with why)."""

    verbose: bool = False
    cases: list[Case] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def add(
        self, category: str, source: str, name: str, outcome: str, detail: str, plain_error: str = ""
    ) -> str:
        self.cases.append(Case(category, source, name, outcome, detail, plain_error))
        if self.verbose or outcome == CRASH:
            print(f"[{outcome}] {category} / {source} / {name}: {detail[:300]}", file=sys.__stderr__)
        return outcome

    def api(
        self,
        category: str,
        source: str,
        name: str,
        call: Callable[[], Any],
        valid: Callable[[Any], bool] | None = None,
        accepted_if: Callable[[BaseException], bool] | None = None,
    ) -> str:
        """Run ``call()``: a one-line user error is clean, a result is accepted (and must pass ``valid``);
        ``accepted_if`` says which error means that the input itself passed (a later step failed)."""
        stderr = io.StringIO()
        try:
            with _quiet(stderr):
                result = call()
        except KeyboardInterrupt:
            raise
        except USER_ERRORS as error:
            message = str(error)
            if "Traceback (most recent call last)" in stderr.getvalue():
                return self.add(category, source, name, CRASH, f"printed a traceback, then: {message}")
            if accepted_if is not None and accepted_if(error):
                return self.add(category, source, name, ACCEPTED, f"passed; then: {message}")
            if not message.strip() or "\n" in message:
                return self.add(
                    category, source, name, CRASH, f"{type(error).__name__} not one line: {message!r}"
                )
            plain = "" if isinstance(error, CapsqError) else type(error).__name__
            return self.add(category, source, name, CLEAN, message, plain)
        except BaseException as error:  # SystemExit included: a library call must not exit the process
            return self.add(category, source, name, CRASH, _crash_text(error))
        if "Traceback (most recent call last)" in stderr.getvalue():
            return self.add(category, source, name, CRASH, "printed a traceback")
        if valid is not None and not valid(result):
            return self.add(
                category, source, name, CRASH, f"silently accepted invalid input: {result!r}"[:300]
            )
        return self.add(category, source, name, ACCEPTED, _short(result))

    def cli(
        self,
        category: str,
        name: str,
        argv: list[str],
        detected: Callable[[str], bool] | None = None,
        accepted_if: Callable[[str], bool] | None = None,
        source: str | None = None,
    ) -> str:
        """Run ``capsq ARGV`` in this process: exit status 2 with one error line is clean; status 0 is
        accepted, or detected when ``detected(stdout)`` says the output reports a problem."""
        source = source or f"capsq {argv[0]}"
        stdout, stderr = io.StringIO(), io.StringIO()
        try:
            with _quiet(stderr), contextlib.redirect_stdout(stdout):
                status = capsq(argv)
        except SystemExit as exit_:  # argparse refusing the arguments
            status = exit_.code
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            return self.add(category, source, name, CRASH, _crash_text(error))
        err = stderr.getvalue()
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith(LOG_PREFIXES)]
        if status == 0:
            if "Traceback (most recent call last)" in err:
                return self.add(category, source, name, CRASH, "status 0 with a traceback")
            outcome = DETECTED if detected is not None and detected(stdout.getvalue()) else ACCEPTED
            return self.add(category, source, name, outcome, _last_line(stdout.getvalue()))
        # argparse prints a usage line (continued on indented lines) before its error line.
        errors = [line for line in lines if not line.startswith(("usage:", " "))]
        if (
            status == 2
            and len(errors) == 1
            and errors[0].startswith("capsq")
            and ": error: " in errors[0]
            and "Traceback (most recent call last)" not in err
        ):
            message = errors[0]
            if accepted_if is not None and accepted_if(message):
                return self.add(category, source, name, ACCEPTED, f"passed; then: {message}")
            return self.add(category, source, name, CLEAN, message)
        return self.add(category, source, name, CRASH, f"status {status}, stderr: {err.strip()[-600:]!r}")

    def skip(self, category: str, reason: str, count: int) -> None:
        self.skipped[(category, reason)] += count


@contextlib.contextmanager
def _quiet(stderr: io.StringIO) -> Iterator[None]:
    """No warnings, and stderr (progress bars, torch.fx listings, tracebacks) into ``stderr``."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(stderr):
        warnings.simplefilter("ignore")
        yield


def _crash_text(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}{where}: {first}"


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, torch.nn.Module) else type(value).__name__
    return text if len(text) <= 120 else f"{text[:117]}..."


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the duration of one case."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)  # None: it was unset


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _is_run_error(message: str) -> bool:
    """Whether a run failed only at loading the model that does not exist: its options all passed."""
    return NO_MODEL_MESSAGE in message


# --- bit allocations ---------------------------------------------------------------------------------------

ALLOCATIONS = "bit allocations"


#: The tests' unreadable files (tests/hostile_inputs.py), and an empty one.
ALLOCATION_FILES = {
    **{name: content for name, (content, _) in UNREADABLE_ALLOCATION_FILES.items()},
    "empty file": b"",
}


def _allocation_is_valid(allocation: BitAllocation) -> bool:
    widths = [bits for layer in allocation.layers.values() for bits in (layer.weight, layer.activation)]
    return all(type(bits) is int and 2 <= bits <= 16 for bits in widths) and set(allocation.layers) <= set(
        SHALLOWCAPS_LAYERS
    )


def allocation_cases(record: Record, folder: Path) -> None:
    api = "BitAllocation"
    for index, (data, _) in enumerate(MALFORMED_ALLOCATIONS):
        record.api(
            ALLOCATIONS, api, f"malformed document {index}", lambda data=data: BitAllocation.from_dict(data)
        )
    for index, (layers, _) in enumerate(ALLOCATIONS_NOT_FITTING):
        record.api(
            ALLOCATIONS,
            api,
            f"does not fit ShallowCaps {index}",
            lambda layers=layers: BitAllocation.from_dict(allocation_document(layers)).check_layers(
                SHALLOWCAPS_LAYERS
            ),
        )
    for name, content in ALLOCATION_FILES.items():
        path = folder / f"allocation-{len(record.cases)}.json"
        path.write_bytes(content)
        record.api(ALLOCATIONS, api, name, lambda path=path: BitAllocation.load(path))
    record.api(ALLOCATIONS, api, "a directory", lambda: BitAllocation.load(folder))
    record.api(ALLOCATIONS, api, "a missing file", lambda: BitAllocation.load(folder / "missing.json"))
    saved = valid_allocation().save(folder / "valid-allocation.json")
    record.api(
        ALLOCATIONS,
        api,
        "valid file, round trip",
        lambda: BitAllocation.load(saved).check_layers(SHALLOWCAPS_LAYERS),
        valid=lambda loaded: loaded == valid_allocation(),
    )
    record.api(
        ALLOCATIONS,
        api,
        "uniform allocation of the model's layers",
        lambda: BitAllocation.uniform(list(SHALLOWCAPS_LAYERS), weight=4).check_layers(SHALLOWCAPS_LAYERS),
        valid=_allocation_is_valid,
    )
    out = str(folder / "allocation-run")
    for name, path in (("missing file", folder / "missing.json"), ("a directory", folder)):
        argv = ["run", "--model", NO_MODEL, "--method", "none", "--allocation", str(path), "--out", out]
        record.cli(ALLOCATIONS, f"--allocation {name}", [*argv, "--no-progress"])


# --- NNCF configurations -----------------------------------------------------------------------------------

CONFIGS = "NNCF configurations"

#: The tests' refused configurations (tests/hostile_inputs.py, where each error message is pinned), and a
#: string in place of a mapping.
BAD_CONFIGS = [
    *(config for config, _ in BAD_NNCF_CONFIGS),
    *(config for config, _ in WRONGLY_TYPED_NNCF_CONFIGS),
    "not a mapping",
]
VALID_CONFIGS = [
    None,  # no configuration: NNCF's defaults
    {},
    QUANTIZE_LAYOUT_NNCF_CONFIG,
    LEGACY_LAYOUT_NNCF_CONFIG,
    LEGACY_IGNORED_SCOPE_STRING_NNCF_CONFIG,
]
BAD_CONFIG_FILES = {
    "broken JSON": ("nncf.json", b"{subset_size: 8"),
    "TOML": ("nncf.toml", b"subset_size = 8"),
    "200,000 nested lists": ("deep.json", b"[" * 200_000 + b"]" * 200_000),
    "latin-1 bytes": ("latin1.json", '{"capsnet": {"method": "d\xe9j\xe0"}}'.encode("latin-1")),
    "broken YAML": ("bad.yaml", b"subset_size: [1,\n  2\nfast: {"),
    "NaN literal": ("nan.json", b'{"capsnet": {"tolerance": NaN}}'),
    "Infinity literal": (
        "inf.json",
        b'{"advanced_parameters": {"bias_correction_params": {"threshold": Infinity}}}',
    ),
    "empty file": ("empty.json", b""),
    "YAML bomb": (
        "bomb.yaml",
        b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
    ),
}


def config_cases(record: Record, folder: Path) -> None:
    for index, config in enumerate(BAD_CONFIGS):
        record.api(
            CONFIGS, "load_config", f"bad configuration {index}", lambda config=config: load_config(config)
        )
    for index, config in enumerate(VALID_CONFIGS):
        record.api(
            CONFIGS, "load_config", f"valid configuration {index}", lambda config=config: load_config(config)
        )
    for name, (file_name, content) in BAD_CONFIG_FILES.items():
        path = folder / f"config-{len(record.cases)}" / file_name
        path.parent.mkdir()
        path.write_bytes(content)
        record.api(CONFIGS, "load_config", name, lambda path=path: load_config(path))
    record.api(CONFIGS, "load_config", "a missing file", lambda: load_config(folder / "missing.json"))
    record.api(CONFIGS, "load_config", "a directory", lambda: load_config(folder))
    good = folder / "good.yaml"
    good.write_text("subset_size: 8\ncapsnet:\n  activation_bits: 6\n")
    record.api(CONFIGS, "load_config", "valid YAML file", lambda: load_config(good))
    out = str(folder / "config-run")
    for name, argv in (
        ("--nncf-config without --flow nncf", ["--nncf-config", str(good)]),
        ("--nncf-config missing file", ["--flow", "nncf", "--nncf-config", str(folder / "missing.json")]),
        ("--nncf-config a directory", ["--flow", "nncf", "--nncf-config", str(folder)]),
    ):
        record.cli(CONFIGS, name, ["run", "--model", NO_MODEL, *argv, "--out", out, "--no-progress"])


# --- datasets --------------------------------------------------------------------------------------------

DATASETS = "datasets"


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _store(path: Path, content: bytes) -> None:
    path.unlink(missing_ok=True)
    path.write_bytes(gzip.compress(content, compresslevel=1) if path.suffix == ".gz" else content)


def _edit(path: Path, change: Callable[[bytearray], bytes | bytearray | None]) -> None:
    data = bytearray(_content(path))
    result = change(data)
    _store(path, bytes(data if result is None else result))


def _flip(offset: int, mask: int = 0x01) -> Callable[[bytearray], None]:
    def change(data: bytearray) -> None:
        data[offset] ^= mask

    return change


def _move_labels(count: int) -> Callable[[bytearray], None]:
    def change(data: bytearray) -> None:
        for index in range(8, 8 + count):
            data[index] = (data[index] + 1) % 10

    return change


def _header_word(word: int, value: int) -> Callable[[bytearray], None]:
    def change(data: bytearray) -> None:
        data[4 * word : 4 * word + 4] = struct.pack(">I", value)

    return change


def _cut_to(count: int) -> Callable[[Path, Path], None]:
    def alter(images: Path, labels: Path) -> None:
        _edit(images, lambda d: struct.pack(">IIII", 2051, count, 28, 28) + bytes(d[16 : 16 + count * 784]))
        _edit(labels, lambda d: struct.pack(">II", 2049, count) + bytes(d[8 : 8 + count]))

    return alter


def _swap(images: Path, labels: Path) -> None:
    image_content, label_content = _content(images), _content(labels)
    _store(images, label_content)
    _store(labels, image_content)


def _regzip_altered(images: Path, labels: Path) -> None:
    content = bytearray(_content(labels))
    content[8] = (content[8] + 3) % 10
    labels.unlink()
    labels.with_name(labels.name.removesuffix(".gz") + ".gz").write_bytes(gzip.compress(bytes(content)))


def _gzip_cut_short(images: Path, labels: Path) -> None:
    compressed = gzip.compress(_content(images), compresslevel=1)
    images.unlink()
    images.with_name(images.name.removesuffix(".gz") + ".gz").write_bytes(compressed[: len(compressed) // 2])


def _not_gzip_under_gz_name(images: Path, labels: Path) -> None:
    content = _content(images)
    images.unlink()
    images.with_name(images.name.removesuffix(".gz") + ".gz").write_bytes(content)


def _random_bytes(images: Path, labels: Path) -> None:
    _store(images, random.Random(SEED).randbytes(5000))


def _directory_in_place(images: Path, labels: Path) -> None:
    images.unlink()
    images.mkdir()


def _dangling_link(images: Path, labels: Path) -> None:
    images.unlink()
    images.symlink_to(images.with_name("nowhere"))


MNIST_DAMAGE: dict[str, Callable[[Path, Path], None] | None] = {
    "intact official test files": None,
    "one pixel bit flipped": lambda images, labels: _edit(images, _flip(5000)),
    "one label moved to another class": lambda images, labels: _edit(labels, _move_labels(1)),
    "500 labels moved to other classes": lambda images, labels: _edit(labels, _move_labels(500)),
    "a label of 10 (classes are 0..9)": lambda images, labels: _edit(labels, lambda d: d.__setitem__(8, 10)),
    "cut to 9,000 consistent records": _cut_to(9000),
    "image count 0xFFFFFFFF": lambda images, labels: _edit(images, _header_word(1, 0xFFFFFFFF)),
    "image count 10,001": lambda images, labels: _edit(images, _header_word(1, 10_001)),
    "32x32 header on 28x28 pixels": lambda images, labels: _edit(images, _header_word(2, 32)),
    "labels magic in the image file": lambda images, labels: _edit(images, _header_word(0, 2049)),
    "image file truncated to half": lambda images, labels: _edit(images, lambda d: d[: len(d) // 2]),
    "16 bytes appended": lambda images, labels: _edit(images, lambda d: d + bytes(16)),
    "header only": lambda images, labels: _edit(images, lambda d: d[:16]),
    "empty image file": lambda images, labels: _edit(images, lambda d: b""),
    "images and labels swapped": _swap,
    "labels re-gzipped after an edit": _regzip_altered,
    "gzip stream cut short": _gzip_cut_short,
    "raw bytes under a .gz name": _not_gzip_under_gz_name,
    "random bytes as the image file": _random_bytes,
    "labels file missing": lambda images, labels: labels.unlink(),
    "a directory in place of the image file": _directory_in_place,
    "a dangling symlink as the image file": _dangling_link,
}


def _copy_test_files(source: Path, target: Path) -> tuple[Path, Path]:
    target.mkdir(parents=True)
    copies = []
    for base in MNIST_TEST_FILES:
        (found,) = [path for path in (source / base, source / f"{base}.gz") if path.is_file()]
        copies.append(Path(shutil.copyfile(found, target / found.name)))
    return copies[0], copies[1]


def _has_test_files(directory: Path) -> bool:
    return all(
        (directory / base).is_file() or (directory / f"{base}.gz").is_file() for base in MNIST_TEST_FILES
    )


def _problem_in(name: str) -> Callable[[str], bool]:
    """Whether ``capsq data info``'s row of ``name`` reports a problem with the test files: a PROBLEM, or
    the test files missing (with the command that fetches them) instead of a count."""

    def reported(stdout: str) -> bool:
        rows = [line for line in stdout.splitlines() if line.startswith(name + " ")]
        if not rows:
            return False
        test_count = rows[0].split()[5]
        return "PROBLEM" in rows[0] or (test_count == "-" and "missing (run: capsq data fetch" in rows[0])

    return reported


def dataset_cases(record: Record, folder: Path, real_cache: Path) -> None:
    for name in ("mnist", "fashion-mnist"):
        source = real_cache / "datasets" / name
        if not _has_test_files(source):
            per_case = 3 if name == "mnist" else 2  # load_dataset, capsq data info (and capsq eval)
            record.skip(
                DATASETS,
                f"{name} is not in {real_cache} (capsq data fetch {name})",
                per_case * len(MNIST_DAMAGE) + 6,
            )
            continue
        for index, (case, damage) in enumerate(MNIST_DAMAGE.items()):
            root = folder / f"{name}-root-{index}"
            images, labels = _copy_test_files(source, root / name)
            if damage is not None:
                damage(images, labels)
            label = f"{name}: {case}"
            record.api(
                DATASETS,
                "load_dataset",
                label,
                lambda root=root, name=name: len(load_dataset(name, "test", root=root)),
                valid=lambda count: count == 10_000,
            )
            with environment(CAPSQ_DATA=str(root)):
                record.cli(DATASETS, label, ["data", "info", name], detected=_problem_in(name))
            if name == "mnist":
                argv = ["eval", "--model", "zoo:shallowcaps-mnist", "--data-root", str(root), "--limit", "8"]
                record.cli(DATASETS, label, [*argv, "--no-progress"])
        _stamped_cache_cases(record, folder / f"{name}-cache", source, name)
    _synthetic_garbage_cases(record, folder / "synthetic")


def _stamped_cache_cases(record: Record, cache: Path, source: Path, name: str) -> None:
    """Files fetched into the cache (a stamp records their digests), changed afterwards."""
    for index, (case, damage) in enumerate(
        (
            ("intact fetched files", None),
            ("a pixel flipped after the fetch", lambda images, labels: _edit(images, _flip(100, 0xFF))),
            ("a label moved after the fetch", lambda images, labels: _edit(labels, _move_labels(1))),
        )
    ):
        folder = cache / str(index)
        directory = folder / "datasets" / name
        images, labels = _copy_test_files(source, directory)
        write_stamp(directory, [images, labels], "benchmarks/reliability.py")
        if damage is not None:
            damage(images, labels)
        label = f"{name} in the cache: {case}"
        with environment(CAPSQ_CACHE=str(folder)):
            record.api(
                DATASETS,
                "load_dataset",
                label,
                lambda name=name: len(load_dataset(name, "test")),
                valid=lambda count: count == 10_000,
            )
            record.cli(DATASETS, label, ["data", "info", name], detected=_problem_in(name))


def _svhn_mat(
    path: Path, images: np.ndarray, labels: np.ndarray, names: tuple[str, str] = ("X", "y")
) -> None:
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {names[0]: images.transpose(2, 3, 1, 0), names[1]: labels.reshape(-1, 1)})


class _Evil:
    """Unpickling this runs code: a dataset loader must refuse it."""

    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


def _tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for member, content in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def _synthetic_garbage_cases(record: Record, folder: Path) -> None:
    """SVHN and CIFAR-10 files that are garbage or hostile (no real copies needed: nothing here is valid)."""
    rng = np.random.default_rng(SEED)
    small = rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    labels = np.array([1, 2, 10, 4], dtype=np.uint8)
    batch = {
        b"batch_label": b"x",
        b"labels": [1, 2, 3, 4],
        b"data": small.reshape(4, -1),
        b"filenames": [b"a"] * 4,
    }
    test_mat, archive, batches = "test_32x32.mat", "cifar-10-python.tar.gz", "cifar-10-batches-py"

    def truncated_mat(directory: Path) -> None:
        _svhn_mat(directory / "full.mat", small, labels)
        (directory / test_mat).write_bytes((directory / "full.mat").read_bytes()[:300])

    def test_batch(content: bytes) -> Callable[[Path], None]:
        def build(directory: Path) -> None:
            (directory / batches).mkdir()
            (directory / batches / "test_batch").write_bytes(content)

        return build

    cases: dict[str, tuple[str, Callable[[Path], Any]]] = {
        "svhn: random bytes as test_32x32.mat": (
            "svhn",
            lambda d: (d / test_mat).write_bytes(rng.bytes(4096)),
        ),
        "svhn: empty test_32x32.mat": ("svhn", lambda d: (d / test_mat).write_bytes(b"")),
        "svhn: 4 images instead of 26,032": ("svhn", lambda d: _svhn_mat(d / test_mat, small, labels)),
        "svhn: truncated .mat": ("svhn", truncated_mat),
        "svhn: a .mat without X and y": (
            "svhn",
            lambda d: _svhn_mat(d / test_mat, small, labels, names=("Z", "W")),
        ),
        "cifar10: random bytes as the archive": (
            "cifar10",
            lambda d: (d / archive).write_bytes(rng.bytes(4096)),
        ),
        "cifar10: an empty archive": ("cifar10", lambda d: _tar(d / archive, {})),
        "cifar10: an archive member escaping the folder": (
            "cifar10",
            lambda d: _tar(d / archive, {"../../escaped": b"x"}),
        ),
        "cifar10: a test batch that runs code when unpickled": ("cifar10", test_batch(pickle.dumps(_Evil()))),
        "cifar10: a 4-image test batch": ("cifar10", test_batch(pickle.dumps(batch, protocol=4))),
    }
    for index, (case, (name, build)) in enumerate(cases.items()):
        root = folder / str(index)
        (root / name).mkdir(parents=True)
        build(root / name)
        record.api(
            DATASETS,
            "load_dataset",
            case,
            lambda root=root, name=name: len(load_dataset(name, "test", root=root)),
        )
        with environment(CAPSQ_DATA=str(root)):
            record.cli(DATASETS, case, ["data", "info", name], detected=_problem_in(name))
    record.api(DATASETS, "load_dataset", "unknown dataset name", lambda: load_dataset("imagenet", "test"))
    record.api(DATASETS, "load_dataset", "unknown split", lambda: load_dataset("mnist", "validation"))
    record.api(
        DATASETS,
        "load_dataset",
        "a root that does not exist",
        lambda: load_dataset("mnist", "test", root=folder / "nowhere"),
    )
    record.cli(DATASETS, "unknown dataset name", ["data", "info", "imagenet"])


# --- checkpoints -------------------------------------------------------------------------------------------

CHECKPOINTS = "checkpoints"
#: The tests' malformed payloads (tests/hostile_inputs.py), then three more: a future format version, a
#: config within each bound but too large together (with the real weights, not an empty state_dict as in
#: its test), and another file format's marker.
MALFORMED_CHECKPOINTS = [
    *(changes for changes, _ in MALFORMED_CHECKPOINT_CHANGES),
    {"version": 99},
    {"config": {"image_size": 256, "num_classes": 1000}},
    {"format": "something-else"},
]


def _changed_state(state: dict, key: str, value: Any) -> dict:
    changed = dict(state)
    changed[key] = value
    return changed


def _save_truncated(payload: dict, path: Path, size: int) -> None:
    torch.save(payload, path)
    path.write_bytes(path.read_bytes()[:size])


def _save_zip(path: Path, members: dict[str, bytes]) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def checkpoint_cases(record: Record, folder: Path, real_state: dict) -> None:
    path = folder / "checkpoint.pt"
    cases: list[tuple[str, Callable[[], None]]] = []
    for index, changes in enumerate(MALFORMED_CHECKPOINTS):
        cases.append(
            (
                f"malformed payload {index}: {sorted(changes)}",
                lambda c=changes: torch.save(checkpoint_payload(real_state, **c), path),
            )
        )
    mismatched = {k: v for k, v in real_state.items() if k != "conv1.bias"}
    mismatched["extra.weight"] = torch.zeros(1)
    mismatched["conv1.weight"] = torch.zeros(256, 1, 3, 3)
    nan_state = _changed_state(real_state, "conv1.bias", real_state["conv1.bias"].clone().fill_(math.nan))
    inf_state = _changed_state(real_state, "conv1.bias", real_state["conv1.bias"].clone().fill_(math.inf))
    int_state = _changed_state(real_state, "conv1.bias", real_state["conv1.bias"].to(torch.int64))
    valid = checkpoint_payload(real_state)
    cases += [
        ("weights that do not fit the config", lambda: torch.save(checkpoint_payload(mismatched), path)),
        ("NaN weights", lambda: torch.save(checkpoint_payload(nan_state), path)),
        ("infinite weights", lambda: torch.save(checkpoint_payload(inf_state), path)),
        ("integer weights", lambda: torch.save(checkpoint_payload(int_state), path)),
        ("a list, not a payload", lambda: torch.save([1, 2, 3], path)),
        ("a pickle that runs code", lambda: path.write_bytes(pickle.dumps(_Evil()))),
        ("random bytes", lambda: path.write_bytes(random.Random(SEED).randbytes(10_000))),
        ("empty file", lambda: path.write_bytes(b"")),
        ("truncated to 1 MB", lambda: _save_truncated(valid, path, 1 << 20)),
        ("a zip archive that is not a checkpoint", lambda: _save_zip(path, {"readme.txt": b"hello"})),
    ]
    for name, build in cases:
        path.unlink(missing_ok=True)
        build()
        record.api(CHECKPOINTS, "load_checkpoint", name, lambda: load_checkpoint(path))
        record.cli(CHECKPOINTS, name, ["eval", "--model", str(path), "--no-progress"])
    path.unlink()
    record.api(CHECKPOINTS, "load_checkpoint", "a missing file", lambda: load_checkpoint(path))
    record.cli(CHECKPOINTS, "a missing file", ["eval", "--model", str(path), "--no-progress"])
    run_folder = folder / "run"
    run_folder.mkdir()
    record.api(CHECKPOINTS, "load_checkpoint", "a directory", lambda: load_checkpoint(run_folder))
    torch.save(valid, run_folder / "best.pt")
    record.api(
        CHECKPOINTS, "load_checkpoint", "a directory holding best.pt", lambda: load_checkpoint(run_folder)
    )
    record.cli(
        CHECKPOINTS, "a directory holding best.pt", ["eval", "--model", str(run_folder), "--no-progress"]
    )
    record.api(
        CHECKPOINTS,
        "load_checkpoint",
        "valid checkpoint",
        lambda: load_checkpoint(run_folder / "best.pt"),
        valid=lambda loaded: (
            not loaded.model.training
            and torch.equal(loaded.model.state_dict()["conv1.weight"], real_state["conv1.weight"])
        ),
    )
    for name, argv in (
        (
            "a zoo model on a dataset it was not built for",
            ["--model", "zoo:shallowcaps-mnist", "--dataset", "cifar10"],
        ),
        ("an unknown zoo model", ["--model", "zoo:nope"]),
    ):
        record.cli(CHECKPOINTS, name, ["eval", *argv, "--no-progress"])


# --- output folders --------------------------------------------------------------------------------------

OUTPUT = "--out folders"


def output_folder_cases(record: Record, folder: Path) -> None:
    existing_file = folder / "existing-file"
    existing_file.write_text("not a folder")
    read_only = folder / "read-only"
    read_only.mkdir(mode=0o555)
    full = folder / "full"
    full.mkdir()
    (full / "old-report.md").write_text("an earlier run")
    cases = {
        "an existing file": existing_file,
        "a folder under a file": existing_file / "sub",
        "/dev/null": Path(os.devnull),
        "a name too long": folder / ("r" * 300),
        "a folder under /proc": Path("/proc/capsq-reliability"),
        "a folder under /sys": Path("/sys/capsq-reliability"),
        "a read-only folder's child": read_only / "run",
        "a new folder": folder / "new" / "run",
        "an existing folder with files": full,
    }
    for name, path in cases.items():
        record.api(OUTPUT, "check_output_folder", name, lambda path=path: check_output_folder(path))
        for command in ("run", "quantize"):
            argv = [command, "--model", NO_MODEL, "--out", str(path), "--no-progress"]
            record.cli(OUTPUT, name, argv, accepted_if=_is_run_error)
    record.api(
        OUTPUT, "check_output_folder", "a NUL character", lambda: check_output_folder(f"{folder}/a\0b")
    )
    read_only.chmod(0o755)


# --- export ------------------------------------------------------------------------------------------------

EXPORT = "ONNX export"


def _tiny_quantized() -> tuple[torch.nn.Module, torch.Tensor]:
    """A small ShallowCaps for 16x16 images (docs/export.md), quantized by the FX flow."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 5),
        torch.nn.ReLU(),
        PrimaryCapsules(16, num_capsules=4, capsule_dim=4, kernel_size=5, stride=2),
        ClassCapsules(4 * 4 * 4, 3, in_dim=4, out_dim=6, iterations=3),
        CapsuleLength(),
    ).eval()
    images = torch.randint(0, 256, (16, 1, 16, 16), generator=torch.Generator().manual_seed(0)).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_fx(model, images.split(8)), images


def export_cases(record: Record, folder: Path) -> None:
    quantized, images = _tiny_quantized()
    examples = images[:2]
    blocker = folder / "a-file"
    blocker.write_text("x")
    fifo = folder / "pipe"
    os.mkfifo(fifo)
    read_only = folder / "read-only"
    read_only.mkdir(mode=0o555)
    nan_images = examples.clone()
    nan_images[0, 0, 0, 0] = math.nan
    destinations: dict[str, Any] = {
        "a directory": folder,
        "a FIFO": fifo,
        "/dev/null": Path(os.devnull),
        "a path under a file": blocker / "m.onnx",
        "a path under /proc": "/proc/capsq-reliability.onnx",
        "a path under /sys": "/sys/capsq-reliability.onnx",
        "a name too long": folder / ("m" * 300 + ".onnx"),
        "a NUL character": f"{folder}/a\0b.onnx",
        "an integer": 5,
        "a read-only folder": read_only / "m.onnx",
    }
    for name, path in destinations.items():
        record.api(EXPORT, "export_onnx path", name, lambda path=path: export_onnx(quantized, examples, path))
    example_cases: dict[str, Any] = {
        "28x28 images for a 16x16 model": torch.rand(2, 1, 28, 28) * 255,
        "3 channels for a 1-channel model": torch.rand(2, 3, 16, 16) * 255,
        "4x4 images": torch.rand(2, 1, 4, 4) * 255,
        "a 3-D batch": torch.rand(2, 16, 16) * 255,
        "a 5-D batch": torch.rand(2, 1, 16, 16, 1) * 255,
        "uint8 pixels": examples.to(torch.uint8),
        "float64 pixels": examples.double(),
        "float16 pixels": examples.half(),
        "int64 pixels": examples.long(),
        "a NaN pixel": nan_images,
        "infinite pixels": examples * math.inf,
        "a batch of one": examples[:1],
        "a 0-dim tensor": torch.tensor(1.0),
        "an empty tuple": (),
        "a numpy array": examples.numpy(),
        "a nested list": [[1.0, 2.0]],
        "None": None,
    }
    path = folder / "model.onnx"
    for name, example in example_cases.items():
        record.api(
            EXPORT,
            "export_onnx examples",
            name,
            lambda example=example: export_onnx(quantized, example, path),
        )
    for opset in (7, 17, 20, 29, 99, "21", 21.0, True, None):
        record.api(
            EXPORT,
            "export_onnx opset",
            f"opset={opset!r}",
            lambda opset=opset: export_onnx(quantized, examples, path, opset=opset),
        )
    for name, model in (
        ("a float model", torch.nn.Conv2d(1, 1, 3)),
        ("a string", "model.pt"),
        ("None", None),
    ):
        record.api(EXPORT, "export_onnx model", name, lambda model=model: export_onnx(model, examples, path))

    def exported_and_run() -> bool:
        exported = export_onnx(quantized, examples, folder / "new-folder" / "model.onnx")
        session = InferenceSession(str(exported.path))
        scores = session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]
        return bool(np.array_equal(scores, quantized(images).dequantize().numpy()))

    record.api(
        EXPORT,
        "export_onnx",
        "valid export into a new folder, run in onnxruntime",
        exported_and_run,
        valid=bool,
    )
    read_only.chmod(0o755)


# --- capsq run options --------------------------------------------------------------------------------------

JOB = "capsq run options"

#: RunConfig fields and the same choice on the command line (None: argparse cannot express it).
RUN_CONTRADICTIONS: list[tuple[dict, list[str] | None]] = [
    ({"weight_bits": 1, "method": "none"}, ["--method", "none", "--weight-bits", "1"]),
    ({"routing_bits": 17, "method": "none"}, ["--method", "none", "--routing-bits", "17"]),
    ({"clip": "max"}, ["--clip", "max"]),
    ({"flow": "tflite"}, ["--flow", "tflite"]),
    ({"criterion": "loss"}, ["--criterion", "loss"]),
    ({"tolerance": -0.1}, ["--tolerance", "-0.1"]),
    ({"tolerance": math.nan}, ["--tolerance", "nan"]),
    ({"tolerance": math.inf}, ["--tolerance", "inf"]),
    ({"calibration_images": 0}, ["--calibration", "0"]),
    ({"test_limit": -5}, ["--limit", "-5"]),
    ({"method": "nope"}, ["--method", "nope"]),
    ({"activation_observer": "nope"}, ["--activation-observer", "nope"]),
    ({"nncf_config": "nncf.yaml"}, ["--nncf-config", "nncf.yaml"]),
    ({"flow": "nncf", "weight_observer": "pot"}, ["--flow", "nncf", "--weight-observer", "pot"]),
    ({"flow": "nncf", "bias_correction": True}, ["--flow", "nncf", "--bias-correction"]),
    ({"weight_bits": 4}, ["--weight-bits", "4"]),
    (
        {"method": "qcapsnets", "routing_bits": 4, "activation_bits": 6},
        ["--method", "qcapsnets", "--routing-bits", "4", "--activation-bits", "6"],
    ),
    (
        {"allocation": "a.json", "method": "error-guided"},
        ["--allocation", "a.json", "--method", "error-guided"],
    ),
    (
        {"weight_memory_budget": 2.0, "weight_reduction": 8.0},
        ["--weight-memory-budget", "2", "--weight-reduction", "8"],
    ),
    ({"flow": "nncf", "weight_rounding": "gptq"}, ["--flow", "nncf", "--weight-rounding", "gptq"]),
    (
        {"weight_rounding": "gptq", "bias_correction": True},
        ["--weight-rounding", "gptq", "--bias-correction"],
    ),
    ({"weight_memory_budget": -1.0}, ["--weight-memory-budget", "-1"]),
    ({"weight_reduction": 0.0}, ["--weight-reduction", "0"]),
    ({"analysis_bits": (1, 8)}, ["--analysis-bits", "1", "8"]),
    ({"validation_limit": 0}, ["--validation-limit", "0"]),
    ({"latency_batch": 0}, None),
    ({"calibration_images": True}, None),
    ({"tolerance": "0.1"}, None),
    ({"weights": "missing-weights.pt"}, ["--weights", "missing-weights.pt"]),
]
RUN_VALID: list[tuple[dict, list[str]]] = [
    ({}, []),
    (
        {"method": "none", "weight_bits": 4, "activation_bits": 16, "routing_bits": 2, "test_limit": 1},
        [
            "--method",
            "none",
            "--weight-bits",
            "4",
            "--activation-bits",
            "16",
            "--routing-bits",
            "2",
            "--limit",
            "1",
        ],
    ),
    ({"flow": "nncf", "method": "none"}, ["--flow", "nncf", "--method", "none"]),
]


def job_cases(record: Record, folder: Path) -> None:
    out = str(folder / "run-out")
    uniform = folder / "uniform.json"
    uniform.write_text("{}")
    contradictions = [
        *RUN_CONTRADICTIONS,
        (
            {"allocation": str(uniform), "weight_bits": 4},
            ["--allocation", str(uniform), "--weight-bits", "4"],
        ),
        ({"allocation": str(folder / "missing.json"), "flow": "nncf"}, None),
    ]
    for fields, argv in contradictions:
        _run_case(record, ", ".join(f"{key}={value!r}" for key, value in fields.items()), fields, argv, out)
    for fields, argv in RUN_VALID:
        name = "valid: " + (", ".join(f"{key}={value!r}" for key, value in fields.items()) or "defaults")
        _run_case(record, name, fields, argv, out)


def _run_case(record: Record, name: str, fields: dict, argv: list[str] | None, out: str) -> None:
    """The options ``fields`` through ``job.run`` and, with ``argv`` (None: the command line cannot express
    them), through ``capsq run``. The model does not exist, so options that pass every check fail only at
    loading it: that failure counts as accepted."""
    config = RunConfig(model=NO_MODEL, out_dir=out, **fields)
    record.api(
        JOB,
        "job.run",
        name,
        lambda: run(config, progress=False),
        accepted_if=lambda e: _is_run_error(str(e)),
    )
    if argv is not None:
        record.cli(
            JOB,
            name,
            ["run", "--model", NO_MODEL, *argv, "--out", out, "--no-progress"],
            accepted_if=_is_run_error,
        )


# --- fuzz rounds -------------------------------------------------------------------------------------------


def fuzz_cases(record: Record, folder: Path, rounds: int, seed: int, real_state: dict) -> None:
    """Property-based rounds (hypothesis, fixed seed) of each parser: every draw is one case."""
    try:
        import hypothesis
        from hypothesis import strategies as st
    except ImportError as error:
        raise ValueError(
            "the fuzz rounds need hypothesis: install the dev extras (pip install -e '.[dev]'), or pass "
            "--fuzz-rounds 0"
        ) from error
    import hypothesis.configuration

    # Hypothesis keeps caches in ./.hypothesis; this script leaves nothing in the folder it runs from.
    hypothesis.configuration.set_hypothesis_home_dir(folder / "hypothesis")

    def fuzz(category: str, parser: str, strategy: Any, check: Callable[[Any, str], Any]) -> None:
        counter = iter(range(1, 1 << 30))

        @hypothesis.seed(seed)
        @hypothesis.settings(
            max_examples=rounds,
            database=None,
            deadline=None,
            derandomize=False,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=[
                hypothesis.HealthCheck.too_slow,
                hypothesis.HealthCheck.filter_too_much,
                hypothesis.HealthCheck.data_too_large,
                hypothesis.HealthCheck.large_base_example,
            ],
        )
        @hypothesis.given(strategy)
        def round_(value: Any) -> None:
            check(value, f"round {next(counter)}")

        round_()

    # Bit allocations: documents (drawn as tests/core/test_bit_allocation.py draws them, but with NaN and
    # mostly ShallowCaps' own layer names), then bytes of a valid file with random edits.
    values = json_values()
    documents = allocation_documents(
        values, st.sampled_from([*SHALLOWCAPS_LAYERS, "conv2"]) | st.text(max_size=12), max_layers=4
    )
    fuzz(
        ALLOCATIONS,
        "fuzz: BitAllocation.from_dict + check_layers",
        st.one_of(documents, values),
        lambda data, name: record.api(
            ALLOCATIONS,
            "fuzz: BitAllocation.from_dict + check_layers",
            name,
            lambda: BitAllocation.from_dict(data).check_layers(SHALLOWCAPS_LAYERS),
            valid=lambda allocation: (
                _allocation_is_valid(allocation)
                and BitAllocation.from_dict(allocation.to_dict()) == allocation
            ),
        ),
    )
    valid_bytes = json.dumps(valid_allocation().to_dict()).encode()
    allocation_file = folder / "fuzz-allocation.json"

    def load_allocation(content: bytes, name: str) -> None:
        allocation_file.write_bytes(content)
        record.api(
            ALLOCATIONS,
            "fuzz: BitAllocation.load (edited bytes)",
            name,
            lambda: BitAllocation.load(allocation_file),
            valid=lambda allocation: BitAllocation.from_dict(allocation.to_dict()) == allocation,
        )

    fuzz(
        ALLOCATIONS,
        "fuzz: BitAllocation.load (edited bytes)",
        _edited_bytes(st, valid_bytes),
        load_allocation,
    )

    # NNCF configurations, both layouts (the strategies tests/nncf/test_config.py draws from).
    configs, legacy = nncf_quantize_layout_configs(), nncf_legacy_layout_configs()
    for parser, strategy in (
        ("fuzz: load_config (nncf.quantize layout)", configs),
        ("fuzz: load_config (NNCF 2.x layout)", legacy),
    ):
        fuzz(
            CONFIGS,
            parser,
            strategy,
            lambda config, name, parser=parser: record.api(
                CONFIGS, parser, name, lambda: load_config(config), valid=_config_is_valid
            ),
        )

    # IDX files: any bytes, and valid files with edited headers (spec shrunk to 3 images, as in the tests).
    spec = dataclasses.replace(get_spec("mnist"), official_train_count=3, official_test_count=3)
    pixels = 3 * 28 * 28
    valid_images = (
        struct.pack(">IIII", 2051, 3, 28, 28) + bytes(range(256)) * (pixels // 256) + bytes(pixels % 256)
    )
    valid_labels = struct.pack(">II", 2049, 3) + bytes([1, 2, 3])

    def parse_idx(drawn: tuple[bytes, bool, str], name: str, parser: str) -> None:
        content, gzipped, kind = drawn
        base = MNIST_TEST_FILES[0] if kind == "images" else MNIST_TEST_FILES[1]
        path = folder / "idx" / (f"{base}.gz" if gzipped else base)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress(content, compresslevel=1) if gzipped else content)
        reader = read_idx_images if kind == "images" else read_idx_labels
        expected = (3, 1, 28, 28) if kind == "images" else (3,)
        record.api(
            DATASETS,
            parser,
            name,
            lambda: reader(path, spec, "test"),
            valid=lambda array: array.shape == expected and (kind == "images" or int(array.max()) < 10),
        )

    fuzz(
        DATASETS,
        "fuzz: IDX reader (any bytes)",
        st.tuples(st.binary(max_size=3000), st.booleans(), st.sampled_from(["images", "labels"])),
        lambda drawn, name: parse_idx(drawn, name, "fuzz: IDX reader (any bytes)"),
    )

    @st.composite
    def mutated(draw: Any) -> tuple[bytes, bool, str]:
        kind = draw(st.sampled_from(["images", "labels"]))
        data = bytearray(valid_images if kind == "images" else valid_labels)
        for _ in range(draw(st.integers(1, 3))):
            word = draw(st.integers(0, (4 if kind == "images" else 2) - 1))
            value = draw(st.sampled_from([0, 1, 2, 4, 28, 0xFFFFFFFF]) | st.integers(0, 2**32 - 1))
            data[4 * word : 4 * word + 4] = struct.pack(">I", value)
        cut = draw(st.none() | st.integers(0, len(data)))
        if cut is not None:
            del data[cut:]
        return bytes(data) + draw(st.binary(max_size=8)), draw(st.booleans()), kind

    fuzz(
        DATASETS,
        "fuzz: IDX reader (edited headers)",
        mutated(),
        lambda drawn, name: parse_idx(drawn, name, "fuzz: IDX reader (edited headers)"),
    )

    # Checkpoints: payloads with up to three keys replaced (torch.load stubbed, as in the tests), and
    # the bytes of a small checkpoint file with random edits.
    stub = folder / "stubbed.pt"
    stub.write_bytes(b"stub")

    def load_stubbed(payload: dict) -> Any:
        with mock.patch.object(torch, "load", return_value=copy.copy(payload)):
            return load_checkpoint(stub)

    fuzz(
        CHECKPOINTS,
        "fuzz: load_checkpoint (payloads)",
        checkpoint_payloads(real_state),
        lambda payload, name: record.api(
            CHECKPOINTS,
            "fuzz: load_checkpoint (payloads)",
            name,
            lambda: load_stubbed(payload),
            valid=lambda loaded: payload["state_dict"] is real_state and not loaded.model.training,
        ),
    )
    small = folder / "small.pt"
    torch.save(checkpoint_payload({"conv1.weight": torch.zeros(2, 2)}, config={"num_classes": 3}), small)
    small_bytes = small.read_bytes()
    edited = folder / "edited.pt"

    def load_edited(content: bytes, name: str) -> None:
        edited.write_bytes(content)
        record.api(
            CHECKPOINTS, "fuzz: load_checkpoint (edited file bytes)", name, lambda: load_checkpoint(edited)
        )

    fuzz(
        CHECKPOINTS, "fuzz: load_checkpoint (edited file bytes)", _edited_bytes(st, small_bytes), load_edited
    )

    # Output folders: paths through existing files, FIFOs, missing folders, odd names.
    paths_root = folder / "paths"
    paths_root.mkdir()
    (paths_root / "file").write_text("x")
    (paths_root / "dir").mkdir()
    os.mkfifo(paths_root / "fifo")
    segments = st.sampled_from(
        ["file", "dir", "fifo", "missing", "r" * 300, "..", ".", "ünï", " ", "a\0b", "-"]
    )

    def out_path(parts: list[str], special: str | None) -> str:
        return str(Path(special or paths_root, *parts))

    def existing_non_folder(path: str) -> bool:
        try:
            return any(
                Path(p).exists() and not Path(p).is_dir() for p in (path, *map(str, Path(path).parents))
            )
        except (OSError, ValueError):
            return True

    fuzz(
        OUTPUT,
        "fuzz: check_output_folder",
        st.tuples(
            st.lists(segments, min_size=0, max_size=3),
            st.none() | st.sampled_from(["/proc", "/dev/null", "/sys"]),
        ),
        lambda drawn, name: record.api(
            OUTPUT,
            "fuzz: check_output_folder",
            name,
            lambda: check_output_folder(out_path(*drawn)),
            valid=lambda folder_path: not existing_non_folder(str(folder_path)),
        ),
    )

    # The command lines of capsq run and capsq quantize: any options, any values.
    option_values = _argv_values(folder)
    out = str(folder / "argv-out")

    @st.composite
    def command_lines(draw: Any) -> list[str]:
        command = draw(st.sampled_from(["run", "quantize"]))
        argv = [command, "--model", NO_MODEL, "--out", out, "--no-progress"]
        for option in draw(st.lists(st.sampled_from(sorted(option_values)), max_size=5, unique=True)):
            choices = option_values[option]
            argv.append(option)
            if choices is not None:
                argv.extend(
                    draw(
                        st.lists(
                            st.sampled_from(choices),
                            min_size=1,
                            max_size=2 if option == "--analysis-bits" else 1,
                        )
                    )
                )
        return argv

    fuzz(
        JOB,
        "fuzz: capsq run / quantize options",
        command_lines(),
        lambda argv, name: record.cli(
            JOB,
            f"{name}: {' '.join(argv[5:])}",
            argv,
            accepted_if=_is_run_error,
            source="fuzz: capsq run / quantize options",
        ),
    )


def _edited_bytes(st: Any, original: bytes) -> Any:
    """``original`` with a few random edits: flipped bytes, a cut, an insertion (more at its start)."""

    @st.composite
    def edited(draw: Any) -> bytes:
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 4))):
            kind = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
            near_start = draw(st.booleans())
            limit = min(len(data), 200) if near_start else len(data)
            position = draw(st.integers(0, max(limit - 1, 0)))
            if kind == "flip" and data:
                data[position] ^= draw(st.integers(1, 255))
            elif kind == "cut":
                del data[position:]
            elif kind == "insert":
                data[position:position] = draw(st.binary(min_size=1, max_size=16))
            elif data:
                data[position] = draw(st.sampled_from([0, 0xFF, ord("{"), ord('"'), ord("9"), ord("N")]))
        return bytes(data)

    return edited()


def _argv_values(folder: Path) -> dict[str, list[str] | None]:
    """``capsq run`` / ``capsq quantize`` options and values to draw (None: a flag without a value)."""
    numbers = ["0", "1", "-1", "2", "2.5", "8", "17", "nan", "inf", "-inf", "1e309", "abc", "", "0x10", "all"]
    allocation = folder / "argv-allocation.json"
    allocation.write_text(json.dumps(valid_allocation().to_dict()))
    garbage = folder / "argv-garbage.json"
    garbage.write_bytes(b"\x00\xff{")
    files = [str(allocation), str(garbage), str(folder / "missing.json"), str(folder), ""]
    return {
        "--method": ["none", "error-guided", "qcapsnets", "uniform-8", "nope", ""],
        "--tolerance": numbers,
        "--criterion": ["losses", "accuracy", "loss"],
        "--clip": ["minmax", "hardware", "percentile", "mse", "max"],
        "--bias-correction": None,
        "--weight-rounding": ["nearest", "gptq", "up"],
        "--validation-limit": numbers,
        "--weight-memory-budget": numbers,
        "--weight-reduction": numbers,
        "--analysis-images": numbers,
        "--analysis-bits": numbers,
        "--analysis-cache": files,
        "--reuse-dir": [*files, "none", "auto"],
        "--flow": ["fx", "nncf", "tflite"],
        "--nncf-config": files,
        "--allocation": files,
        "--weight-bits": numbers,
        "--activation-bits": numbers,
        "--routing-bits": numbers,
        "--weight-observer": ["pot", "pot-per-channel", "fixed-range", "nope"],
        "--activation-observer": ["pot", "pot-activation", "nope"],
        "--calibration": numbers,
        "--limit": numbers,
        "--dataset": ["mnist", "cifar10", "imagenet"],
        "--weights": files,
        "--tolerance-typo": ["1"],
    }


def _config_is_valid(config: Any) -> bool:
    """What an accepted configuration must hold (tests/nncf/test_config.py checks the same)."""
    import nncf

    kwargs = config.quantize_kwargs
    subset_size = kwargs.get("subset_size", 300)
    capsnet = config.capsnet
    return (
        type(subset_size) is int
        and subset_size >= 1
        and type(kwargs.get("fast_bias_correction", True)) is bool
        and kwargs.get("preset") in (None, nncf.QuantizationPreset.PERFORMANCE)
        and math.isfinite(capsnet.tolerance)
        and 0 <= capsnet.tolerance <= 100
        and all(
            type(getattr(capsnet, key)) is int for key in ("weight_bits", "activation_bits", "routing_bits")
        )
    )


# --- the table ---------------------------------------------------------------------------------------------


def print_table(record: Record, seconds: float) -> None:
    rows: dict[tuple[str, str], Counter] = {}
    for case in record.cases:
        rows.setdefault((case.category, case.source), Counter())[case.outcome] += 1
    header = ("category", "entry point", "cases", *OUTCOMES)
    print("| " + " | ".join(header) + " |")
    print("| --- | --- |" + " ---: |" * (len(header) - 2))
    totals: Counter = Counter()
    for (category, source), counts in rows.items():
        totals.update(counts)
        cells = [category, f"`{source}`", str(sum(counts.values())), *(str(counts[o]) for o in OUTCOMES)]
        print("| " + " | ".join(cells) + " |")
    cells = ["**total**", "", f"**{sum(totals.values())}**", *(f"**{totals[o]}**" for o in OUTCOMES)]
    print("| " + " | ".join(cells) + " |")
    plain = [case for case in record.cases if case.plain_error]
    if plain:
        kinds = Counter(case.plain_error for case in plain)
        listed = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        print(f"clean errors from the Python API that are not a CapsqError: {listed} (--verbose lists them)")
        for case in plain if record.verbose else ():
            print(f"  {case.category} / {case.source} / {case.name}: {case.plain_error}: {case.detail}"[:300])
    for (category, reason), count in sorted(record.skipped.items()):
        print(f"skipped {count} {category} cases: {reason}")
    crashes = [case for case in record.cases if case.outcome == CRASH]
    for case in crashes:
        print(f"CRASH {case.category} / {case.source} / {case.name}: {case.detail}"[:400])
    print(f"{sum(totals.values())} cases, {totals[CRASH]} crashes, {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fuzz-rounds", type=_rounds, default=200, help="draws per fuzzed parser (default: 200; 0: none)"
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the fuzz rounds (default: {SEED})")
    parser.add_argument("--verbose", action="store_true", help="print every case as it runs (to stderr)")
    args = parser.parse_args()
    started = time.perf_counter()
    real_cache = cache_dir()
    # capsq configures logging on its first call; a handler writing to whichever stderr is current lets
    # each case capture its own log lines (and WARNING keeps progress logs out of them).
    logging.basicConfig(
        level=logging.WARNING, stream=_CurrentStderr(), format="%(levelname)s %(name)s: %(message)s"
    )
    torch.manual_seed(0)
    real_state = create("shallowcaps").state_dict()
    record = Record(verbose=args.verbose)
    with tempfile.TemporaryDirectory(prefix="capsq-reliability-") as temporary:
        folder = Path(temporary)
        # Nothing in the real cache is written: the cases see an empty cache of their own.
        with environment(CAPSQ_CACHE=str(folder / "empty-cache"), CAPSQ_DATA=None):
            for name, cases in (
                ("allocations", lambda f: allocation_cases(record, f)),
                ("configs", lambda f: config_cases(record, f)),
                ("datasets", lambda f: dataset_cases(record, f, real_cache)),
                ("checkpoints", lambda f: checkpoint_cases(record, f, real_state)),
                ("output", lambda f: output_folder_cases(record, f)),
                ("export", lambda f: export_cases(record, f)),
                ("job", lambda f: job_cases(record, f)),
            ):
                (folder / name).mkdir()
                cases(folder / name)
            if args.fuzz_rounds:
                (folder / "fuzz").mkdir()
                fuzz_cases(record, folder / "fuzz", args.fuzz_rounds, args.seed, real_state)
    print_table(record, time.perf_counter() - started)
    return 1 if any(case.outcome == CRASH for case in record.cases) else 0


class _CurrentStderr:
    """A stream writing to whatever ``sys.stderr`` is when it writes."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _rounds(text: str) -> int:
    try:
        rounds = int(text)
    except ValueError:
        rounds = -1
    if rounds < 0:
        raise argparse.ArgumentTypeError(f"expected a number of rounds >= 0 (0: no fuzzing), got {text!r}")
    return rounds


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
