"""Taking dataset files out of a Debian package without installing it (no root, no change to apt's state).

``apt-get download`` fetches the .deb (verified by apt against the signed archive index) into the working
directory, and ``dpkg -x`` unpacks it into a private folder. On a machine whose package lists were never
fetched, ``apt-get download`` cannot find the package, so the fallback runs ``apt-get update`` into a
private lists folder (the system's sources, its own state) and downloads with that.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from capsnet_nncf_plugin.data.sources.external_tools import require_tool, run_tool
from capsnet_nncf_plugin.data.sources.pinned_file import PinnedFile, install_pinned_file
from capsnet_nncf_plugin.errors import DatasetError

_LOG = logging.getLogger(__name__)
_APT_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class DebianPackageSource:
    """A Debian package (whatever version the configured archive offers) and the files it contributes.

    Each :class:`PinnedFile` member is a path inside the package's file tree, e.g.
    ``usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz``.
    """

    package: str
    files: tuple[PinnedFile, ...]

    def describe(self) -> str:
        """A short human description, e.g. for ``capsq data fetch`` output."""
        return f"Debian package {self.package}"


def private_apt_options(workdir: Path, own_lists: bool) -> list[str]:
    """apt options that keep every file apt writes inside ``workdir``.

    ``own_lists`` also moves the package lists there (for the ``apt-get update`` fallback); otherwise the
    system's lists are read but never written.
    """
    cache = workdir / "apt-cache"
    (cache / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    options = ["-o", f"Dir::Cache={cache}", "-o", "Debug::NoLocking=1"]
    if own_lists:
        lists = workdir / "apt-lists"
        (lists / "partial").mkdir(parents=True, exist_ok=True)  # apt refuses to start without it
        options += ["-o", f"Dir::State::Lists={lists}"]
    if os.geteuid() == 0:
        # As root apt downloads as the _apt user, who cannot write into our private 0700 temp folder.
        options += ["-o", "APT::Sandbox::User=root"]
    return options


def _download_deb(apt_get: str, package: str, workdir: Path, alternatives: str) -> Path:
    download_dir = workdir / "download"
    download_dir.mkdir()
    try:
        _LOG.info("running: apt-get download %s (with the system's package lists)", package)
        run_tool(
            [apt_get, "-q", *private_apt_options(workdir, own_lists=False), "download", package],
            cwd=download_dir,
            timeout_s=_APT_TIMEOUT_S,
            failure_advice=alternatives,
        )
    except DatasetError as first_failure:
        _LOG.info("apt-get download failed (%s); fetching private package lists", first_failure)
        options = private_apt_options(workdir, own_lists=True)
        _LOG.info("running: apt-get update (private lists in %s)", workdir)
        run_tool(
            [apt_get, "-q", *options, "update"],
            cwd=workdir,
            timeout_s=_APT_TIMEOUT_S,
            failure_advice=alternatives,
        )
        _LOG.info("running: apt-get download %s (private lists)", package)
        run_tool(
            [apt_get, "-q", *options, "download", package],
            cwd=download_dir,
            timeout_s=_APT_TIMEOUT_S,
            failure_advice=alternatives,
        )
    debs = sorted(download_dir.glob("*.deb"))
    if len(debs) != 1:
        raise DatasetError(
            f"`apt-get download {package}` left {len(debs)} .deb files, expected one; {alternatives}"
        )
    return debs[0]


def fetch_debian_package(source: DebianPackageSource, target_dir: Path, alternatives: str) -> list[Path]:
    """Download ``source`` with apt-get, unpack it with dpkg, install its pinned files into ``target_dir``."""
    apt_get = require_tool("apt-get", f"download the {source.describe()}", alternatives)
    dpkg = require_tool("dpkg", f"unpack the {source.describe()}", alternatives)
    installed: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="capsq-deb-") as workdir_name:
        workdir = Path(workdir_name)
        deb = _download_deb(apt_get, source.package, workdir, alternatives)
        tree = workdir / "tree"
        _LOG.info("running: dpkg -x %s", deb.name)
        run_tool(
            [dpkg, "-x", str(deb), str(tree)],
            cwd=workdir,
            timeout_s=_APT_TIMEOUT_S,
            failure_advice=alternatives,
        )
        origin = f"{source.describe()} ({deb.name})"
        for pinned in source.files:
            member = tree / pinned.member
            # dpkg -x recreates the package's symlinks; only a regular file inside the tree is accepted.
            if (
                member.is_symlink()
                or not member.is_file()
                or not member.resolve().is_relative_to(tree.resolve())
            ):
                raise DatasetError(f"{origin} has no regular file {pinned.member}; {alternatives}")
            with member.open("rb") as stream:
                installed.append(install_pinned_file(stream, pinned, target_dir, origin))
    return installed
