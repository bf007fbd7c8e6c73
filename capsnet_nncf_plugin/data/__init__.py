"""Datasets for training, calibrating and evaluating capsule networks: MNIST, Fashion-MNIST, CIFAR-10, SVHN.

``load_dataset(name, split)`` returns an :class:`ImageDataset` of raw uint8 images (served as float 0..255)
and int64 labels. Splits: ``train`` = the official training set minus its last 5,000 images, ``val`` =
those 5,000 (for calibration and bit-width search), ``test`` = the official test set. Files come from a
directory you name (``root`` / ``$CAPSQ_DATA``) or from the cache filled by ``capsq data fetch``.
"""

from __future__ import annotations

from capsnet_nncf_plugin.data.cache import cache_dir, dataset_cache_dir
from capsnet_nncf_plugin.data.fetch import FETCH_SOURCES, fetch_dataset, is_fetched
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.data.loading import load_dataset
from capsnet_nncf_plugin.data.specs import DatasetSpec, available_datasets, dataset_names, get_spec
from capsnet_nncf_plugin.data.splits import SPLITS, VALIDATION_SIZE, search_images
from capsnet_nncf_plugin.data.status import DatasetStatus, dataset_status

__all__ = [
    "FETCH_SOURCES",
    "SPLITS",
    "VALIDATION_SIZE",
    "DatasetSpec",
    "DatasetStatus",
    "ImageDataset",
    "available_datasets",
    "cache_dir",
    "dataset_cache_dir",
    "dataset_names",
    "dataset_status",
    "fetch_dataset",
    "get_spec",
    "is_fetched",
    "load_dataset",
    "search_images",
]
