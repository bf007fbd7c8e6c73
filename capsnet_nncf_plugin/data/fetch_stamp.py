"""The record a successful fetch leaves behind, so the next fetch can return without re-hashing anything.

Digests are verified when files are fetched. The stamp then lists each file's size and modification time;
while they are unchanged the files are the verified ones, and checking that costs a few ``stat`` calls,
which matters because ``capsq data fetch`` runs before every test session.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.atomic_file import write_bytes_atomically

STAMP_NAME = ".capsq-fetch.json"
_STAMP_VERSION = 1


def write_stamp(directory: Path, files: Sequence[Path], source_description: str) -> None:
    """Record ``files`` (all inside ``directory``) as fetched and verified from ``source_description``."""
    entries = {}
    for path in files:
        status = path.stat()
        entries[path.name] = {"size": status.st_size, "mtime_ns": status.st_mtime_ns}
    record = {"version": _STAMP_VERSION, "source": source_description, "files": entries}
    write_bytes_atomically(directory / STAMP_NAME, json.dumps(record, indent=2, sort_keys=True).encode())


def read_stamp(directory: Path) -> dict[str, Any] | None:
    """The stamp in ``directory``, or None if there is none or it cannot be parsed."""
    try:
        record = json.loads((directory / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != _STAMP_VERSION:
        return None
    if not isinstance(record.get("files"), dict) or not record["files"]:
        return None
    return record


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


def stamped_source(directory: Path) -> str | None:
    """The source a valid stamp records, or None."""
    record = read_stamp(directory)
    return str(record.get("source")) if record is not None and stamp_is_valid(directory) else None
