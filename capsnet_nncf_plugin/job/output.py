"""A job's output folder, checked before any work and written as one unit.

A run writes several files that describe one result (``model.onnx``, ``summary.json``, ``report.md``,
``allocation.json``, plots). If a rerun into the same folder is interrupted, a folder mixing the new
model with the old report would claim what it does not hold. So a job writes into a hidden staging folder
beside the requested one and swaps it in when it finishes; an interrupted or failed job leaves the old
folder exactly as it was and removes its staging folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from capsnet_nncf_plugin.errors import CapsqError


class OutputFolderError(CapsqError, ValueError):
    """The output folder cannot be written."""


def check_output_folder(path: str | os.PathLike) -> Path:
    """Raise :class:`OutputFolderError` unless a job can create or replace the folder ``path``.

    Checked before any work: the path must be no file, its nearest existing ancestor a folder where a new
    folder can be made (tried: a read-only file system, ``/proc`` or a full disk say so only then).
    """
    text = os.fspath(path)
    if "\x00" in str(text):
        raise OutputFolderError(f"--out {text!r} contains a NUL character; pass a plain folder path")
    folder = Path(text)
    try:
        if folder.exists() and not folder.is_dir():
            raise OutputFolderError(
                f"--out {folder} is a file, not a folder; pass a folder path (it is created)"
            )
        parent = folder.absolute().parent
        ancestor = next(candidate for candidate in (parent, *parent.parents) if candidate.exists())
    except OSError as error:
        raise OutputFolderError(
            f"--out {folder} cannot be used ({error.strerror or error}); pass another path"
        ) from None
    if not ancestor.is_dir():
        raise OutputFolderError(
            f"--out {folder}: {ancestor} is a file, so no folder can be made under it; pass another path"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputFolderError(
            f"--out {folder}: {ancestor} is not writable; pass a folder where you may write"
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".capsq-out-check.", dir=ancestor))
    except OSError as error:
        raise OutputFolderError(
            f"--out {folder}: no folder can be made in {ancestor} ({error.strerror or error}); pass a folder "
            "where you may write"
        ) from None
    return folder


class RunFolder:
    """The output folder of one job, written as one unit (module doc).

    Use it as a context manager; ``stage(name)`` is where to write each file, ``final(name)`` where the file
    will be once the job succeeds (for references inside reports)::

        with RunFolder("reports/run") as folder:
            export_onnx(model, example, folder.stage("model.onnx"))
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = check_output_folder(path)
        self._staging: Path | None = None

    def __enter__(self) -> RunFolder:
        parent = self.path.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._staging = Path(
                tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial", dir=parent)
            )
        except OSError as error:
            raise OutputFolderError(
                f"--out {self.path}: the folder cannot be made ({error.strerror or error}); "
                "pass a folder where you may write"
            ) from None
        return self

    def stage(self, name: str) -> Path:
        """The path to write ``name`` to while the job runs."""
        if self._staging is None:
            raise RuntimeError("RunFolder.stage() is for use inside `with RunFolder(...)`")
        return self._staging / name

    def final(self, name: str) -> Path:
        """Where ``name`` will be once the job has finished."""
        return self.path / name

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        staging, self._staging = self._staging, None
        if staging is None:
            return
        if exc_type is not None:
            shutil.rmtree(staging, ignore_errors=True)
            return
        os.chmod(staging, 0o777 & ~_umask())
        previous = None
        if self.path.exists():
            previous = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old", dir=staging.parent))
            os.rmdir(previous)
            os.replace(self.path, previous)
        os.replace(staging, self.path)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
