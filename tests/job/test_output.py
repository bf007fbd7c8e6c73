"""A job's output folder is checked first and written as one unit."""

import os

import pytest

from capsnet_nncf_plugin.job import OutputFolderError, RunFolder, check_output_folder


def test_a_finished_job_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old report claiming 8 bits")
    (out / "stale.png").write_text("old plot")
    with RunFolder(out) as folder:
        folder.stage("model.onnx").write_text("new model")
        folder.stage("report.md").write_text("new report")
        assert not (out / "model.onnx").exists()  # nothing reaches the folder before the end
        assert folder.final("model.onnx") == out / "model.onnx"
    assert sorted(os.listdir(out)) == ["model.onnx", "report.md"]
    assert (out / "report.md").read_text() == "new report"
    assert [name for name in os.listdir(tmp_path) if name != "report"] == []  # no staging left behind


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_job_leaves_the_old_folder_as_it_was(tmp_path, interruption):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old report")
    with pytest.raises(interruption), RunFolder(out) as folder:
        folder.stage("model.onnx").write_text("half of a new run")
        raise interruption()
    assert os.listdir(out) == ["report.md"] and (out / "report.md").read_text() == "old report"
    assert os.listdir(tmp_path) == ["report"]


def test_a_new_folder_and_its_parents_are_created(tmp_path):
    out = tmp_path / "a" / "b" / "report"
    with RunFolder(out) as folder:
        folder.stage("summary.json").write_text("{}")
    assert (out / "summary.json").read_text() == "{}"


def test_paths_that_cannot_be_a_folder_are_named(tmp_path):
    existing = tmp_path / "file"
    existing.write_text("")
    with pytest.raises(OutputFolderError, match=r"--out .*file is a file, not a folder"):
        check_output_folder(existing)
    with pytest.raises(OutputFolderError, match=r"file is a file, so no folder can be made under it"):
        check_output_folder(existing / "sub" / "deeper")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_parent_is_named(tmp_path):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(OutputFolderError, match="is not writable"):
            check_output_folder(parent / "report")
    finally:
        parent.chmod(0o755)
