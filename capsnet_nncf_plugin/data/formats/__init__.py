"""On-disk dataset formats, one module each; :func:`format_for` picks the one a dataset uses."""

from __future__ import annotations

from capsnet_nncf_plugin.data.formats.cifar_python import CifarPythonFormat
from capsnet_nncf_plugin.data.formats.idx import IdxFormat
from capsnet_nncf_plugin.data.formats.interface import DatasetFormat, LabelledImages
from capsnet_nncf_plugin.data.formats.svhn_mat import SvhnMatFormat
from capsnet_nncf_plugin.data.specs import DatasetSpec

_FORMATS: dict[str, DatasetFormat] = {
    "idx": IdxFormat(),
    "cifar-python": CifarPythonFormat(),
    "svhn-mat": SvhnMatFormat(),
}


def format_for(spec: DatasetSpec) -> DatasetFormat:
    """The reader for ``spec``'s official file layout."""
    return _FORMATS[spec.file_format]


__all__ = ["DatasetFormat", "LabelledImages", "format_for"]
