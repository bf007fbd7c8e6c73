"""File digests used to prove a fetched file is the expected one."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

_CHUNK_SIZE = 1 << 20


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of ``path``'s bytes with ``algorithm`` (``"md5"``, ``"sha256"``)."""
    # md5 only checks integrity against published sums, so it is not used for security.
    digest = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def content_sha256(path: Path, gzipped: bool) -> str:
    """SHA-256 of the file's content, after gunzipping when ``gzipped``.

    Registry packages recompress files (Debian's gzip output differs from the original's), so their
    compressed bytes cannot be pinned, but the decompressed content can.
    """
    digest = hashlib.sha256()
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()
