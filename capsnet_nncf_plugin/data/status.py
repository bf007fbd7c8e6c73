"""``dataset_status``: which datasets are present, where, and how many images each split has."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from capsnet_nncf_plugin.data.formats import format_for
from capsnet_nncf_plugin.data.integrity import verify_dataset_files
from capsnet_nncf_plugin.data.locations import FoundFiles, find_part, search_places
from capsnet_nncf_plugin.data.remedies import fetch_command
from capsnet_nncf_plugin.data.specs import DatasetSpec, available_datasets, get_spec
from capsnet_nncf_plugin.data.splits import OFFICIAL_PARTS, OfficialPart, split_bounds
from capsnet_nncf_plugin.errors import DatasetError


@dataclass(frozen=True)
class DatasetStatus:
    """What is known about one dataset on this machine without decoding it.

    ``split_counts`` holds a count only for splits whose files were found and intact; ``problem``
    describes every file that was found but is damaged, cut down or altered (with the fix).
    """

    spec: DatasetSpec
    found: dict[OfficialPart, FoundFiles] = field(default_factory=dict)
    split_counts: dict[str, int] = field(default_factory=dict)
    problem: str | None = None

    @property
    def is_complete(self) -> bool:
        """Whether both the official training and test files were found."""
        return all(part in self.found for part in OFFICIAL_PARTS)

    @property
    def directories(self) -> tuple[Path, ...]:
        """The distinct folders the parts were found in."""
        return tuple(dict.fromkeys(found.directory for found in self.found.values()))

    @property
    def fetch_command(self) -> str:
        """The command that fills the cache with this dataset."""
        return fetch_command(self.spec)


def _status_of(spec: DatasetSpec, root: str | os.PathLike[str] | None) -> DatasetStatus:
    places = search_places(spec, root)
    found: dict[OfficialPart, FoundFiles] = {}
    counts: dict[str, int] = {}
    problems: list[str] = []
    file_format = format_for(spec)
    for part in OFFICIAL_PARTS:
        location = find_part(spec, part, places)
        if location is None:
            continue
        found[part] = location
        # A part with a problem shows no counts: a damaged header's numbers (or an altered file's) mislead.
        try:
            official_count = file_format.count(location.directory, part, spec)
            verify_dataset_files(
                spec, file_format.files(location.directory, part), in_cache=location.origin == "cache"
            )
            bounds = {
                split: split_bounds(split, official_count)
                for split in (("test",) if part == "test" else ("train", "val"))
            }
        except (DatasetError, ValueError) as error:
            problems.append(str(error))
            continue
        counts.update({split: stop - start for split, (start, stop) in bounds.items()})
    return DatasetStatus(spec=spec, found=found, split_counts=counts, problem="; ".join(problems) or None)


def dataset_status(
    names: Iterable[str] | None = None, root: str | os.PathLike[str] | None = None
) -> list[DatasetStatus]:
    """Report, for each dataset (all by default), where its files are and the size of each split.

    Counts come from file headers (IDX, .mat), checked against the official counts and the file sizes,
    or, for the CIFAR-10 archive, from the official sizes. Every file is also checked against its recorded
    or published digest (once per process, see :mod:`.integrity`), so an altered file is reported as a
    ``problem``; pixel data is not decoded (``load_dataset`` does that).
    """
    specs = [get_spec(name) for name in names] if names is not None else list(available_datasets().values())
    return [_status_of(spec, root) for spec in specs]
