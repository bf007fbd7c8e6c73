"""Where the native onnxruntime custom-op library of the ``capsnet`` domain is: :func:`library_path`.

The library (``libcapsnet_ort_ops.so``, built from ``csrc/`` by CMake when the package is installed) lives
inside this package. It exports one symbol, ``RegisterCustomOps``, which onnxruntime calls when a session's
options register the library; docs/runtime.md describes loading it from Python, C and C++.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from capsnet_nncf_plugin.errors import CapsqError

#: File name of the library, as CMake installs it into ``capsnet_nncf_plugin/runtime/``.
LIBRARY_FILE = "libcapsnet_ort_ops.so"
#: Environment variable naming a library file to use instead of the installed one (a development build).
LIBRARY_ENV = "CAPSNET_ORT_OPS_LIBRARY"

_BUILD_HINT = (
    "it is compiled when the package is installed: reinstall it from the repository with "
    "`pip install -e .` (editable) or `pip install .`, which builds it with CMake; or build it in place "
    "with `cmake -S . -B build && cmake --build build -j2 && cmake --install build --prefix .`"
)


class NativeLibraryNotFoundError(CapsqError, FileNotFoundError):
    """The compiled custom-op library is not where the package expects it."""


def library_path() -> Path:
    """Absolute path of the custom-op library to pass to onnxruntime's ``register_custom_ops_library``.

    ``$CAPSNET_ORT_OPS_LIBRARY`` wins when set; otherwise the library installed inside this package (a
    regular install, an editable install, or an in-place CMake build; the newest if there are several). Raises
    :class:`NativeLibraryNotFoundError` naming the fix when there is none.
    """
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise NativeLibraryNotFoundError(
                f"{LIBRARY_ENV}={override} is not a file; point it at a built {LIBRARY_FILE} or unset it "
                f"to use the one installed with the package"
            )
        return path.resolve()
    candidates = list(dict.fromkeys(_candidate_paths()))
    found = [candidate.resolve() for candidate in candidates if candidate.is_file()]
    if found:
        # An editable install can see two copies (an in-place CMake build in the sources and the one pip
        # installed): the one built last is the one that matches the sources.
        return max(dict.fromkeys(found), key=lambda path: path.stat().st_mtime)
    raise NativeLibraryNotFoundError(
        f"the onnxruntime custom-op library {LIBRARY_FILE} of capsnet_nncf_plugin is missing (looked in "
        f"{', '.join(str(candidate) for candidate in candidates) or 'no location'}); {_BUILD_HINT}"
    )


def _candidate_paths() -> Iterator[Path]:
    """Where an installed library can be: next to this module, then every location of the package (an
    editable install keeps the compiled files apart from the sources)."""
    yield Path(__file__).resolve().with_name(LIBRARY_FILE)
    try:
        resource = importlib.resources.files(__package__).joinpath(LIBRARY_FILE)
    except (ModuleNotFoundError, TypeError, ValueError):
        resource = None
    if isinstance(resource, Path):
        yield resource
    package = sys.modules.get(__package__ or "")
    for location in getattr(package, "__path__", ()):
        yield Path(location) / LIBRARY_FILE
