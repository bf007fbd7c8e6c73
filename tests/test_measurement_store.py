"""The store of kept measurements: what it keeps it reads back; anything else is None, never an error."""

import logging

import torch

from capsnet_nncf_plugin.measurement_store import MeasurementStore


def test_documents_and_tensors_read_back(tmp_path):
    store = MeasurementStore(tmp_path)
    assert store.read_json("kind", "abc") is None and store.read_tensors("kind", "abc") is None
    store.write_json("kind", "abc", {"accuracy": 99.25})
    tensors = {"predictions": torch.tensor([3, 1]), "margins": torch.tensor([0.5, 2.0])}
    store.write_tensors("kind", "abc", tensors)
    assert store.read_json("kind", "abc") == {"accuracy": 99.25}
    kept = store.read_tensors("kind", "abc")
    assert kept.keys() == tensors.keys() and all(torch.equal(kept[k], tensors[k]) for k in tensors)
    assert sorted(p.name for p in (tmp_path / "kind").iterdir()) == ["abc.json", "abc.pt"]  # no leftovers


def test_damaged_or_foreign_files_read_as_nothing(tmp_path, caplog):
    store = MeasurementStore(tmp_path)
    (tmp_path / "kind").mkdir()
    for name, content in {"a.json": b"{not json", "b.json": b"[1, 2]", "a.pt": b"\x00garbage"}.items():
        (tmp_path / "kind" / name).write_bytes(content)
    torch.save({"model": torch.nn.Linear(1, 1)}, tmp_path / "kind" / "b.pt")  # code, not tensors
    torch.save([torch.zeros(1)], tmp_path / "kind" / "c.pt")
    with caplog.at_level(logging.WARNING):
        assert store.read_json("kind", "a") is None and store.read_json("kind", "b") is None
        assert all(store.read_tensors("kind", name) is None for name in ("a", "b", "c"))
    assert caplog.text.count("measuring afresh") == 5


def test_a_folder_that_cannot_be_written_costs_a_warning(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = MeasurementStore(blocker)  # a file where the folder should be
    with caplog.at_level(logging.WARNING):
        store.write_json("kind", "abc", {"x": 1})
        store.write_tensors("kind", "abc", {"x": torch.zeros(1)})
    assert caplog.text.count("could not keep") == 2
