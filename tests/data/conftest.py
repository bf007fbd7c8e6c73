"""Fixtures for the data tests: small synthetic files in each official format, and a local HTTP server.

Every test runs with ``$CAPSQ_CACHE`` pointing at its own temporary folder and ``$CAPSQ_DATA`` unset, so
nothing a developer has cached or configured leaks in; the real cache location is captured first for the
tests that check the real datasets.

The loader holds every dataset to its official image counts and checksums, which small synthetic files
cannot meet. So, by default, each test sees specs whose official counts are the synthetic ones
(``SYNTHETIC_TRAIN_COUNT`` / ``SYNTHETIC_TEST_COUNT``) and no published checksums; a test that asks for
the ``official_dataset_facts`` or ``real_cache_dir`` fixture sees the real ones.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import stat
import struct
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from capsnet_nncf_plugin.data import VALIDATION_SIZE, cache_dir, get_spec, integrity, specs

# Captured at import time, before the autouse fixture below redirects $CAPSQ_CACHE for each test.
REAL_CACHE_DIR = cache_dir()

# Just enough training images to hold out the 5,000-image validation split and keep a few for "train".
SYNTHETIC_TRAIN_COUNT = VALIDATION_SIZE + 12
SYNTHETIC_TEST_COUNT = 9


@pytest.fixture(autouse=True)
def isolated_data_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPSQ_DATA", raising=False)
    monkeypatch.setenv("CAPSQ_CACHE", str(tmp_path / "capsq-cache"))


@pytest.fixture
def official_dataset_facts() -> None:
    """Requested by a test that needs the real official counts and checksums (see the module docstring)."""


@pytest.fixture(autouse=True)
def synthetic_dataset_facts(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    integrity.forget_verified()  # a file rewritten within one clock tick keeps its identity
    if {"official_dataset_facts", "real_cache_dir"} & set(request.fixturenames):
        return
    synthetic_specs = tuple(
        dataclasses.replace(
            spec, official_train_count=SYNTHETIC_TRAIN_COUNT, official_test_count=SYNTHETIC_TEST_COUNT
        )
        for spec in specs._SPECS
    )
    monkeypatch.setattr(specs, "_SPECS", synthetic_specs)
    monkeypatch.setattr(integrity, "published_digests", lambda spec: {})


@pytest.fixture
def real_cache_dir() -> Path:
    """The cache location the test session started with (where `capsq data fetch` put real data)."""
    return REAL_CACHE_DIR


@dataclass
class SyntheticPart:
    """Images ``uint8 [N, C, H, W]`` and labels ``int64 [N]`` as a dataset should decode them."""

    images: np.ndarray
    labels: np.ndarray


def make_part(name: str, count: int, seed: int) -> SyntheticPart:
    spec = get_spec(name)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, *spec.image_shape), dtype=np.uint8)
    labels = rng.integers(0, spec.num_classes, size=count).astype(np.int64)
    return SyntheticPart(images=images, labels=labels)


def idx_images_bytes(images: np.ndarray) -> bytes:
    count, _, rows, columns = images.shape
    return struct.pack(">IIII", 2051, count, rows, columns) + images.tobytes()


def idx_labels_bytes(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def write_idx_dataset(
    directory: Path, train: SyntheticPart, test: SyntheticPart, gzipped: bool = True
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    contents = {
        "train-images-idx3-ubyte": idx_images_bytes(train.images),
        "train-labels-idx1-ubyte": idx_labels_bytes(train.labels),
        "t10k-images-idx3-ubyte": idx_images_bytes(test.images),
        "t10k-labels-idx1-ubyte": idx_labels_bytes(test.labels),
    }
    for name, content in contents.items():
        if gzipped:
            (directory / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
        else:
            (directory / name).write_bytes(content)


def cifar_batch_pickle(part: SyntheticPart) -> bytes:
    # Protocol 4 keeps bytes as bytes (protocol 2 from Python 3 would route them through _codecs.encode,
    # which the official Python 2 pickles never reference and the restricted unpickler refuses).
    batch = {
        b"batch_label": b"synthetic batch",
        b"labels": [int(label) for label in part.labels],
        b"data": part.images.reshape(len(part.images), -1),
        b"filenames": [f"image_{index}.png".encode() for index in range(len(part.images))],
    }
    return pickle.dumps(batch, protocol=4)


def cifar_batches(train: SyntheticPart, test: SyntheticPart) -> dict[str, bytes]:
    chunks = np.array_split(np.arange(len(train.labels)), 5)
    batches = {
        f"data_batch_{index + 1}": cifar_batch_pickle(SyntheticPart(train.images[chunk], train.labels[chunk]))
        for index, chunk in enumerate(chunks)
    }
    batches["test_batch"] = cifar_batch_pickle(test)
    return batches


def write_cifar_archive(
    archive: Path, batches: dict[str, bytes], extra_members: dict[str, bytes] | None = None
) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for member_name, content in {
            **{f"cifar-10-batches-py/{name}": data for name, data in batches.items()},
            **(extra_members or {}),
        }.items():
            info = tarfile.TarInfo(member_name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def write_cifar_folder(directory: Path, batches: dict[str, bytes]) -> None:
    folder = directory / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in batches.items():
        (folder / name).write_bytes(content)


def write_svhn_mat(path: Path, part: SyntheticPart) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw_labels = np.where(part.labels == 0, 10, part.labels).astype(np.uint8).reshape(-1, 1)
    # Official layout: X is [H, W, C, N].
    scipy.io.savemat(path, {"X": part.images.transpose(2, 3, 1, 0), "y": raw_labels})


@dataclass
class SyntheticDatasets:
    """One directory holding all four datasets in their official layouts, with the expected contents."""

    root: Path
    parts: dict[str, dict[str, SyntheticPart]] = field(default_factory=dict)

    def directory(self, name: str) -> Path:
        return self.root / name

    def md5_by_filename(self, name: str) -> dict[str, str]:
        return {
            path.name: hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            for path in sorted(self.directory(name).iterdir())
            if path.is_file()
        }


@pytest.fixture(scope="session")
def synthetic_datasets(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDatasets:
    """All four datasets as small synthetic files (read-only: copy before damaging one)."""
    datasets = SyntheticDatasets(root=tmp_path_factory.mktemp("synthetic-official"))
    for seed, name in enumerate(("mnist", "fashion-mnist", "cifar10", "svhn")):
        train = make_part(name, SYNTHETIC_TRAIN_COUNT, seed=2 * seed)
        test = make_part(name, SYNTHETIC_TEST_COUNT, seed=2 * seed + 1)
        datasets.parts[name] = {"train": train, "test": test}
    write_idx_dataset(datasets.directory("mnist"), **datasets.parts["mnist"])
    write_idx_dataset(datasets.directory("fashion-mnist"), **datasets.parts["fashion-mnist"])
    write_cifar_archive(
        datasets.directory("cifar10") / "cifar-10-python.tar.gz", cifar_batches(**datasets.parts["cifar10"])
    )
    write_svhn_mat(datasets.directory("svhn") / "train_32x32.mat", datasets.parts["svhn"]["train"])
    write_svhn_mat(datasets.directory("svhn") / "test_32x32.mat", datasets.parts["svhn"]["test"])
    return datasets


@dataclass
class LocalServer:
    """A file server on 127.0.0.1; ``requests`` lists every path asked for."""

    url: str
    requests: list[str]


class _FileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; ``/truncated/<file>`` promises more bytes than it sends, then hangs up."""

    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path.startswith("/truncated/"):
            content = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(content) + 1000))
            self.end_headers()
            self.wfile.write(content)
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@pytest.fixture
def serve_directory() -> Iterator:
    """Factory: ``serve_directory(path) -> LocalServer``; every server is shut down after the test."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path) -> LocalServer:
        requests: list[str] = []
        handler_class = type("Handler", (_FileHandler,), {"requests": requests})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler_class, directory=str(directory))
        )
        server.daemon_threads = True
        # A short poll interval makes shutdown() at teardown return in milliseconds instead of 0.5 s.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return LocalServer(url=f"http://127.0.0.1:{server.server_address[1]}", requests=requests)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Factory: ``fake_tool(name, script)`` puts an executable shell script first on ``$PATH``."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def install(name: str, script: str) -> Path:
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    return install


class SyntheticFileWriters:
    """The helpers above, handed to tests through the ``writers`` fixture.

    Test modules do not import conftest: with several conftest.py files in the tree the module name
    ``conftest`` is ambiguous.
    """

    train_count = SYNTHETIC_TRAIN_COUNT
    test_count = SYNTHETIC_TEST_COUNT
    make_part = staticmethod(make_part)
    part = SyntheticPart
    idx_images_bytes = staticmethod(idx_images_bytes)
    idx_labels_bytes = staticmethod(idx_labels_bytes)
    write_idx_dataset = staticmethod(write_idx_dataset)
    cifar_batch_pickle = staticmethod(cifar_batch_pickle)
    cifar_batches = staticmethod(cifar_batches)
    write_cifar_archive = staticmethod(write_cifar_archive)
    write_cifar_folder = staticmethod(write_cifar_folder)
    write_svhn_mat = staticmethod(write_svhn_mat)


@pytest.fixture
def writers() -> type[SyntheticFileWriters]:
    return SyntheticFileWriters
