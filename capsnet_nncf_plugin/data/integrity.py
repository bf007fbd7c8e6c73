"""Proof that a dataset file is the expected one, before its content is used.

A structurally valid file can still be wrong: 500 test labels moved to other valid classes decode fine and
silently cost five points of accuracy. So every file a split is read from is compared with a digest:

* the SHA-256 its fetch stamp recorded, when ``capsq data fetch`` put it there (see :mod:`.fetch_stamp`);
* otherwise (a user's own directory, a cache without a stamp) the checksums its publishers list: the
  official MD5 sums, the SHA-256 of the content the registry packages pin (which also covers a copy
  gunzipped by hand), and the per-batch MD5s of the extracted CIFAR-10 folder. A file with a name the
  project knows no checksum for is left to the structural and count checks.

Hashing costs about 0.1 s per 50 MB, so a file is verified once per process and identity (path, size,
modification and change time, inode): loading another split of the same files does not hash again, while
rewriting a file, even with its modification time restored, changes its change time.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from capsnet_nncf_plugin.data.fetch_stamp import recorded_sha256
from capsnet_nncf_plugin.data.remedies import fetch_command
from capsnet_nncf_plugin.data.sources.official import EXTRACTED_MD5, OFFICIAL_SOURCES
from capsnet_nncf_plugin.data.sources.registry import registry_source_for
from capsnet_nncf_plugin.data.specs import DatasetSpec
from capsnet_nncf_plugin.errors import DatasetError

_CHUNK_SIZE = 1 << 20
_GZIP_SUFFIX = ".gz"


@dataclass(frozen=True)
class PublishedDigest:
    """One checksum a publisher lists for a file name.

    ``of_content``: the digest is of the gunzipped content (registry packages recompress files, so only
    their content can be pinned), not of the file's bytes.
    """

    algorithm: str
    hexdigest: str
    of_content: bool
    publisher: str


FileIdentity = tuple[str, int, int, int, int]

#: Files verified in this process, by identity (see the module docstring).
_VERIFIED: set[FileIdentity] = set()


def _identity(path: Path) -> FileIdentity:
    status = path.stat()
    return (str(path.resolve()), status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)


def mark_verified(path: Path) -> None:
    """Remember ``path`` as verified (a fetch just checked it), so loading it does not hash it again."""
    _VERIFIED.add(_identity(path))


def forget_verified() -> None:
    """Forget every verification of this process (for tests that rewrite a file within one clock tick)."""
    _VERIFIED.clear()


def published_digests(spec: DatasetSpec) -> dict[str, tuple[PublishedDigest, ...]]:
    """Every checksum the project knows for ``spec``'s official file names, by file name."""
    digests: dict[str, list[PublishedDigest]] = {}

    def add(name: str, digest: PublishedDigest) -> None:
        digests.setdefault(name, []).append(digest)

    official = OFFICIAL_SOURCES.get(spec.name)
    if official is not None:
        for name, md5 in official.md5_by_filename.items():
            add(name, PublishedDigest("md5", md5, of_content=False, publisher="official MD5 sum"))
    for name, md5 in EXTRACTED_MD5.get(spec.name, {}).items():
        add(name, PublishedDigest("md5", md5, of_content=False, publisher="official MD5 sum"))
    registry = registry_source_for(spec.name)
    if registry is not None:
        publisher = f"SHA-256 pinned for the {registry.describe()}"
        for pinned in registry.files:
            raw_name = pinned.filename.removesuffix(_GZIP_SUFFIX)
            # The same content is valid raw (gunzipped by hand) or gzipped (by anyone, any level).
            add(
                raw_name,
                PublishedDigest("sha256", pinned.content_sha256, of_content=False, publisher=publisher),
            )
            add(
                raw_name + _GZIP_SUFFIX,
                PublishedDigest("sha256", pinned.content_sha256, of_content=True, publisher=publisher),
            )
    return {name: tuple(entries) for name, entries in digests.items()}


def _raw_digests(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashes = {
        name: hashlib.new(name, usedforsecurity=False) if name == "md5" else hashlib.new(name)
        for name in algorithms
    }
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_SIZE):
            for digest in hashes.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def _content_sha256(path: Path) -> str | None:
    """SHA-256 of the gunzipped content, or None when the file is not a valid gzip stream."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK_SIZE):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


def matches_published(path: Path, candidates: tuple[PublishedDigest, ...]) -> bool:
    """Whether ``path`` matches one of ``candidates`` (raw digests first: gunzipping costs more)."""
    raw = [c for c in candidates if not c.of_content]
    if raw:
        actual = _raw_digests(path, {c.algorithm for c in raw})
        if any(actual[c.algorithm] == c.hexdigest for c in raw):
            return True
    content = [c for c in candidates if c.of_content]
    if content and path.name.endswith(_GZIP_SUFFIX):
        actual_content = _content_sha256(path)
        return any(actual_content == c.hexdigest for c in content)
    return False


def verify_dataset_files(spec: DatasetSpec, paths: Iterable[Path], in_cache: bool) -> None:
    """Check each of ``paths`` against its recorded or published digest (see the module docstring).

    ``in_cache``: the files are in the cache ``capsq data fetch`` fills, which decides the advice given.

    Raises:
        DatasetError: a file differs from its digest; the message names the file and the fix.
    """
    for path in paths:
        identity = _identity(path)
        if identity in _VERIFIED:
            continue
        _verify_one(spec, path, in_cache)
        _VERIFIED.add(identity)


def _verify_one(spec: DatasetSpec, path: Path, in_cache: bool) -> None:
    refetch = f"run: {fetch_command(spec)} --force"
    recorded = recorded_sha256(path.parent, path.name)
    if recorded is not None:
        actual = _raw_digests(path, ("sha256",))["sha256"]
        if actual != recorded:
            raise DatasetError(
                f"{path} changed after `capsq data fetch` verified it (SHA-256 {actual[:16]}..., recorded "
                f"{recorded[:16]}...): it is corrupted or was edited; {refetch}"
            )
        return
    candidates = published_digests(spec).get(path.name)
    if not candidates or matches_published(path, candidates):
        return
    publishers = " / ".join(dict.fromkeys(candidate.publisher for candidate in candidates))
    fix = (
        refetch
        if in_cache
        else f"replace it with the official file, or remove it and run: {fetch_command(spec)}"
    )
    raise DatasetError(
        f"{path} does not match the published checksum of the official {spec.name} file ({publishers}): "
        f"it is corrupted, altered or not the official file; {fix}"
    )
