"""Where load_dataset looks: explicit root, $CAPSQ_DATA, the cache; and what it says when nothing is found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from capsnet_nncf_plugin.data import cache_dir, dataset_cache_dir, dataset_status, load_dataset
from capsnet_nncf_plugin.errors import DatasetError


def test_cache_dir_follows_capsq_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPSQ_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    assert dataset_cache_dir("svhn") == tmp_path / "elsewhere" / "datasets" / "svhn"
    monkeypatch.delenv("CAPSQ_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "capsnet_nncf_plugin"


def test_capsq_data_with_name_subfolders(synthetic_datasets, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPSQ_DATA", str(synthetic_datasets.root))
    assert len(load_dataset("svhn", "test")) == len(synthetic_datasets.parts["svhn"]["test"].labels)
    (status,) = dataset_status(["svhn"])
    assert status.found["test"].origin == "$CAPSQ_DATA"


def test_cache_is_used_when_nothing_else_has_the_files(synthetic_datasets) -> None:
    shutil.copytree(synthetic_datasets.directory("mnist"), dataset_cache_dir("mnist"))
    assert len(load_dataset("mnist", "val")) == 5000


def test_capsq_data_falls_through_to_the_cache(tmp_path: Path, synthetic_datasets, monkeypatch) -> None:
    monkeypatch.setenv("CAPSQ_DATA", str(tmp_path / "empty"))
    shutil.copytree(synthetic_datasets.directory("mnist"), dataset_cache_dir("mnist"))
    assert len(load_dataset("mnist", "test")) == len(synthetic_datasets.parts["mnist"]["test"].labels)


def test_torchvision_layout_is_recognised(tmp_path: Path, synthetic_datasets) -> None:
    shutil.copytree(synthetic_datasets.directory("fashion-mnist"), tmp_path / "FashionMNIST" / "raw")
    assert len(load_dataset("fashion-mnist", "test", root=tmp_path)) > 0


def test_missing_dataset_names_the_places_searched_and_the_fixes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAPSQ_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetError) as raised:
        load_dataset("mnist", "train")
    message = str(raised.value)
    assert "dataset mnist (train files) not found" in message
    assert str(tmp_path / "data" / "mnist") in message and "$CAPSQ_DATA" in message
    assert str(dataset_cache_dir("mnist")) in message and "(cache)" in message
    assert "capsq data fetch mnist" in message

    with pytest.raises(DatasetError) as raised:
        load_dataset("cifar10", "test")
    message = str(raised.value)
    assert "cifar-10-python.tar.gz" in message and "CAPSQ_DATA" in message
    assert "capsq data fetch cifar10 --source official" in message


def test_explicit_root_is_the_only_place_searched(tmp_path: Path, synthetic_datasets) -> None:
    shutil.copytree(synthetic_datasets.directory("mnist"), dataset_cache_dir("mnist"))
    with pytest.raises(DatasetError, match=r"not found; searched: .*\(root\)\. Fix"):
        load_dataset("mnist", "test", root=tmp_path)


def test_status_reports_counts_and_missing_datasets(synthetic_datasets, monkeypatch) -> None:
    monkeypatch.setenv("CAPSQ_DATA", str(synthetic_datasets.root))
    statuses = {status.spec.name: status for status in dataset_status()}
    assert set(statuses) == {"mnist", "fashion-mnist", "cifar10", "svhn"}
    train_count = len(synthetic_datasets.parts["mnist"]["train"].labels)
    assert statuses["mnist"].split_counts == {"train": train_count - 5000, "val": 5000, "test": 9}
    assert statuses["svhn"].split_counts["test"] == 9
    # The CIFAR archive is not decompressed just to count it: the (synthetic) official sizes are reported.
    assert statuses["cifar10"].split_counts == {"train": train_count - 5000, "val": 5000, "test": 9}
    assert all(status.is_complete for status in statuses.values())

    monkeypatch.delenv("CAPSQ_DATA")
    (missing,) = dataset_status(["fmnist"])
    assert not missing.found and not missing.split_counts
    assert missing.fetch_command == "capsq data fetch fashion-mnist"
