import json

import pytest
import torch

from capsnet_nncf_plugin.cli import build_parser, main
from capsnet_nncf_plugin.data import ImageDataset
from capsnet_nncf_plugin.models import create, save_checkpoint


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("data", "train", "eval"):
        assert command in out


@pytest.mark.parametrize("command", [["data"], ["data", "fetch"], ["data", "info"], ["train"], ["eval"]])
def test_each_subcommand_has_complete_help(capsys, command):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: capsq")
    assert len(out.splitlines()) > 3


def test_parser_subcommands():
    actions = [a for a in build_parser()._actions if a.dest == "command"]
    assert set(actions[0].choices) >= {"data", "train", "eval"}


def test_eval_prints_accuracy_of_a_checkpoint(tmp_path, capsys, monkeypatch):
    model = create("shallowcaps").eval()
    checkpoint = save_checkpoint(tmp_path / "model.pt", model, {"dataset": "mnist"})
    images = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        labels = model(images.float()).argmax(dim=1)  # the model's own predictions: 100% by construction
    labels[:5] = (labels[:5] + 1) % 10  # ...except five
    dataset = ImageDataset(images, labels, name="mnist", split="test", num_classes=10)
    monkeypatch.setattr("capsnet_nncf_plugin.cli.eval_cmd.load_dataset", lambda *args, **kwargs: dataset)
    assert main(["eval", "--model", str(checkpoint), "--json", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == 75.0 and result["images"] == 20 and result["dataset"] == "mnist"


def test_eval_of_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "capsq train" in err and "Traceback" not in err


def test_corrupted_checkpoint_is_reported(tmp_path, capsys):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    assert main(["eval", "--checkpoint", str(path)]) == 2
    assert "unreadable" in capsys.readouterr().err
