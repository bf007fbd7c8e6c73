"""The record a successful fetch leaves behind: what was fetched, from where, and each file's SHA-256.

Digests are verified when files are fetched. The stamp then lists each file's size and modification time,
so the next fetch can tell in a few ``stat`` calls that the files are the verified ones (which matters
because ``capsq data fetch`` runs before every test session), and the SHA-256 of each file's bytes, so
that loading can prove a file is still the one fetched however it was changed (see
:mod:`capsnet_nncf_plugin.data.integrity`). Version 1 stamps, written before digests were recorded, are
still read; ``capsq data fetch`` adds the digests to them after checking the files against the published
ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.atomic_file import write_bytes_atomically
from capsnet_nncf_plugin.data.sources.digests import file_digest

STAMP_NAME = ".capsq-fetch.json"
_STAMP_VERSION = 2
_READABLE_VERSIONS = (1, 2)


def write_stamp(
    directory: Path,
    files: Sequence[Path],
    source_description: str,
    sha256_by_name: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Record ``files`` (all inside ``directory``) as fetched and verified from ``source_description``.

    ``sha256_by_name`` gives digests already computed; the others are computed here. Returns every file's
    SHA-256 by name.
    """
    known = dict(sha256_by_name or {})
    entries = {}
    for path in files:
        status = path.stat()
        digest = known.get(path.name) or file_digest(path, "sha256")
        known[path.name] = digest
        entries[path.name] = {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "sha256": digest}
    record = {"version": _STAMP_VERSION, "source": source_description, "files": entries}
    write_bytes_atomically(directory / STAMP_NAME, json.dumps(record, indent=2, sort_keys=True).encode())
    return {path.name: known[path.name] for path in files}


def read_stamp(directory: Path) -> dict[str, Any] | None:
    """The stamp in ``directory``, or None if there is none or it cannot be parsed."""
    try:
        record = json.loads((directory / STAMP_NAME).read_text())
    # A stamp is our own file: anything unreadable (damaged, not UTF-8, nested absurdly) means "no stamp".
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("version") not in _READABLE_VERSIONS:
        return None
    files = record.get("files")
    if not isinstance(files, dict) or not files or not all(isinstance(e, dict) for e in files.values()):
        return None
    return record


def recorded_sha256(directory: Path, name: str) -> str | None:
    """The SHA-256 the stamp in ``directory`` recorded for file ``name``, or None if it recorded none."""
    record = read_stamp(directory)
    if record is None:
        return None
    digest = record["files"].get(name, {}).get("sha256")
    return digest if isinstance(digest, str) and len(digest) == 64 else None


def stamp_has_digests(directory: Path) -> bool:
    """Whether the stamp records a SHA-256 for every file it lists (version 1 stamps do not)."""
    record = read_stamp(directory)
    return record is not None and all(recorded_sha256(directory, name) for name in record["files"])


def stamp_is_valid(directory: Path) -> bool:
    """Whether every file named by the stamp is still exactly as it was when it was verified."""
    record = read_stamp(directory)
    if record is None:
        return False
    for name, expected in record["files"].items():
        try:
            status = (directory / name).stat()
        except OSError:
            return False
        if (status.st_size, status.st_mtime_ns) != (expected.get("size"), expected.get("mtime_ns")):
            return False
    return True


def stamped_files(directory: Path) -> list[Path]:
    """The files a stamp lists (empty without a stamp)."""
    record = read_stamp(directory)
    return [directory / name for name in record["files"]] if record is not None else []


def stamped_source(directory: Path) -> str | None:
    """The source a valid stamp records, or None."""
    record = read_stamp(directory)
    return str(record.get("source")) if record is not None and stamp_is_valid(directory) else None
