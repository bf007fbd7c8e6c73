"""Dataset content is proven before it is used: recorded digests, published checksums, official counts.

Each case of the hostile-user study ("bad input never gives a silent wrong answer") is one test here: a
structurally valid but altered file, a consistent but cut-down split, an absurd header. Most use the small
synthetic files of conftest.py; the cases that need the official checksums copy the real MNIST /
Fashion-MNIST test files (a few MB) from the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from capsnet_nncf_plugin.cli import main
from capsnet_nncf_plugin.data import dataset_cache_dir, dataset_status, fetch_dataset, integrity, load_dataset
from capsnet_nncf_plugin.data.fetch_stamp import STAMP_NAME, read_stamp, recorded_sha256, write_stamp
from capsnet_nncf_plugin.data.sources.official import EXTRACTED_MD5
from capsnet_nncf_plugin.errors import DatasetError

# The real lookup, captured before the autouse fixture of conftest.py replaces it for synthetic files.
PUBLISHED_DIGESTS = integrity.published_digests

TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _one_line(message: str) -> str:
    assert "\n" not in message, message
    return message


def _fetched_copy(source: Path, target: Path) -> Path:
    """``source``'s files in ``target``, stamped as ``capsq data fetch`` stamps what it verified."""
    shutil.copytree(source, target)
    write_stamp(target, sorted(p for p in target.iterdir() if p.is_file()), "test fetch")
    return target


def _real_test_files(real_cache_dir: Path, name: str, tmp_path: Path, gzipped: bool) -> Path:
    """The real test split of ``name`` copied into ``tmp_path/<name>/`` (skipped when not fetched)."""
    source = real_cache_dir / "datasets" / name
    suffix = ".gz" if gzipped else ""
    files = [source / f"{base}{suffix}" for base in TEST_FILES]
    if not all(path.is_file() for path in files):
        message = f"{name} is not in the cache {real_cache_dir}; run: capsq data fetch {name}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (missing data is an error under CI)")
        pytest.skip(message)
    target = tmp_path / name
    target.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, target / path.name)
    return target


def _move_labels(path: Path, count: int, header_size: int = 8) -> None:
    """Move ``count`` labels of an IDX labels file to another valid class: the file stays well-formed."""
    data = bytearray(path.read_bytes())
    for index in range(header_size, header_size + count):
        data[index] = (data[index] + 1) % 10
    path.write_bytes(bytes(data))


# --- 500 test labels moved to other valid classes ---------------------------------------------------------


def test_moved_labels_in_the_cache_are_caught_by_the_fetch_digest(synthetic_datasets) -> None:
    directory = _fetched_copy(synthetic_datasets.directory("mnist"), dataset_cache_dir("mnist"))
    labels = directory / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[8:13] = bytes((value + 1) % 10 for value in content[8:13])
    labels.write_bytes(gzip.compress(bytes(content)))  # re-gzipped: valid CRC, valid labels, wrong ones
    assert len(load_dataset("mnist", "val")) == 5000  # the training files are untouched
    with pytest.raises(DatasetError) as raised:
        load_dataset("mnist", "test")
    message = _one_line(str(raised.value))
    assert str(labels) in message and "changed after `capsq data fetch` verified it" in message
    assert message.endswith("run: capsq data fetch mnist --force")


def test_moved_real_labels_in_a_data_root_fail_capsq_eval_instead_of_a_wrong_accuracy(
    real_cache_dir: Path, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "data"
    directory = _real_test_files(real_cache_dir, "mnist", root, gzipped=False)
    _move_labels(directory / "t10k-labels-idx1-ubyte", 500)
    argv = ["eval", "--model", "zoo:shallowcaps-mnist", "--limit", "500", "--data-root", str(root)]
    assert main([*argv, "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("capsq eval: error: ") and error.count("\n") == 1
    assert str(directory / "t10k-labels-idx1-ubyte") in error
    assert "does not match the published checksum of the official mnist file" in error
    assert "replace it with the official file, or remove it and run: capsq data fetch mnist" in error


# --- flipped pixel bytes, re-gzipped altered files ---------------------------------------------------------


def test_flipped_pixel_bytes_in_the_cache(synthetic_datasets) -> None:
    directory = _fetched_copy(
        synthetic_datasets.directory("fashion-mnist"), dataset_cache_dir("fashion-mnist")
    )
    images = directory / "t10k-images-idx3-ubyte.gz"
    content = bytearray(gzip.decompress(images.read_bytes()))
    content[100] ^= 0xFF
    images.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz changed after .*--force$"):
        load_dataset("fashion-mnist", "test")


def test_flipped_real_pixel_bytes_in_a_data_root(real_cache_dir: Path, tmp_path: Path) -> None:
    directory = _real_test_files(real_cache_dir, "mnist", tmp_path, gzipped=False)
    assert len(load_dataset("mnist", "test", root=tmp_path)) == 10_000  # the official files pass
    images = directory / "t10k-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[5000] ^= 0x01
    images.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte does not match the published checksum"):
        load_dataset("mnist", "test", root=tmp_path)


def test_regzipped_altered_real_file_in_capsq_data(
    real_cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The registry's .gz files are recompressed, so only their content digest can vouch for them.
    directory = _real_test_files(real_cache_dir, "fashion-mnist", tmp_path, gzipped=True)
    monkeypatch.setenv("CAPSQ_DATA", str(tmp_path))
    assert len(load_dataset("fmnist", "test")) == 10_000
    labels = directory / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[8] = (content[8] + 3) % 10
    labels.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DatasetError) as raised:
        load_dataset("fmnist", "test")
    message = _one_line(str(raised.value))
    assert str(labels) in message and "does not match the published checksum" in message
    assert "Debian package dataset-fashion-mnist" in message


def test_a_cache_without_a_stamp_is_checked_against_the_published_digests(
    real_cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _real_test_files(real_cache_dir, "mnist", tmp_path / "cache" / "datasets", gzipped=False)
    monkeypatch.setenv("CAPSQ_CACHE", str(tmp_path / "cache"))
    _move_labels(directory / "t10k-labels-idx1-ubyte", 1)
    with pytest.raises(DatasetError, match=r"published checksum.*; run: capsq data fetch mnist --force$"):
        load_dataset("mnist", "test")


def test_extracted_cifar_batches_are_checked_against_their_published_md5(
    tmp_path: Path, writers, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = writers.cifar_batches(
        writers.make_part("cifar10", writers.train_count, 1),
        writers.make_part("cifar10", writers.test_count, 2),
    )
    writers.write_cifar_folder(tmp_path, batches)
    monkeypatch.setattr(integrity, "published_digests", PUBLISHED_DIGESTS)
    monkeypatch.setitem(
        EXTRACTED_MD5, "cifar10", {name: hashlib.md5(data).hexdigest() for name, data in batches.items()}
    )
    assert len(load_dataset("cifar10", "test", root=tmp_path)) == writers.test_count
    test_batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    test_batch.write_bytes(batches["test_batch"].replace(b"image_0.png", b"image_X.png"))
    with pytest.raises(DatasetError, match=r"test_batch does not match the published checksum.*official MD5"):
        load_dataset("cifar10", "test", root=tmp_path)


# --- a split cut down to consistent records ----------------------------------------------------------------


def test_real_test_split_cut_to_9000_consistent_records(real_cache_dir: Path, tmp_path: Path) -> None:
    directory = _real_test_files(real_cache_dir, "mnist", tmp_path, gzipped=False)
    images, labels = (directory / name for name in TEST_FILES)
    images.write_bytes(struct.pack(">IIII", 2051, 9000, 28, 28) + images.read_bytes()[16 : 16 + 9000 * 784])
    labels.write_bytes(struct.pack(">II", 2049, 9000) + labels.read_bytes()[8 : 8 + 9000])
    with pytest.raises(DatasetError) as raised:
        load_dataset("mnist", "test", root=tmp_path)
    message = _one_line(str(raised.value))
    assert "says it holds 9,000 images but the official mnist test set has 10,000" in message
    assert str(images) in message and "capsq data fetch mnist --force" in message


def test_cut_down_svhn_and_cifar_splits(tmp_path: Path, writers) -> None:
    short = writers.make_part("svhn", writers.test_count - 1, 1)
    writers.write_svhn_mat(tmp_path / "svhn" / "test_32x32.mat", short)
    with pytest.raises(DatasetError, match=r"says it holds 8 images but the official svhn test set has 9"):
        load_dataset("svhn", "test", root=tmp_path)
    batches = writers.cifar_batches(
        writers.make_part("cifar10", writers.train_count, 1), writers.make_part("cifar10", 8, 2)
    )
    writers.write_cifar_folder(tmp_path / "cifar10", batches)
    with pytest.raises(DatasetError, match=r"hold 8 images and 8 labels but the official test set has 9"):
        load_dataset("cifar10", "test", root=tmp_path)


# --- absurd and inconsistent IDX headers -------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True], ids=["raw", "gz"])
def test_a_count_of_0xffffffff_is_refused_before_any_allocation(tmp_path: Path, writers, gzipped) -> None:
    writers.write_idx_dataset(
        tmp_path,
        writers.make_part("mnist", writers.train_count, 1),
        writers.make_part("mnist", writers.test_count, 2),
        gzipped=gzipped,
    )
    content = struct.pack(">IIII", 2051, 0xFFFFFFFF, 28, 28) + bytes(writers.test_count * 784)
    name = "t10k-images-idx3-ubyte" + (".gz" if gzipped else "")
    (tmp_path / name).write_bytes(gzip.compress(content) if gzipped else content)
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as raised:
            load_dataset("mnist", "test", root=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "says it holds 4,294,967,295 images but the official mnist test set has 9" in str(raised.value)
    assert peak < 1 << 20  # numpy reports its allocations to tracemalloc: nothing big was attempted


def test_header_that_contradicts_the_file_size(tmp_path: Path, writers) -> None:
    writers.write_idx_dataset(
        tmp_path,
        writers.make_part("mnist", writers.train_count, 1),
        writers.make_part("mnist", writers.test_count, 2),
        gzipped=False,
    )
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[: 16 + 5 * 784])  # header still says 9 images
    with pytest.raises(DatasetError, match=rf"{images.name} is truncated \(expected 7056 bytes of pixels"):
        load_dataset("mnist", "test", root=tmp_path)


# --- capsq data info ---------------------------------------------------------------------------------------


def _info_line(capsys, name: str) -> str:
    assert main(["data", "info", name]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(name)]
    return line


def test_data_info_shows_a_problem_for_a_corrupted_header_instead_of_its_count(
    synthetic_datasets, capsys
) -> None:
    directory = _fetched_copy(synthetic_datasets.directory("mnist"), dataset_cache_dir("mnist"))
    images = directory / "t10k-images-idx3-ubyte.gz"
    content = bytearray(gzip.decompress(images.read_bytes()))
    content[4:8] = b"\xff\xff\xff\xff"
    images.write_bytes(gzip.compress(bytes(content)))
    line = _info_line(capsys, "mnist")
    assert "4,294,967,295" in line and "PROBLEM" in line  # named in the problem, not as a count
    columns = line.split()
    assert columns[3:6] == ["12", "5,000", "-"]  # train, val intact; no test count
    assert "says it holds 4,294,967,295 images but the official mnist test set has 9" in line
    assert "capsq data fetch mnist --force" in line


def test_data_info_shows_a_problem_for_an_altered_file(synthetic_datasets, capsys) -> None:
    directory = _fetched_copy(synthetic_datasets.directory("mnist"), dataset_cache_dir("mnist"))
    labels = directory / "train-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[-1] = (content[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(content)))
    line = _info_line(capsys, "mnist")
    assert line.split()[3:6] == ["-", "-", "9"]
    assert f"PROBLEM: {labels} changed after `capsq data fetch` verified it" in line


def test_data_info_shows_a_problem_for_a_truncated_file(synthetic_datasets, tmp_path, monkeypatch, capsys):
    shutil.copytree(synthetic_datasets.directory("svhn"), tmp_path / "svhn")
    train = tmp_path / "svhn" / "train_32x32.mat"
    train.write_bytes(train.read_bytes()[:3000])
    monkeypatch.setenv("CAPSQ_DATA", str(tmp_path))
    line = _info_line(capsys, "svhn")
    assert line.split()[3:6] == ["-", "-", "9"] and f"PROBLEM: SVHN file {train}" in line


def test_data_fetch_refuses_cached_files_changed_behind_the_stamp(tmp_path: Path, writers, capsys) -> None:
    train = writers.make_part("mnist", writers.train_count, 1)
    writers.write_idx_dataset(
        tmp_path / "raw", train, writers.make_part("mnist", writers.test_count, 2), False
    )
    directory = _fetched_copy(tmp_path / "raw", dataset_cache_dir("mnist"))
    labels = directory / "t10k-labels-idx1-ubyte"
    status = labels.stat()
    _move_labels(labels, 1)
    os.utime(labels, ns=(status.st_atime_ns, status.st_mtime_ns))  # size and time kept: the stamp is fooled
    assert main(["data", "fetch", "mnist", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("capsq data: error: mnist in ") and error.count("\n") == 1
    assert str(labels) in error and error.rstrip().endswith("run: capsq data fetch mnist --force")


# --- the fetch stamp records digests; verification runs once per file and process -------------------------


def test_fetch_records_each_files_sha256_and_upgrades_an_old_stamp_offline(
    synthetic_datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = dataset_cache_dir("mnist")
    shutil.copytree(synthetic_datasets.directory("mnist"), directory)
    files = sorted(p for p in directory.iterdir() if p.is_file())
    # A version 1 stamp, as fetches wrote before digests were recorded.
    entries = {p.name: {"size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in files}
    (directory / STAMP_NAME).write_text(json.dumps({"version": 1, "source": "old", "files": entries}))
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in files}
    monkeypatch.setattr(
        integrity,
        "published_digests",
        lambda spec: {n: (integrity.PublishedDigest("md5", d, False, "test"),) for n, d in md5.items()},
    )

    def no_network(*args, **kwargs):
        raise AssertionError("an intact old stamp must be upgraded without fetching")

    monkeypatch.setattr("capsnet_nncf_plugin.data.fetch._fetch_registry", no_network)
    assert fetch_dataset("mnist", progress=False) == directory
    record = read_stamp(directory)
    assert record is not None and record["version"] == 2 and record["source"] == "old"
    for path in files:
        assert recorded_sha256(directory, path.name) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_file_is_hashed_once_per_process_until_it_changes(
    synthetic_datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _fetched_copy(synthetic_datasets.directory("mnist"), dataset_cache_dir("mnist"))
    hashed: list[str] = []
    original = integrity._raw_digests

    def counting(path: Path, algorithms):
        hashed.append(path.name)
        return original(path, algorithms)

    monkeypatch.setattr(integrity, "_raw_digests", counting)
    load_dataset("mnist", "train")
    load_dataset("mnist", "val")
    load_dataset("mnist", "train")
    assert sorted(hashed) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    labels = directory / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes())  # same bytes, but rewritten: proven again
    load_dataset("mnist", "val")
    assert hashed.count("train-labels-idx1-ubyte.gz") == 2


def test_real_cached_datasets_verify(real_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPSQ_CACHE", str(real_cache_dir))
    statuses = [s for s in dataset_status(["mnist", "fashion-mnist"]) if s.found]
    if not statuses:
        pytest.skip("no real dataset in the cache; run: capsq data fetch all-registry")
    for status in statuses:
        assert status.problem is None, status.problem
        assert np.isin(list(status.split_counts.values()), [5_000, 10_000, 55_000]).all()
