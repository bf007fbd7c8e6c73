import json

import pytest
import torch

from capsnet_nncf_plugin.models import load_checkpoint
from capsnet_nncf_plugin.training import TrainConfig, train


def tiny_config(tmp_path, **overrides):
    fields = dict(
        model="shallowcaps",
        dataset="synthetic",
        out_dir=str(tmp_path / "run"),
        epochs=2,
        batch_size=20,
        learning_rate=2e-3,
        augment=False,
        model_options={},
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def test_a_few_steps_reduce_the_loss_and_write_checkpoints(tmp_path, tiny_splits):
    train_set, val_set = tiny_splits
    result = train(
        tiny_config(tmp_path, epochs=6, learning_rate=1e-3),
        progress=False,
        train_set=train_set,
        val_set=val_set,
    )
    losses = [record["train_loss"] for record in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.history[-1]["val_accuracy"] == 100.0
    assert result.best_val_accuracy == max(r["val_accuracy"] for r in result.history)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "run" / "curves.png").read_bytes().startswith(b"\x89PNG")
    best = load_checkpoint(result.best_checkpoint)
    assert best.metadata["val_accuracy"] == result.best_val_accuracy
    assert best.model.decoder is not None  # trained with the reconstruction loss
    assert not best.model.training


def test_resume_continues_where_the_run_stopped(tmp_path, tiny_splits):
    train_set, val_set = tiny_splits
    straight = train(
        tiny_config(tmp_path / "a", epochs=2), progress=False, train_set=train_set, val_set=val_set
    )
    train(tiny_config(tmp_path / "b", epochs=1), progress=False, train_set=train_set, val_set=val_set)
    resumed = train(
        tiny_config(tmp_path / "b", epochs=2),
        resume=True,
        progress=False,
        train_set=train_set,
        val_set=val_set,
    )
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    a = load_checkpoint(straight.last_checkpoint).model.state_dict()
    b = load_checkpoint(resumed.last_checkpoint).model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)


def test_resume_mid_epoch_replays_the_same_batches(tmp_path, tiny_splits, monkeypatch):
    from capsnet_nncf_plugin.training import trainer

    train_set, val_set = tiny_splits
    config = dict(epochs=1, batch_size=10, checkpoint_every=2)
    straight = train(
        tiny_config(tmp_path / "a", **config), progress=False, train_set=train_set, val_set=val_set
    )

    calls = {"n": 0}
    real_margin_loss = trainer.margin_loss

    def interrupted_after_three_steps(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_margin_loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "margin_loss", interrupted_after_three_steps)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path / "b", **config), progress=False, train_set=train_set, val_set=val_set)
    saved = load_checkpoint(tmp_path / "b" / "run" / "last.pt").training_state
    assert saved["epoch"] == 0 and saved["partial_epoch"]["step"] == 2
    monkeypatch.setattr(trainer, "margin_loss", real_margin_loss)
    resumed = train(
        tiny_config(tmp_path / "b", **config),
        resume=True,
        progress=False,
        train_set=train_set,
        val_set=val_set,
    )
    assert resumed.history[0]["train_loss"] == pytest.approx(straight.history[0]["train_loss"], rel=1e-5)
    a = load_checkpoint(straight.last_checkpoint).model.state_dict()
    b = load_checkpoint(resumed.last_checkpoint).model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)


def test_resume_refuses_another_run(tmp_path, tiny_splits):
    train_set, val_set = tiny_splits
    train(
        tiny_config(tmp_path, epochs=1, reconstruction_weight=0),
        progress=False,
        train_set=train_set,
        val_set=val_set,
    )
    with pytest.raises(ValueError, match="different run"):
        train(
            tiny_config(tmp_path, model="deepcaps", epochs=2),
            resume=True,
            progress=False,
            train_set=train_set,
            val_set=val_set,
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epochs", 0, "epochs"), ("batch_size", 0, "batch size"), ("checkpoint_every", -1, "checkpoint_every")],
)
def test_bad_arguments(tmp_path, tiny_splits, field, value, message):
    with pytest.raises(ValueError, match=message):
        train(
            tiny_config(tmp_path, **{field: value}),
            progress=False,
            train_set=tiny_splits[0],
            val_set=tiny_splits[1],
        )


def test_resume_accepts_a_dataset_alias_and_refuses_other_data(tmp_path, tiny_splits):
    train_set, val_set = tiny_splits
    splits = dict(progress=False, train_set=train_set, val_set=val_set)
    train(tiny_config(tmp_path, dataset="fashion-mnist", epochs=1), **splits)
    resumed = train(tiny_config(tmp_path, dataset="FMNIST", epochs=2), resume=True, **splits)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    with pytest.raises(ValueError, match="belongs to a different run"):
        train(tiny_config(tmp_path, dataset="mnist", epochs=3), resume=True, **splits)


def test_init_from_starts_a_fresh_run_from_a_checkpoints_weights(tmp_path, tiny_splits):
    splits = dict(progress=False, train_set=tiny_splits[0], val_set=tiny_splits[1])
    first = train(tiny_config(tmp_path / "a", epochs=1), **splits)
    # A zero learning rate leaves the weights where they started: exactly the checkpoint's.
    tuned = train(
        tiny_config(tmp_path / "b", epochs=1, learning_rate=0.0, init_from=str(first.best_checkpoint)),
        **splits,
    )
    assert [r["epoch"] for r in tuned.history] == [1]  # a new run with its own schedule
    start = load_checkpoint(first.best_checkpoint).model.state_dict()
    end = load_checkpoint(tuned.last_checkpoint).model.state_dict()
    assert start.keys() == end.keys()
    for key in start:
        torch.testing.assert_close(end[key], start[key], rtol=0, atol=0)


def test_init_from_refuses_another_architecture(tmp_path, tiny_splits):
    splits = dict(progress=False, train_set=tiny_splits[0], val_set=tiny_splits[1])
    first = train(tiny_config(tmp_path / "a", epochs=1, reconstruction_weight=0), **splits)
    with pytest.raises(ValueError, match=r"another architecture.*same --model"):
        train(tiny_config(tmp_path / "b", init_from=str(first.best_checkpoint)), **splits)
