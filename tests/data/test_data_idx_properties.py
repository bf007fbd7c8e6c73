"""Property tests of the IDX parser: any bytes give a decoded split or a DatasetError, with no big allocation.

The spec is shrunk to three test images so that generated files stay small, which makes "no absurd
allocation" checkable: the parser must never ask for more than the spec's three images, whatever a header
claims (tracemalloc sees numpy's allocations).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsnet_nncf_plugin.data import get_spec
from capsnet_nncf_plugin.data.formats.idx import IdxFormat, read_idx_images, read_idx_labels
from capsnet_nncf_plugin.errors import DatasetError

COUNT = 3
SPEC = dataclasses.replace(get_spec("mnist"), official_train_count=COUNT, official_test_count=COUNT)
PIXELS = COUNT * 28 * 28
# Room for the decoded split and the parser's and zlib's own buffers; a header-driven allocation (any count
# but 3, up to 0xFFFFFFFF images of 784 bytes) is far larger.
ALLOCATION_LIMIT = 1 << 18


def _valid_images() -> bytes:
    return (
        struct.pack(">IIII", 2051, COUNT, 28, 28) + bytes(range(256)) * (PIXELS // 256) + bytes(PIXELS % 256)
    )


def _valid_labels() -> bytes:
    return struct.pack(">II", 2049, COUNT) + bytes([1, 2, 3])


def _parse(content: bytes, gzipped: bool, kind: str) -> object:
    """Parse ``content`` as the ``kind`` test file; return the result or the DatasetError; check memory."""
    with tempfile.TemporaryDirectory() as directory:
        base = "t10k-images-idx3-ubyte" if kind == "images" else "t10k-labels-idx1-ubyte"
        path = Path(directory) / (f"{base}.gz" if gzipped else base)
        path.write_bytes(gzip.compress(content, compresslevel=1) if gzipped else content)
        reader = read_idx_images if kind == "images" else read_idx_labels
        tracemalloc.start()
        try:
            try:
                result: object = reader(path, SPEC, "test")
            except DatasetError as error:
                result = error
            # The other file of the part is missing, or this one is bad: both are DatasetErrors.
            with contextlib.suppress(DatasetError):
                IdxFormat().count(Path(directory), "test", SPEC)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < ALLOCATION_LIMIT, f"{peak} bytes allocated for a {len(content)}-byte file"
    return result


def _check(result: object, kind: str) -> None:
    if isinstance(result, DatasetError):
        assert "\n" not in str(result) and "capsq data fetch mnist" in str(result)
        return
    assert isinstance(result, np.ndarray)
    if kind == "images":
        assert result.shape == (COUNT, 1, 28, 28) and result.dtype == np.uint8
    else:
        assert (
            result.shape == (COUNT,) and result.dtype == np.int64 and 0 <= result.min() <= result.max() < 10
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=3000), gzipped=st.booleans(), kind=st.sampled_from(["images", "labels"]))
def test_arbitrary_bytes_never_crash(content: bytes, gzipped: bool, kind: str) -> None:
    _check(_parse(content, gzipped, kind), kind)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["images", "labels"]))
    data = bytearray(_valid_images() if kind == "images" else _valid_labels())
    header_words = 4 if kind == "images" else 2
    for _ in range(draw(st.integers(1, 3))):
        word = draw(st.integers(0, header_words - 1))
        value = draw(
            st.one_of(
                st.sampled_from([0, 1, COUNT - 1, COUNT + 1, 28, 0xFFFFFFFF]), st.integers(0, 2**32 - 1)
            )
        )
        data[4 * word : 4 * word + 4] = struct.pack(">I", value)
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        del data[cut:]
    data += draw(st.binary(max_size=8))
    return bytes(data), kind


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated=_mutated(), gzipped=st.booleans())
def test_mutated_real_headers_never_crash(mutated: tuple[bytes, str], gzipped: bool) -> None:
    content, kind = mutated
    _check(_parse(content, gzipped, kind), kind)


def test_the_unmutated_files_decode() -> None:
    # The properties above would hold vacuously if nothing ever decoded.
    _check(_parse(_valid_images(), True, "images"), "images")
    assert isinstance(_parse(_valid_images(), False, "images"), np.ndarray)
    assert _parse(_valid_labels(), False, "labels").tolist() == [1, 2, 3]  # type: ignore[attr-defined]
