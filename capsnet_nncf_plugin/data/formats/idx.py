"""The IDX format of MNIST and Fashion-MNIST, raw or gzipped.

An IDX file is a big-endian header (magic number, then one uint32 per dimension) followed by the values.
The magic number encodes the value type (0x08 = unsigned byte) and the number of dimensions, so images are
2051 (3 dimensions) and labels 2049 (1 dimension). Every check below exists because a truncated download or
a mixed-up file would otherwise surface much later as a silently wrong accuracy.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from capsnet_nncf_plugin.data.formats.interface import LabelledImages
from capsnet_nncf_plugin.data.remedies import refetch_advice
from capsnet_nncf_plugin.data.specs import DatasetSpec
from capsnet_nncf_plugin.data.splits import OfficialPart
from capsnet_nncf_plugin.errors import DatasetError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

IMAGE_FILES: dict[OfficialPart, str] = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
LABEL_FILES: dict[OfficialPart, str] = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}
ALL_FILE_NAMES: tuple[str, ...] = (*IMAGE_FILES.values(), *LABEL_FILES.values())

# Errors that gzip/zlib raise on a damaged stream (bad CRC, bad header, stream cut short).
_CORRUPT_STREAM_ERRORS = (OSError, EOFError, zlib.error)


def find_idx_file(directory: Path, base_name: str) -> Path | None:
    """The raw file if present (fastest to read), else its ``.gz``, else None."""
    for candidate in (directory / base_name, directory / f"{base_name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _open(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _read_fully_into(stream: BinaryIO, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream``; return the byte count actually read (short only at end of file)."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    return filled


def _read_header(stream: BinaryIO, path: Path, spec: DatasetSpec, expected_magic: int) -> tuple[int, ...]:
    dimensions = 3 if expected_magic == IMAGES_MAGIC else 1
    header_size = 4 * (1 + dimensions)
    # The magic number is checked before the sizes so a swapped file is reported as such, not as truncated.
    magic_bytes = stream.read(4)
    if len(magic_bytes) == 4 and struct.unpack(">I", magic_bytes)[0] != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DatasetError(
            f"{path} is not an IDX {kind} file: magic number {struct.unpack('>I', magic_bytes)[0]}, "
            f"expected {expected_magic}; {refetch_advice(spec)}"
        )
    header = magic_bytes + stream.read(header_size - len(magic_bytes))
    if len(header) < header_size:
        raise DatasetError(
            f"IDX file {path} is truncated: its {header_size}-byte header has only {len(header)} bytes; "
            f"{refetch_advice(spec)}"
        )
    return struct.unpack(f">{dimensions}I", header[4:])


def _check_header(
    path: Path, spec: DatasetSpec, part: OfficialPart, shape: tuple[int, ...], what: str, kind: str
) -> None:
    """Check the header's sizes against the spec and, for a raw file, the file size: all before the values
    are allocated, so a damaged count (up to 0xFFFFFFFF) can never ask for terabytes."""
    expected_count = spec.official_count(part)
    if shape[0] != expected_count:
        raise DatasetError(
            f"IDX file {path} says it holds {shape[0]:,} {kind} but the official {spec.name} {part} set has "
            f"{expected_count:,}: the file is damaged or cut down; {refetch_advice(spec)}"
        )
    if path.suffix == ".gz":
        return  # the decompressed size is only known by decompressing; the reader checks it as it goes
    header_size = 4 * (1 + len(shape))
    expected, found = math.prod(shape), path.stat().st_size - header_size
    if found < expected:
        raise DatasetError(
            f"IDX file {path} is truncated (expected {expected} bytes of {what}, found {found}); "
            f"{refetch_advice(spec)}"
        )
    if found > expected:
        raise DatasetError(
            f"IDX file {path} has data after its {expected} bytes of {what}, so its header does not "
            f"describe it; {refetch_advice(spec)}"
        )


def _read_values(
    stream: BinaryIO, path: Path, spec: DatasetSpec, shape: tuple[int, ...], what: str
) -> np.ndarray:
    values = np.empty(shape, dtype=np.uint8)
    found = _read_fully_into(stream, memoryview(values).cast("B"))
    if found != values.size:
        raise DatasetError(
            f"IDX file {path} is truncated (expected {values.size} bytes of {what}, found {found}); "
            f"{refetch_advice(spec)}"
        )
    if stream.read(1):
        raise DatasetError(
            f"IDX file {path} has data after its {values.size} bytes of {what}, so its header does not "
            f"describe it; {refetch_advice(spec)}"
        )
    return values


def _image_shape(path: Path, spec: DatasetSpec, header: tuple[int, ...]) -> tuple[int, int, int, int]:
    count, rows, columns = header
    if (rows, columns) != (spec.image_size, spec.image_size):
        raise DatasetError(
            f"IDX file {path} holds {rows}x{columns} images but {spec.name} images are "
            f"{spec.image_size}x{spec.image_size}; {refetch_advice(spec)}"
        )
    return (count, 1, rows, columns)


def read_idx_images(path: Path, spec: DatasetSpec, part: OfficialPart) -> np.ndarray:
    """Decode an IDX images file into ``uint8 [N, 1, H, W]``, checking the header against ``spec``."""
    try:
        with _open(path) as stream:
            shape = _image_shape(path, spec, _read_header(stream, path, spec, IMAGES_MAGIC))
            _check_header(path, spec, part, (shape[0], shape[2], shape[3]), "pixels", "images")
            pixels = _read_values(stream, path, spec, shape, "pixels")
    except _CORRUPT_STREAM_ERRORS as error:
        raise DatasetError(f"IDX file {path} is corrupted ({error}); {refetch_advice(spec)}") from error
    return pixels


def read_idx_labels(path: Path, spec: DatasetSpec, part: OfficialPart) -> np.ndarray:
    """Decode an IDX labels file into ``int64 [N]``, checking every label is a valid class index."""
    try:
        with _open(path) as stream:
            (count,) = _read_header(stream, path, spec, LABELS_MAGIC)
            _check_header(path, spec, part, (count,), "labels", "labels")
            raw_labels = _read_values(stream, path, spec, (count,), "labels")
    except _CORRUPT_STREAM_ERRORS as error:
        raise DatasetError(f"IDX file {path} is corrupted ({error}); {refetch_advice(spec)}") from error
    if count and int(raw_labels.max()) >= spec.num_classes:
        raise DatasetError(
            f"IDX file {path} has label {int(raw_labels.max())} but {spec.name} has only "
            f"{spec.num_classes} classes (0..{spec.num_classes - 1}); {refetch_advice(spec)}"
        )
    return raw_labels.astype(np.int64)


def read_idx_count(path: Path, spec: DatasetSpec, part: OfficialPart, expected_magic: int) -> int:
    """The item count from an IDX header, checked like :func:`read_idx_images` does, without the values."""
    try:
        with _open(path) as stream:
            header = _read_header(stream, path, spec, expected_magic)
    except _CORRUPT_STREAM_ERRORS as error:
        raise DatasetError(f"IDX file {path} is corrupted ({error}); {refetch_advice(spec)}") from error
    if expected_magic == IMAGES_MAGIC:
        shape = _image_shape(path, spec, header)
        _check_header(path, spec, part, (shape[0], shape[2], shape[3]), "pixels", "images")
    else:
        _check_header(path, spec, part, header, "labels", "labels")
    return header[0]


class IdxFormat:
    """MNIST-style datasets: four IDX files, each raw or ``.gz``."""

    def describe_files(self) -> str:
        """The official file names, for messages."""
        return ", ".join(f"{name}[.gz]" for name in ALL_FILE_NAMES)

    def _part_files(self, directory: Path, part: OfficialPart) -> tuple[Path | None, Path | None]:
        return find_idx_file(directory, IMAGE_FILES[part]), find_idx_file(directory, LABEL_FILES[part])

    def is_present(self, directory: Path, part: OfficialPart) -> bool:
        """Whether both the images and the labels file of ``part`` exist in ``directory``."""
        return all(path is not None for path in self._part_files(directory, part))

    def files(self, directory: Path, part: OfficialPart) -> tuple[Path, ...]:
        """The files :meth:`read` reads for ``part`` (those present)."""
        return tuple(path for path in self._part_files(directory, part) if path is not None)

    def read(self, directory: Path, part: OfficialPart, spec: DatasetSpec) -> LabelledImages:
        """Decode ``part`` and check images and labels pair up one to one."""
        images_path, labels_path = self._part_files(directory, part)
        if images_path is None or labels_path is None:
            raise DatasetError(
                f"{spec.name} {part} files ({IMAGE_FILES[part]}, {LABEL_FILES[part]}, raw or .gz) are "
                f"missing from {directory}; {refetch_advice(spec)}"
            )
        images = read_idx_images(images_path, spec, part)
        labels = read_idx_labels(labels_path, spec, part)
        if len(images) != len(labels):
            raise DatasetError(
                f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
                f"the two files do not belong together; {refetch_advice(spec)}"
            )
        return LabelledImages(images=images, labels=labels)

    def count(self, directory: Path, part: OfficialPart, spec: DatasetSpec) -> int:
        """The image count from the headers of both files, checked against the spec and the file sizes."""
        images_path, labels_path = self._part_files(directory, part)
        if images_path is None or labels_path is None:
            raise DatasetError(
                f"{spec.name} {part} files are missing from {directory}; {refetch_advice(spec)}"
            )
        read_idx_count(labels_path, spec, part, LABELS_MAGIC)
        return read_idx_count(images_path, spec, part, IMAGES_MAGIC)
