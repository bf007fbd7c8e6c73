"""SVHN "format 2": ``train_32x32.mat`` / ``test_32x32.mat`` (MATLAB v5).

``X`` is ``uint8 [32, 32, 3, N]`` (height, width, channel, image) and ``y`` is ``[N, 1]`` with labels
1..10, where 10 stands for the digit 0. scipy is imported lazily because it costs a noticeable fraction of
a second and most runs only touch MNIST.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from capsnet_nncf_plugin.data.formats.interface import LabelledImages
from capsnet_nncf_plugin.data.remedies import refetch_advice
from capsnet_nncf_plugin.data.specs import DatasetSpec
from capsnet_nncf_plugin.data.splits import OfficialPart
from capsnet_nncf_plugin.errors import DatasetError

FILE_NAMES: dict[OfficialPart, str] = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
ZERO_DIGIT_LABEL = 10


def _load_variables(path: Path, spec: DatasetSpec) -> dict[str, Any]:
    import scipy.io  # lazy, see the module docstring

    try:
        return scipy.io.loadmat(path, variable_names=("X", "y"))
    # scipy's parser raises whatever its code trips over on malformed input (MatReadError, ValueError,
    # IndexError...): any failure to parse means the file is not a usable SVHN file.
    except Exception as error:
        raise DatasetError(
            f"SVHN file {path} is not a readable MATLAB file ({error}); {refetch_advice(spec)}"
        ) from error


def _header_count(path: Path, spec: DatasetSpec, part: OfficialPart) -> int:
    """The image count from the variable table (no pixels read), checked against the spec before scipy
    allocates what a damaged header claims."""
    import scipy.io  # lazy, see the module docstring

    try:
        variables = {name: (shape, kind) for name, shape, kind in scipy.io.whosmat(path)}
    except Exception as error:  # as in _load_variables: any parse failure
        raise DatasetError(
            f"SVHN file {path} is not a readable MATLAB file ({error}); {refetch_advice(spec)}"
        ) from error
    shapes = {name: shape for name, (shape, _) in variables.items()}
    expected_pixels = (spec.image_size, spec.image_size, spec.channels)
    if "X" not in variables:
        raise DatasetError(f"SVHN file {path} lacks the 'X' variable; {refetch_advice(spec)}")
    shape, kind = variables["X"]
    if kind != "uint8" or len(shape) != 4 or tuple(shape[:3]) != expected_pixels:
        raise DatasetError(
            f"SVHN file {path}: 'X' is {kind} {list(shape)}, expected uint8 "
            f"[{', '.join(map(str, expected_pixels))}, N]; {refetch_advice(spec)}"
        )
    count, expected_count = int(shapes["X"][3]), spec.official_count(part)
    if count != expected_count:
        raise DatasetError(
            f"SVHN file {path} says it holds {count:,} images but the official {spec.name} {part} set has "
            f"{expected_count:,}: the file is damaged or cut down; {refetch_advice(spec)}"
        )
    if "y" not in shapes or math.prod(shapes["y"]) != count:
        raise DatasetError(
            f"SVHN file {path} lacks a 'y' variable of {count:,} labels; {refetch_advice(spec)}"
        )
    return count


def read_svhn_mat(path: Path, spec: DatasetSpec, part: OfficialPart) -> LabelledImages:
    """Decode one SVHN .mat file into ``uint8 [N, 3, 32, 32]`` images and ``int64`` labels 0..9."""
    _header_count(path, spec, part)
    variables = _load_variables(path, spec)
    advice = refetch_advice(spec)
    if "X" not in variables or "y" not in variables:
        raise DatasetError(f"SVHN file {path} lacks the 'X' and 'y' variables; {advice}")
    pixels, raw_labels = variables["X"], variables["y"]
    expected_pixels = (spec.image_size, spec.image_size, spec.channels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[:3] != expected_pixels:
        raise DatasetError(
            f"SVHN file {path}: 'X' is {pixels.dtype} {list(pixels.shape)}, expected uint8 "
            f"[{', '.join(map(str, expected_pixels))}, N]; {advice}"
        )
    labels = np.asarray(raw_labels).reshape(-1).astype(np.int64)
    if labels.shape != (pixels.shape[3],):
        raise DatasetError(
            f"SVHN file {path} holds {pixels.shape[3]} images but {labels.size} labels; {advice}"
        )
    if labels.size and (labels.min() < 1 or labels.max() > ZERO_DIGIT_LABEL):
        raise DatasetError(f"SVHN file {path} has labels outside 1..{ZERO_DIGIT_LABEL}; {advice}")
    labels[labels == ZERO_DIGIT_LABEL] = 0
    # [H, W, C, N] -> [N, C, H, W]; the copy makes the array contiguous so batches slice cheaply later.
    images = np.ascontiguousarray(pixels.transpose(3, 2, 0, 1))
    return LabelledImages(images=images, labels=labels)


class SvhnMatFormat:
    """SVHN from the official cropped-digit .mat files."""

    def describe_files(self) -> str:
        """The official file names, for messages."""
        return ", ".join(FILE_NAMES.values())

    def is_present(self, directory: Path, part: OfficialPart) -> bool:
        """Whether the .mat file of ``part`` exists in ``directory``."""
        return (directory / FILE_NAMES[part]).is_file()

    def files(self, directory: Path, part: OfficialPart) -> tuple[Path, ...]:
        """The .mat file of ``part``, when present."""
        path = directory / FILE_NAMES[part]
        return (path,) if path.is_file() else ()

    def read(self, directory: Path, part: OfficialPart, spec: DatasetSpec) -> LabelledImages:
        """Decode the .mat file of ``part``."""
        return read_svhn_mat(directory / FILE_NAMES[part], spec, part)

    def count(self, directory: Path, part: OfficialPart, spec: DatasetSpec) -> int:
        """The image count from the variable table, without loading the pixels."""
        return _header_count(directory / FILE_NAMES[part], spec, part)
