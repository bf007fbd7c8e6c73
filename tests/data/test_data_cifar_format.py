"""CIFAR-10 python batches: archive and folder layouts, and the restricted unpickler."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.data.formats.restricted_unpickler import NumpyArrayUnpickler, load_numpy_pickle
from capsnet_nncf_plugin.errors import DatasetError


def test_archive_round_trip_keeps_channel_major_layout(synthetic_datasets) -> None:
    expected = synthetic_datasets.parts["cifar10"]
    test = load_dataset("CIFAR-10", "test", root=synthetic_datasets.root)
    assert test.images.shape == (len(expected["test"].labels), 3, 32, 32)
    assert np.array_equal(test.images.numpy(), expected["test"].images)
    assert np.array_equal(test.labels.numpy(), expected["test"].labels)
    val = load_dataset("cifar10", "val", root=synthetic_datasets.directory("cifar10"))
    assert np.array_equal(val.images.numpy(), expected["train"].images[-5000:])


def test_extracted_folder_is_read_without_the_archive(tmp_path: Path, writers) -> None:
    train, test = (
        writers.make_part("cifar10", writers.train_count, 5),
        writers.make_part("cifar10", writers.test_count, 6),
    )
    writers.write_cifar_folder(tmp_path, writers.cifar_batches(train, test))
    loaded = load_dataset("cifar10", "train", root=tmp_path)
    assert np.array_equal(loaded.images.numpy(), train.images[: writers.train_count - 5000])
    assert np.array_equal(loaded.labels.numpy(), train.labels[: writers.train_count - 5000])


class _RunsACommand:
    """Pickles as a call to os.system, the classic pickle exploit."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _evil_batches(writers, marker: Path) -> dict[str, bytes]:
    part = writers.make_part("cifar10", 3, 9)
    batches = writers.cifar_batches(writers.make_part("cifar10", 10, 1), part)
    batches["test_batch"] = pickle.dumps(
        {b"data": _RunsACommand(f"touch {marker}"), b"labels": [0, 1, 2]}, protocol=4
    )
    return batches


def test_malicious_pickle_in_the_archive_is_refused_and_never_runs(tmp_path: Path, writers) -> None:
    marker = tmp_path / "pwned"
    writers.write_cifar_archive(
        tmp_path / "cifar10" / "cifar-10-python.tar.gz", _evil_batches(writers, marker)
    )
    with pytest.raises(DatasetError, match=r"refers to posix\.system.*refusing to unpickle"):
        load_dataset("cifar10", "test", root=tmp_path)
    assert not marker.exists()


def test_malicious_pickle_in_the_folder_is_refused_and_never_runs(tmp_path: Path, writers) -> None:
    marker = tmp_path / "pwned"
    writers.write_cifar_folder(tmp_path, _evil_batches(writers, marker))
    with pytest.raises(DatasetError, match=r"test_batch refers to posix\.system"):
        load_dataset("cifar10", "test", root=tmp_path)
    assert not marker.exists()


def test_only_numpy_array_globals_are_allowed() -> None:
    unpickler = NumpyArrayUnpickler(__import__("io").BytesIO(b""), "batch", "fix it")
    # Both numpy 1 and numpy 2 module paths of _reconstruct resolve (the official files use numpy.core).
    assert unpickler.find_class("numpy.core.multiarray", "_reconstruct") is unpickler.find_class(
        "numpy._core.multiarray", "_reconstruct"
    )
    assert unpickler.find_class("numpy", "ndarray") is np.ndarray
    for module, name in [
        ("builtins", "eval"),
        ("subprocess", "Popen"),
        ("_codecs", "encode"),
        ("numpy", "load"),
    ]:
        with pytest.raises(DatasetError, match=f"refers to {module}.{name}"):
            unpickler.find_class(module, name)
    assert load_numpy_pickle(pickle.dumps({b"x": np.arange(3, dtype=np.uint8)}, protocol=4), "b", "f")[
        b"x"
    ].tolist() == [0, 1, 2]


def test_truncated_archive(tmp_path: Path, synthetic_datasets) -> None:
    archive = synthetic_datasets.directory("cifar10") / "cifar-10-python.tar.gz"
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive.read_bytes()[:-5000])
    with pytest.raises(DatasetError, match=r"corrupted or truncated.*capsq data fetch cifar10"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_archive_without_the_batch_and_with_a_traversal_member(tmp_path: Path, writers) -> None:
    batches = writers.cifar_batches(
        writers.make_part("cifar10", 10, 1), writers.make_part("cifar10", writers.test_count, 2)
    )
    del batches["data_batch_3"]
    writers.write_cifar_archive(
        tmp_path / "cifar-10-python.tar.gz", batches, extra_members={"../escaped": b"x"}
    )
    with pytest.raises(DatasetError, match="lacks cifar-10-batches-py/data_batch_3"):
        load_dataset("cifar10", "train", root=tmp_path)
    assert not (tmp_path.parent / "escaped").exists()
    assert len(load_dataset("cifar10", "test", root=tmp_path)) == writers.test_count


def test_batch_with_the_wrong_shape(tmp_path: Path, writers) -> None:
    batches = writers.cifar_batches(writers.make_part("cifar10", 10, 1), writers.make_part("cifar10", 2, 2))
    batches["test_batch"] = pickle.dumps(
        {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=4
    )
    writers.write_cifar_folder(tmp_path, batches)
    with pytest.raises(DatasetError, match="images have 100 values, expected 3072"):
        load_dataset("cifar10", "test", root=tmp_path)
