"""Atomic file output: readers never see a half-written file (datasets, checkpoints, reports, models).

Every file the plugin writes is first streamed to a temporary file in the destination's own folder
(so the final ``os.replace`` is a rename on one file system, hence atomic), verified by the caller while it
is still temporary, and only then moved into place. A failure anywhere deletes the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

TEMPORARY_SUFFIX = ".part"


@dataclass
class PendingFile:
    """A temporary file being written; ``path`` is where it lies until it is committed."""

    path: Path
    stream: BinaryIO


def _default_file_mode() -> int:
    # mkstemp creates 0600 files; dataset files should get the usual permissions a plain open() gives.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(destination: str | os.PathLike) -> Iterator[PendingFile]:
    """Yield a :class:`PendingFile` next to ``destination``; move it onto ``destination`` on clean exit.

    Verify the content inside the ``with`` block (flush ``pending.stream`` first if the check re-reads
    ``pending.path``): raising there discards the temporary file and leaves any existing ``destination``
    untouched.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=TEMPORARY_SUFFIX, dir=destination.parent
    )
    temporary_path = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            yield PendingFile(path=temporary_path, stream=stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary_path, _default_file_mode())
        os.replace(temporary_path, destination)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


def write_bytes_atomically(destination: str | os.PathLike, content: bytes) -> None:
    """Write ``content`` to ``destination`` so readers see either the old file or the complete new one."""
    with atomic_output(destination) as pending:
        pending.stream.write(content)


def write_text_atomically(destination: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``destination`` atomically."""
    write_bytes_atomically(destination, text.encode("utf-8"))
