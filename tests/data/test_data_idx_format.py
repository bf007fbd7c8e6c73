"""MNIST / Fashion-MNIST IDX files: decoding, raw vs gzip, and every way a file can be damaged."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from capsnet_nncf_plugin.data import VALIDATION_SIZE, get_spec, load_dataset, specs
from capsnet_nncf_plugin.errors import DatasetError


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_gzipped_idx_round_trip_and_splits(synthetic_datasets, name: str) -> None:
    expected = synthetic_datasets.parts[name]
    root = synthetic_datasets.root  # files sit in root/<name>/
    train = load_dataset(name, "train", root=root)
    val = load_dataset(name, "val", root=root)
    test = load_dataset(name, "test", root=root)

    assert len(train) == len(expected["train"].labels) - VALIDATION_SIZE
    assert len(val) == VALIDATION_SIZE
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    # train + val are the official training set in order: disjoint, and val is its tail.
    assert np.array_equal(torch.cat([train.images, val.images]).numpy(), expected["train"].images)
    assert np.array_equal(torch.cat([train.labels, val.labels]).numpy(), expected["train"].labels)
    assert np.array_equal(test.images.numpy(), expected["test"].images)
    assert (train.name, val.split, test.num_classes) == (name, "val", 10)
    image, label = test[0]
    assert torch.equal(image, torch.from_numpy(expected["test"].images[0]).float())
    assert label == expected["test"].labels[0]


def test_raw_files_directly_in_root(tmp_path: Path, writers) -> None:
    train = writers.make_part("mnist", writers.train_count, 7)
    test = writers.make_part("mnist", writers.test_count, 8)
    writers.write_idx_dataset(tmp_path, train, test, gzipped=False)
    loaded = load_dataset("MNIST", "test", root=tmp_path)
    assert np.array_equal(loaded.images.numpy(), test.images)


def _damage(tmp_path: Path, writers, file_name: str, content: bytes) -> Path:
    """A valid raw MNIST directory whose ``file_name`` is replaced by ``content``."""
    train = writers.make_part("mnist", writers.train_count, 1)
    test = writers.make_part("mnist", writers.test_count, 2)
    writers.write_idx_dataset(tmp_path, train, test, gzipped=False)
    (tmp_path / file_name).write_bytes(content)
    return tmp_path / file_name


def test_truncated_images_name_the_file_sizes_and_fix(tmp_path: Path, writers) -> None:
    images = writers.make_part("mnist", writers.test_count, 3).images
    bad = _damage(tmp_path, writers, "t10k-images-idx3-ubyte", writers.idx_images_bytes(images)[:-100])
    with pytest.raises(DatasetError) as raised:
        load_dataset("mnist", "test", root=tmp_path)
    message = str(raised.value)
    assert str(bad) in message and "truncated" in message
    size = writers.test_count * 784
    assert f"expected {size} bytes of pixels, found {size - 100}" in message
    assert "capsq data fetch mnist" in message


def test_truncated_gzip_stream_is_reported_as_corrupted(tmp_path: Path, writers, synthetic_datasets) -> None:
    shutil.copytree(synthetic_datasets.directory("mnist"), tmp_path / "mnist")
    archive = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz is corrupted"):
        load_dataset("mnist", "val", root=tmp_path)


def test_corrupted_gzip_is_reported(tmp_path: Path, synthetic_datasets) -> None:
    shutil.copytree(synthetic_datasets.directory("fashion-mnist"), tmp_path / "fashion-mnist")
    archive = tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)  # zero the second half: bad stream / CRC
    archive.write_bytes(bytes(data))
    # Depending on where the damage lands, the CRC check or the header's count catches it.
    with pytest.raises(
        DatasetError, match=r"t10k-labels-idx1-ubyte\.gz (is corrupted|says it holds).*capsq data fetch"
    ):
        load_dataset("fmnist", "test", root=tmp_path)


def test_gzip_of_truncated_content_reports_the_missing_bytes(tmp_path: Path, writers) -> None:
    labels = writers.make_part("mnist", writers.test_count, 3).labels
    train = writers.make_part("mnist", writers.train_count, 1)
    test = writers.make_part("mnist", writers.test_count, 2)
    writers.write_idx_dataset(tmp_path, train, test)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(writers.idx_labels_bytes(labels)[:-1]))
    count = writers.test_count
    with pytest.raises(DatasetError, match=f"expected {count} bytes of labels, found {count - 1}"):
        load_dataset("mnist", "test", root=tmp_path)


def test_wrong_magic_number(tmp_path: Path, writers) -> None:
    labels = writers.make_part("mnist", writers.test_count, 3).labels
    # A labels file where an images file belongs: magic 2049 instead of 2051.
    _damage(tmp_path, writers, "t10k-images-idx3-ubyte", writers.idx_labels_bytes(labels))
    with pytest.raises(DatasetError, match="not an IDX images file: magic number 2049, expected 2051"):
        load_dataset("mnist", "test", root=tmp_path)


def test_labels_outside_the_classes(tmp_path: Path, writers) -> None:
    labels = np.array([1, 2, 12, 3, 4, 5, 6, 7, 8])
    _damage(tmp_path, writers, "t10k-labels-idx1-ubyte", writers.idx_labels_bytes(labels))
    with pytest.raises(DatasetError, match="label 12 but mnist has only 10 classes"):
        load_dataset("mnist", "test", root=tmp_path)


def test_image_and_label_counts_must_match(tmp_path: Path, writers) -> None:
    _damage(tmp_path, writers, "t10k-labels-idx1-ubyte", writers.idx_labels_bytes(np.array([1, 2, 3])))
    with pytest.raises(DatasetError, match=r"says it holds 3 labels but the official mnist test set has 9"):
        load_dataset("mnist", "test", root=tmp_path)


def test_trailing_bytes_are_rejected(tmp_path: Path, writers) -> None:
    labels = np.arange(writers.test_count) % 10
    _damage(tmp_path, writers, "t10k-labels-idx1-ubyte", writers.idx_labels_bytes(labels) + b"\x00")
    with pytest.raises(DatasetError, match=f"has data after its {writers.test_count} bytes of labels"):
        load_dataset("mnist", "test", root=tmp_path)


def test_wrong_image_size_is_rejected(tmp_path: Path, writers) -> None:
    header = struct.pack(">IIII", 2051, writers.test_count, 32, 32)
    _damage(tmp_path, writers, "t10k-images-idx3-ubyte", header + bytes(writers.test_count * 32 * 32))
    with pytest.raises(DatasetError, match="holds 32x32 images but mnist images are 28x28"):
        load_dataset("mnist", "test", root=tmp_path)


def test_too_few_training_images_for_a_validation_split(
    tmp_path: Path, writers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only a spec that itself holds too few training images can get past the official-count check.
    small = dataclasses.replace(get_spec("mnist"), official_train_count=100)
    monkeypatch.setattr(specs, "_SPECS", (small, *specs._SPECS[1:]))
    writers.write_idx_dataset(
        tmp_path, writers.make_part("mnist", 100, 1), writers.make_part("mnist", writers.test_count, 2)
    )
    with pytest.raises(DatasetError, match="only 100 images"):
        load_dataset("mnist", "train", root=tmp_path)
    assert len(load_dataset("mnist", "test", root=tmp_path)) == writers.test_count
