"""Where a dataset's official files may be, in the order they are searched.

1. An explicit ``root`` (only there: a caller who names a directory means that directory), or else
   ``$CAPSQ_DATA``; in either, the files may sit in a ``<name>/`` sub-folder (checked first, so one
   directory can hold several datasets) or directly in it.
2. The cache that ``capsq data fetch`` fills: ``cache_dir()/datasets/<name>/``.

MNIST and Fashion-MNIST use the same IDX file names, so a directory holding one of them directly (not in a
``<name>/`` sub-folder) would be taken for either: keep each in its own sub-folder in a shared directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from capsnet_nncf_plugin.data.cache import dataset_cache_dir
from capsnet_nncf_plugin.data.formats import format_for
from capsnet_nncf_plugin.data.remedies import DATA_ENV_VAR
from capsnet_nncf_plugin.data.specs import DatasetSpec
from capsnet_nncf_plugin.data.splits import OfficialPart


@dataclass(frozen=True)
class SearchPlace:
    """One place to look: its label for messages (``root``, ``$CAPSQ_DATA``, ``cache``) and its folders."""

    origin: str
    directories: tuple[Path, ...]


@dataclass(frozen=True)
class FoundFiles:
    """The folder holding a dataset part's official files, and which search place it belongs to."""

    directory: Path
    origin: str


def _user_directory_candidates(base: Path, spec: DatasetSpec) -> tuple[Path, ...]:
    return (*(base / folder for folder in spec.folder_names), base)


def search_places(spec: DatasetSpec, root: str | os.PathLike[str] | None = None) -> list[SearchPlace]:
    """The places to search for ``spec``, in order (see the module docstring)."""
    if root is not None:
        return [SearchPlace("root", _user_directory_candidates(Path(root).expanduser(), spec))]
    places = []
    configured = os.environ.get(DATA_ENV_VAR)
    if configured:
        places.append(
            SearchPlace(f"${DATA_ENV_VAR}", _user_directory_candidates(Path(configured).expanduser(), spec))
        )
    places.append(SearchPlace("cache", (dataset_cache_dir(spec.name),)))
    return places


def find_part(spec: DatasetSpec, part: OfficialPart, places: list[SearchPlace]) -> FoundFiles | None:
    """The first folder in ``places`` that holds ``part`` of ``spec``, or None."""
    file_format = format_for(spec)
    for place in places:
        for directory in place.directories:
            if file_format.is_present(directory, part):
                return FoundFiles(directory=directory, origin=place.origin)
    return None


def describe_places(places: list[SearchPlace]) -> str:
    """The searched folders as one line, e.g. ``/data/mnist, /data ($CAPSQ_DATA); /c/mnist (cache)``."""
    return "; ".join(
        f"{', '.join(str(directory) for directory in place.directories)} ({place.origin})" for place in places
    )
