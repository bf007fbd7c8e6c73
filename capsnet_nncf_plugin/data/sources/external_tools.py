"""Running the registry clients (npm, apt-get, dpkg) and turning their failures into DatasetErrors."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from capsnet_nncf_plugin.errors import DatasetError

_OUTPUT_TAIL_CHARS = 800


def require_tool(tool: str, purpose: str, alternatives: str) -> str:
    """The full path of ``tool``; DatasetError naming it and the ``alternatives`` when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        raise DatasetError(f"`{tool}` is not installed but is needed to {purpose}; {alternatives}")
    return path


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _OUTPUT_TAIL_CHARS else "..." + text[-_OUTPUT_TAIL_CHARS:]


def run_tool(
    argv: Sequence[str],
    cwd: Path,
    timeout_s: float,
    failure_advice: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``cwd`` capturing output; DatasetError with its last output lines when it fails."""
    command_text = " ".join(argv)
    try:
        completed = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        raise DatasetError(
            f"`{command_text}` did not finish within {timeout_s:.0f} s; {failure_advice}"
        ) from error
    except OSError as error:
        raise DatasetError(f"`{command_text}` could not be started ({error}); {failure_advice}") from error
    if completed.returncode != 0:
        output = _tail(completed.stderr or completed.stdout)
        raise DatasetError(
            f"`{command_text}` failed with exit code {completed.returncode}: {output!r}; {failure_advice}"
        )
    return completed
