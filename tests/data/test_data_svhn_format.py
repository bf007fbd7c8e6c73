"""SVHN format-2 .mat files: layout transposition, the 10-means-0 label rule, damaged files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.errors import DatasetError


def test_round_trip_transposes_to_nchw_and_maps_label_10_to_0(synthetic_datasets) -> None:
    expected = synthetic_datasets.parts["svhn"]
    test = load_dataset("svhn", "test", root=synthetic_datasets.root)
    assert test.images.shape == (len(expected["test"].labels), 3, 32, 32)
    assert test.images.is_contiguous()
    assert np.array_equal(test.images.numpy(), expected["test"].images)
    assert np.array_equal(test.labels.numpy(), expected["test"].labels)
    raw = scipy.io.loadmat(synthetic_datasets.directory("svhn") / "test_32x32.mat")["y"].reshape(-1)
    assert 10 in raw.tolist() and 0 not in raw.tolist()  # the file itself uses 10 for the digit 0
    train = load_dataset("svhn", "train", root=synthetic_datasets.root)
    assert len(train) == len(expected["train"].labels) - 5000


def test_labels_outside_1_to_10_are_rejected(tmp_path: Path, writers) -> None:
    part = writers.make_part("svhn", writers.test_count, 1)
    labels = np.ones((writers.test_count, 1))
    labels[1:3, 0] = [0, 11]
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": part.images.transpose(2, 3, 1, 0), "y": labels})
    with pytest.raises(DatasetError, match=r"labels outside 1\.\.10"):
        load_dataset("svhn", "test", root=tmp_path)


def test_wrong_pixel_layout_is_rejected(tmp_path: Path) -> None:
    scipy.io.savemat(
        tmp_path / "test_32x32.mat", {"X": np.zeros((3, 32, 32, 2), np.uint8), "y": np.ones((2, 1))}
    )
    with pytest.raises(DatasetError, match=r"'X' is uint8 \[3, 32, 32, 2\], expected uint8 \[32, 32, 3, N\]"):
        load_dataset("svhn", "test", root=tmp_path)


def test_truncated_mat_file(tmp_path: Path, synthetic_datasets) -> None:
    source = synthetic_datasets.directory("svhn") / "test_32x32.mat"
    (tmp_path / "test_32x32.mat").write_bytes(source.read_bytes()[:5000])
    with pytest.raises(
        DatasetError,
        # Cut inside 'y': the variable table no longer lists it, so the header check reports it.
        match=r"test_32x32\.mat (is not a readable MATLAB file|lacks a 'y' variable).*capsq data fetch svhn",
    ):
        load_dataset("svhn", "test", root=tmp_path)


def test_not_a_mat_file(tmp_path: Path, synthetic_datasets) -> None:
    shutil.copy(synthetic_datasets.directory("svhn") / "train_32x32.mat", tmp_path)
    (tmp_path / "test_32x32.mat").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DatasetError, match="not a readable MATLAB file"):
        load_dataset("svhn", "test", root=tmp_path)
