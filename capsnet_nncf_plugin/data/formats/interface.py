"""What every on-disk dataset format offers the loader: find the files, read them, count them cheaply."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from capsnet_nncf_plugin.data.specs import DatasetSpec
from capsnet_nncf_plugin.data.splits import OfficialPart


class LabelledImages(NamedTuple):
    """Decoded images, ``uint8 [N, C, H, W]``, and their labels, ``int64 [N]``."""

    images: np.ndarray
    labels: np.ndarray


class DatasetFormat(Protocol):
    """One official file layout (IDX, CIFAR python pickles, SVHN .mat)."""

    def describe_files(self) -> str:
        """The official file names, for messages."""
        ...

    def is_present(self, directory: Path, part: OfficialPart) -> bool:
        """Whether ``directory`` holds the files of ``part`` (existence only, no validation)."""
        ...

    def files(self, directory: Path, part: OfficialPart) -> tuple[Path, ...]:
        """The files :meth:`read` reads for ``part``: the ones whose digests are verified."""
        ...

    def read(self, directory: Path, part: OfficialPart, spec: DatasetSpec) -> LabelledImages:
        """Decode and validate ``part``; raise ``DatasetError`` naming the bad file and the fix."""
        ...

    def count(self, directory: Path, part: OfficialPart, spec: DatasetSpec) -> int:
        """The number of images in ``part``, read from headers where that is cheap; raise ``DatasetError``
        when a header contradicts the spec's count or the file size."""
        ...
