"""The CIFAR-10 "python version": ``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py/``.

Each batch is a pickled dict with ``b"data"`` (``uint8 [10000, 3072]``, one image per row, channel-major:
1024 red, then 1024 green, then 1024 blue values) and ``b"labels"`` (a list of ints). Batches are unpickled
with :mod:`restricted_unpickler`, never with plain ``pickle.load``.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np

from capsnet_nncf_plugin.data.formats.interface import LabelledImages
from capsnet_nncf_plugin.data.formats.restricted_unpickler import load_numpy_pickle
from capsnet_nncf_plugin.data.remedies import refetch_advice
from capsnet_nncf_plugin.data.specs import DatasetSpec
from capsnet_nncf_plugin.data.splits import OfficialPart
from capsnet_nncf_plugin.errors import DatasetError

ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
BATCHES: dict[OfficialPart, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{index}" for index in range(1, 6)),
    "test": ("test_batch",),
}


def decode_batch(data: bytes, source: str, spec: DatasetSpec) -> LabelledImages:
    """Decode one pickled batch and check its structure; ``source`` names it in errors."""
    advice = refetch_advice(spec)
    batch = load_numpy_pickle(data, source, advice)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"{source} is not a CIFAR-10 batch (no b'data'/b'labels' entries); {advice}")
    pixels, labels = batch[b"data"], batch[b"labels"]
    values_per_image = spec.channels * spec.image_size * spec.image_size
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise DatasetError(f"{source}: b'data' is not a 2-D uint8 array; {advice}")
    if pixels.shape[1] != values_per_image:
        raise DatasetError(
            f"{source}: images have {pixels.shape[1]} values, expected {values_per_image} "
            f"({spec.shape_text}); {advice}"
        )
    try:
        label_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as error:
        raise DatasetError(f"{source}: b'labels' is not a list of integers; {advice}") from error
    if label_array.shape != (len(pixels),):
        raise DatasetError(f"{source} holds {len(pixels)} images but {label_array.size} labels; {advice}")
    if label_array.size and (label_array.min() < 0 or label_array.max() >= spec.num_classes):
        raise DatasetError(f"{source} has labels outside 0..{spec.num_classes - 1}; {advice}")
    images = pixels.reshape(len(pixels), *spec.image_shape)
    return LabelledImages(images=images, labels=label_array)


def _concatenate(batches: list[LabelledImages]) -> LabelledImages:
    return LabelledImages(
        images=np.concatenate([batch.images for batch in batches]),
        labels=np.concatenate([batch.labels for batch in batches]),
    )


class CifarPythonFormat:
    """CIFAR-10 from the official pickled batches, archived or extracted."""

    def describe_files(self) -> str:
        """The official file names, for messages."""
        return f"{ARCHIVE_NAME} or its extracted {FOLDER_NAME}/ folder"

    def _folder_is_complete(self, directory: Path, part: OfficialPart) -> bool:
        return all((directory / FOLDER_NAME / batch).is_file() for batch in BATCHES[part])

    def is_present(self, directory: Path, part: OfficialPart) -> bool:
        """Whether the extracted batches of ``part`` or the archive exist in ``directory``."""
        return self._folder_is_complete(directory, part) or (directory / ARCHIVE_NAME).is_file()

    def files(self, directory: Path, part: OfficialPart) -> tuple[Path, ...]:
        """The extracted batches of ``part`` if all are there (read prefers them), else the archive."""
        if self._folder_is_complete(directory, part):
            return tuple(directory / FOLDER_NAME / name for name in BATCHES[part])
        return (directory / ARCHIVE_NAME,) if (directory / ARCHIVE_NAME).is_file() else ()

    def read(self, directory: Path, part: OfficialPart, spec: DatasetSpec) -> LabelledImages:
        """Decode ``part``, preferring the extracted folder (no decompression) over the archive."""
        if self._folder_is_complete(directory, part):
            return _concatenate(
                [
                    decode_batch(
                        (directory / FOLDER_NAME / name).read_bytes(),
                        str(directory / FOLDER_NAME / name),
                        spec,
                    )
                    for name in BATCHES[part]
                ]
            )
        return self._read_archive(directory / ARCHIVE_NAME, part, spec)

    def _read_archive(self, archive: Path, part: OfficialPart, spec: DatasetSpec) -> LabelledImages:
        wanted = {f"{FOLDER_NAME}/{name}": name for name in BATCHES[part]}
        found: dict[str, LabelledImages] = {}
        try:
            # Stream mode ("r|gz"): one sequential pass, members are read by exact name and never extracted
            # to disk, so member paths (even hostile ones like "../x") cannot place files anywhere.
            with tarfile.open(archive, "r|gz") as tar:
                for member in tar:
                    name = wanted.get(member.name)
                    if name is None or not member.isfile():
                        continue
                    stream = tar.extractfile(member)
                    if stream is None:
                        continue
                    found[name] = decode_batch(stream.read(), f"{archive}:{member.name}", spec)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            raise DatasetError(
                f"CIFAR-10 archive {archive} is corrupted or truncated ({error}); {refetch_advice(spec)}"
            ) from error
        missing = [name for name in BATCHES[part] if name not in found]
        if missing:
            raise DatasetError(
                f"CIFAR-10 archive {archive} lacks {', '.join(f'{FOLDER_NAME}/{n}' for n in missing)}; "
                f"{refetch_advice(spec)}"
            )
        return _concatenate([found[name] for name in BATCHES[part]])

    def count(self, directory: Path, part: OfficialPart, spec: DatasetSpec) -> int:
        """The official image count: counting would mean decompressing the whole archive."""
        return spec.official_train_count if part == "train" else spec.official_test_count
