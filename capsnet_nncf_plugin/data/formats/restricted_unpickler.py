"""Loading the CIFAR-10 pickles without letting a pickle run code.

A pickle can name any importable callable (``os.system``, ``subprocess.Popen``...) and unpickling calls it.
The official CIFAR-10 batches only need numpy's array reconstruction, so every other global is refused: a
tampered or look-alike file then fails with an error instead of executing anything.
"""

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any

import numpy as np

from capsnet_nncf_plugin.errors import DatasetError


def _numpy_reconstruct() -> Any:
    # numpy 2 moved numpy.core to numpy._core; importing numpy.core there only warns, so prefer the new home.
    for module_name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(module_name)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise ImportError("numpy provides no multiarray._reconstruct")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and plain containers, and nothing else."""

    def __init__(self, file: io.BufferedIOBase, source: str, advice: str) -> None:
        # encoding="bytes": the batches were written by Python 2, whose str keys (b"data") stay bytes.
        super().__init__(file, encoding="bytes")
        self._source = source
        self._advice = advice

    def find_class(self, module: str, name: str) -> Any:
        """Resolve only the numpy array globals; refuse everything else."""
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise DatasetError(
                f"{self._source} refers to {module}.{name}, which the CIFAR-10 batches never need; refusing "
                f"to unpickle it because a pickle can run code. The file is not the official one: "
                f"{self._advice}"
            )
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids: the official batches have none."""
        raise DatasetError(
            f"{self._source} uses persistent pickle ids; not an official batch. {self._advice}"
        )


def load_numpy_pickle(data: bytes, source: str, advice: str) -> Any:
    """Unpickle ``data`` allowing only numpy arrays; ``source`` and ``advice`` go into error messages.

    Raises:
        DatasetError: the pickle names a forbidden global or is malformed.
    """
    try:
        return NumpyArrayUnpickler(io.BytesIO(data), source, advice).load()
    except DatasetError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DatasetError(f"{source} is not a readable pickle ({error}); {advice}") from error
