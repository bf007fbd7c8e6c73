"""Third-party plugins through entry points: a dist-info on sys.path adds an observer and an allocation
method; a broken plugin is reported without breaking the others."""

import json
import sys
import warnings

import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin import builtin_plugin, plugins
from capsnet_nncf_plugin.allocation import allocate, available_methods
from capsnet_nncf_plugin.cli import main
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.errors import CapsqError
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx
from capsnet_nncf_plugin.plugins import BuiltinPluginError, get_observer, plugin_report, reset_plugin_manager

PLUGIN_MODULE = '''
import torch
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.hookspecs import hookimpl
from capsnet_nncf_plugin.observers import PowerOfTwoObserver


class SixBitObserver(PowerOfTwoObserver):
    """A third party's observer: power of two, always 6 bits."""

    def __init__(self, **kwargs):
        kwargs["bits"] = 6
        super().__init__(**kwargs)


def weights_four_bits(context):
    allocation = context.uniform()
    for name in context.names_with("weight"):
        allocation = allocation.with_layer(name, weight=4)
    context.holds(allocation)
    allocation.method = "weights-four-bits"
    return allocation


@hookimpl
def capsnet_allocation_methods():
    return {"weights-four-bits": weights_four_bits}


@hookimpl
def capsnet_observers():
    return {"six-bit": SixBitObserver}
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    (tmp_path / "thirdparty_capsnet.py").write_text(PLUGIN_MODULE)
    for dist, entry in (
        ("thirdparty_capsnet", "thirdparty_capsnet"),
        ("broken_capsnet", "no_such_module_xyz"),
    ):
        info = tmp_path / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[capsnet_nncf_plugin]\n{dist} = {entry}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugin_manager()
    yield
    sys.modules.pop("thirdparty_capsnet", None)
    monkeypatch.undo()
    reset_plugin_manager()


def test_a_third_party_method_and_observer_are_used_from_the_api(third_party):
    assert "weights-four-bits" in available_methods() and "progressive-descent" in available_methods()
    observer_class = get_observer("six-bit")
    observer = observer_class()
    observer(torch.tensor([0.0, 1.0]))
    assert observer.bits == 6
    model = tiny_capsnet()
    images = tiny_images(40, seed=3)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    validation = ImageDataset(images.to(torch.uint8), labels, name="synthetic", split="val", num_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        allocation = allocate(model, [images[:16]], validation, method="weights-four-bits", tolerance=100)
    assert {bits.weight for bits in allocation.layers.values()} == {4}


def test_a_third_party_observer_quantizes_weights_in_the_fx_flow(third_party):
    images = tiny_images(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = quantize_fx(tiny_capsnet(), [images], weight_observer=get_observer("six-bit"))
    assert {p.bits for p in quantization_points(quantized) if p.kind == "weight"} == {6}
    assert {p.bits for p in quantization_points(quantized) if p.kind == "activation"} == {8}


def test_the_cli_uses_a_third_party_method_and_observer(third_party, untrained_mnist_checkpoint, tmp_path):
    small = ["--calibration", "32", "--limit", "50", "--no-progress"]
    out = tmp_path / "quantize"
    arguments = ["quantize", "--model", str(untrained_mnist_checkpoint), "--method", "weights-four-bits"]
    arguments += ["--analysis-images", "8", "--analysis-bits", "4", "8", "--validation-limit", "50"]
    assert main([*arguments, *small, "--out", str(out)]) == 0
    allocation = json.loads((out / "allocation.json").read_text())
    assert allocation["method"] == "weights-four-bits"
    assert {layer["weight"] for layer in allocation["layers"].values()} == {4}
    run_out = tmp_path / "run"
    arguments = ["run", "--model", str(untrained_mnist_checkpoint), "--weight-observer", "six-bit"]
    arguments += ["--method", "none"]
    assert main([*arguments, *small, "--out", str(run_out)]) == 0
    summary = json.loads((run_out / "summary.json").read_text())
    # 6-bit weights, FP32 biases: just under 32/6.
    assert 5.2 < summary["memory"]["weight_reduction"] < 32 / 6


def test_capsq_plugins_lists_them_and_reports_the_broken_one(third_party, capsys):
    assert main(["plugins"]) == 0
    printed = capsys.readouterr().out
    assert "builtin" in printed and "progressive-descent" in printed
    assert "thirdparty_capsnet (thirdparty_capsnet): thirdparty_capsnet" in printed
    assert "allocation methods: weights-four-bits" in printed and "observers: six-bit" in printed
    assert "broken_capsnet" in printed and "ModuleNotFoundError" in printed
    broken = next(info for info in plugin_report() if info.name == "broken_capsnet")
    assert "no_such_module_xyz" in broken.error


def test_unknown_observer_names_the_available_ones():
    with pytest.raises(ValueError, match="unknown observer 'nope'; available: fixed-range, pot"):
        get_observer("nope")


# --- the package's own plugin fails loudly; a third party's hook error is reported -------------------------

FAILING_HOOK_MODULE = """
from capsnet_nncf_plugin.hookspecs import hookimpl


@hookimpl
def capsnet_observers():
    raise RuntimeError("third-party hook bug")
"""


@pytest.fixture
def fresh_plugins():
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def test_a_failing_builtin_hook_raises_instead_of_becoming_a_warning(fresh_plugins, monkeypatch, caplog):
    def broken():
        raise ImportError("simulated bug in the package")

    monkeypatch.setattr(builtin_plugin, "capsnet_observers", broken)
    with pytest.raises(BuiltinPluginError) as raised:
        get_observer("pot")
    assert str(raised.value).startswith(
        "the built-in plugin capsnet_nncf_plugin.builtin_plugin failed (capsnet_observers: ImportError: "
        "simulated bug in the package); this is a bug in capsnet_nncf_plugin or a broken installation"
    )
    assert isinstance(raised.value.__cause__, ImportError)
    assert not isinstance(raised.value, CapsqError)  # a bug: the CLI shows its traceback, not one line
    with pytest.raises(BuiltinPluginError):
        main(["plugins"])
    assert caplog.records == []  # nothing was turned into a warning


class FailingEntryPoint:
    """An entry point whose module cannot be imported."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value, self.dist = name, value, None

    def load(self):
        raise ImportError(f"cannot import {self.value}")


def test_a_builtin_plugin_that_cannot_load_raises(fresh_plugins, monkeypatch):
    monkeypatch.setattr(
        plugins.metadata, "entry_points", lambda group: [FailingEntryPoint("builtin", plugins.BUILTIN_MODULE)]
    )
    with pytest.raises(
        BuiltinPluginError, match=r"failed \(loading: ImportError: cannot import capsnet_nncf"
    ):
        get_observer("pot")
    # A third party's entry point failing the same way is only reported.
    monkeypatch.setattr(
        plugins.metadata, "entry_points", lambda group: [FailingEntryPoint("other", "other_package.plugin")]
    )
    reset_plugin_manager()
    assert get_observer("pot").__name__ == "PowerOfTwoObserver"
    (other,) = [info for info in plugin_report() if info.name == "other"]
    assert other.error == "ImportError: cannot import other_package.plugin"


def test_a_builtin_plugin_that_cannot_be_imported_without_entry_points_raises(fresh_plugins, monkeypatch):
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [])

    def no_import(name):
        raise SyntaxError(f"simulated syntax error in {name}")

    monkeypatch.setattr(plugins.importlib, "import_module", no_import)
    with pytest.raises(BuiltinPluginError, match=r"failed \(loading: SyntaxError: simulated syntax error"):
        get_observer("pot")


def test_a_third_party_hook_that_raises_is_reported_and_the_rest_works(third_party, tmp_path, capsys):
    (tmp_path / "failing_capsnet.py").write_text(FAILING_HOOK_MODULE)
    info = tmp_path / "failing_capsnet-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: failing_capsnet\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[capsnet_nncf_plugin]\nfailing_capsnet = failing_capsnet\n")
    reset_plugin_manager()
    try:
        assert get_observer("six-bit").__name__ == "SixBitObserver"
        assert main(["plugins"]) == 0
        printed = capsys.readouterr().out
        assert "failing_capsnet (failing_capsnet): failing_capsnet" in printed
        assert "ERROR: capsnet_observers: RuntimeError: third-party hook bug" in printed
    finally:
        sys.modules.pop("failing_capsnet", None)
