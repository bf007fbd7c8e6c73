"""Downloading one file over HTTP(S): streamed to a temp file, checksummed, then atomically renamed."""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from capsnet_nncf_plugin.atomic_file import atomic_output
from capsnet_nncf_plugin.errors import DatasetError

_LOG = logging.getLogger(__name__)
_CHUNK_SIZE = 1 << 20
DEFAULT_TIMEOUT_S = 60.0
_USER_AGENT = "capsnet-nncf-plugin-dataset-fetcher"


def download_file(
    url: str,
    destination: Path,
    expected_md5: str,
    progress: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    advice: str = "",
) -> Path:
    """Download ``url`` to ``destination`` if its MD5 is ``expected_md5``.

    ``timeout_s`` bounds each connect and each read, not the whole transfer. ``advice`` is appended to
    error messages to say what else the user can do.

    Raises:
        DatasetError: HTTP error, unreachable host, interrupted transfer or checksum mismatch; the
            destination is left untouched and no temporary file remains.
    """
    suffix = f"; {advice}" if advice else ""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    _LOG.info("downloading %s", url)
    try:
        with (
            urllib.request.urlopen(request, timeout=timeout_s) as response,
            atomic_output(destination) as pending,
        ):
            declared_length = response.headers.get("Content-Length")
            total = int(declared_length) if declared_length and declared_length.isdigit() else None
            digest = hashlib.md5(usedforsecurity=False)
            received = 0
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=destination.name,
                disable=not progress,
                leave=False,
            ) as bar:
                while chunk := response.read(_CHUNK_SIZE):
                    pending.stream.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise DatasetError(
                    f"download of {url} stopped after {received} of {total} bytes; try again{suffix}"
                )
            actual = digest.hexdigest()
            if actual != expected_md5:
                raise DatasetError(
                    f"checksum mismatch for {url}: expected MD5 {expected_md5}, got {actual} "
                    f"({received} bytes); the file was discarded{suffix}"
                )
    except urllib.error.HTTPError as error:
        raise DatasetError(f"download of {url} failed: HTTP {error.code} {error.reason}{suffix}") from error
    except urllib.error.URLError as error:
        raise DatasetError(f"cannot reach {url} ({error.reason}){suffix}") from error
    except http.client.IncompleteRead as error:
        raise DatasetError(
            f"download of {url} stopped early ({len(error.partial)} bytes received); try again{suffix}"
        ) from error
    except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
        raise DatasetError(f"download of {url} failed ({error!r}); try again{suffix}") from error
    return destination
