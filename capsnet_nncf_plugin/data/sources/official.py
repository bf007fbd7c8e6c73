"""The datasets' official download sites and their published MD5 checksums, kept as plain data.

A source is a base URL plus ``{filename: md5}``: a mirror is the same source with another base URL (the
checksums still apply), and a test can describe a local server with its own files and checksums.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urljoin

from capsnet_nncf_plugin.data.sources.digests import file_digest
from capsnet_nncf_plugin.data.sources.http_download import download_file

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfficialSource:
    """Files under one base URL, each with the MD5 its publisher lists."""

    base_url: str
    md5_by_filename: Mapping[str, str] = field(hash=False)

    def with_base_url(self, base_url: str) -> OfficialSource:
        """The same files and checksums, served from ``base_url`` (a mirror)."""
        return replace(self, base_url=base_url)

    def url_for(self, filename: str) -> str:
        """The download URL of ``filename``."""
        base = self.base_url if self.base_url.endswith("/") else f"{self.base_url}/"
        return urljoin(base, filename)

    def describe(self) -> str:
        """A short human description, e.g. for ``capsq data fetch`` output."""
        return f"official download from {self.base_url}"


OFFICIAL_SOURCES: dict[str, OfficialSource] = {
    "mnist": OfficialSource(
        base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        md5_by_filename={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": OfficialSource(
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        md5_by_filename={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "cifar10": OfficialSource(
        base_url="https://www.cs.toronto.edu/~kriz/",
        md5_by_filename={"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    ),
    "svhn": OfficialSource(
        base_url="http://ufldl.stanford.edu/housenumbers/",
        md5_by_filename={
            "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
            "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
        },
    ),
}


#: MD5 sums of the files inside official archives, for copies a user extracted themselves. The CIFAR-10
#: batches' sums are the ones torchvision checks (``torchvision.datasets.CIFAR10.train_list``/``test_list``).
EXTRACTED_MD5: dict[str, dict[str, str]] = {
    "cifar10": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    },
}


def download_official_files(
    source: OfficialSource,
    target_dir: Path,
    progress: bool = True,
    advice: str = "",
) -> list[Path]:
    """Download every file of ``source`` into ``target_dir``, skipping files already there and intact.

    Files are checked one by one, so an interrupted fetch resumes with the files still missing.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    downloaded: list[Path] = []
    for filename, expected_md5 in source.md5_by_filename.items():
        destination = target_dir / filename
        if destination.is_file() and file_digest(destination, "md5") == expected_md5:
            _LOG.info("%s is already present and intact", destination)
        else:
            download_file(
                source.url_for(filename), destination, expected_md5, progress=progress, advice=advice
            )
        downloaded.append(destination)
    return downloaded
