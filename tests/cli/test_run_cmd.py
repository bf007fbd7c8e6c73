"""``capsq run`` end to end on real MNIST; an untrained ShallowCaps, as the job is under test."""

import json

import pytest
import torch

from capsnet_nncf_plugin.cli import main
from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.models import load_checkpoint


@pytest.fixture
def checkpoint(untrained_mnist_checkpoint):
    return untrained_mnist_checkpoint


def test_run_prints_the_summary_and_writes_the_report(checkpoint, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "run",
            "--model",
            str(checkpoint),
            "--limit",
            "200",
            "--calibration",
            "64",
            "--clip",
            "mse",
            "--method",
            "none",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "integer accuracy (torch)" in printed and "smaller" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_images"] == 200 and summary["dataset"] == "mnist"
    expected = evaluate_accuracy(load_checkpoint(checkpoint).model, load_dataset("mnist", "test"), limit=200)
    assert summary["fp32_accuracy"] == expected
    assert summary["quantized_accuracy"] == summary["fp32_accuracy"] + summary["accuracy_delta"]
    # 8-bit weights with FP32 biases: just under 4x; activations exactly 4x.
    assert 3.9 < summary["memory"]["weight_reduction"] < 4.0
    assert summary["memory"]["activation_reduction"] == pytest.approx(4.0)
    assert (out / "report.md").read_text().startswith("# capsq run")
    # The exported model runs in onnxruntime and reproduces the torch integer model bit for bit.
    assert "integer accuracy (onnxruntime)" in printed and "bit-identical" in printed
    onnx = summary["onnx"]
    assert onnx["accuracy"] == summary["quantized_accuracy"]
    assert onnx["agreement"]["identical_outputs"] == 100.0 and onnx["agreement"]["images"] == 200
    assert onnx["size_reduction"] > 3.5 and (out / "model.onnx").stat().st_size == onnx["bytes"]
    assert set(summary["latency_ms_per_image"]) == {"fp32_torch", "fp32_onnxruntime", "integer_onnxruntime"}


def test_run_through_nncf_with_the_users_config(checkpoint, tmp_path, capsys):
    config = tmp_path / "nncf.yaml"
    config.write_text("preset: performance\nsubset_size: 1\ncapsnet:\n  activation_bits: 7\n")
    out = tmp_path / "nncf-report"
    arguments = [
        "run",
        "--model",
        str(checkpoint),
        "--limit",
        "100",
        "--calibration",
        "64",
        "--method",
        "none",
    ]
    arguments += ["--flow", "nncf", "--nncf-config", str(config), "--out", str(out), "--no-progress"]
    assert main(arguments) == 0
    assert "NNCF (nncf.quantize + plugin)" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    # Every activation point at the configured 7 bits except the 28x28 model input, which keeps its 8.
    elements = summary["memory"]["activation_bits_fp32"] // 32
    assert summary["memory"]["activation_bits"] == 7 * (elements - 28 * 28) + 8 * 28 * 28
    assert summary["onnx"]["agreement"]["identical_outputs"] == 100.0
    assert summary["onnx"]["accuracy"] == summary["quantized_accuracy"]


def test_run_searches_an_allocation_first(checkpoint, tmp_path, capsys):
    out = tmp_path / "searched"
    # An untrained model flips predictions at any width: a wide tolerance lets the search lower bits.
    arguments = ["run", "--model", str(checkpoint), "--limit", "20", "--calibration", "16"]
    arguments += ["--method", "error-guided", "--tolerance", "100", "--criterion", "accuracy"]
    assert main([*arguments, "--validation-limit", "20", "--out", str(out), "--no-progress"]) == 0
    assert "error-guided, tolerance 100.0 pp (accuracy, clip `hardware`" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    allocation = json.loads((out / "allocation.json").read_text())
    assert summary["allocation"]["layers"] == allocation["layers"]
    assert summary["memory"]["weight_reduction"] > 4.2  # the search lowered some weights below 8 bits
    assert "## Bits per layer" in (out / "report.md").read_text()
    assert (out / "bits_per_layer.png").stat().st_size > 0


def test_run_without_a_zoo_model_names_the_fix(tmp_path, capsys):
    assert main(["run", "--model", "zoo:nope", "--out", str(tmp_path)]) == 2
    assert "capsq zoo list" in capsys.readouterr().err


def test_quantize_writes_allocation_report_and_plots(checkpoint, tmp_path, capsys):
    out = tmp_path / "quantize"
    code = main(
        [
            "quantize",
            "--model",
            str(checkpoint),
            "--method",
            "uniform-8",
            "--calibration",
            "64",
            "--analysis-images",
            "16",
            "--analysis-bits",
            "4",
            "8",
            "--validation-limit",
            "100",
            "--limit",
            "100",
            "--analysis-cache",
            str(tmp_path / "cache.json"),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "uniform-8: weights" in capsys.readouterr().out
    allocation = json.loads((out / "allocation.json").read_text())
    assert set(allocation["layers"]) == {"conv1", "primary_caps", "class_caps"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test"]["images"] == 100
    # Measured in onnxruntime on the exported integer model, which the report folder keeps.
    assert summary["test"]["runtime"] == "onnxruntime" and (out / "model.onnx").stat().st_size > 0
    # Where the job's time went, phase by phase, in the summary and in report.md.
    phases = ["loading", "error_analysis", "search:uniform-8", "fp32_test", "integer_test"]
    assert list(summary["seconds"]) == phases and all(value > 0 for value in summary["seconds"].values())
    assert "| time of the whole job |" in (out / "report.md").read_text()
    # ... and where the search's evaluations spent theirs: the chosen allocation saw every image.
    cost = summary["methods"][0]["evaluation_cost"]
    assert cost["complete"] == 1 and cost == allocation["info"]["evaluation_cost"]
    assert "| the search's evaluations | 1 scored on every image (" in (out / "report.md").read_text()
    figures = ("sensitivity.png", "block_sensitivity.png", "routing_sensitivity.png")
    for name in ("report.md", "bits_per_layer.png", "accuracy_vs_memory.png", *figures):
        assert (out / name).stat().st_size > 0, name
    analysis = json.loads((out / "error_analysis.json").read_text())
    assert set(analysis["errors"]["class_caps"]) == {"weight", "activation", "routing"}
    # ShallowCaps' blocks are its layers; its one routing layer has b at 2 updates, c, s, v at 3 iterations.
    blocks = analysis["blocks"]
    assert blocks["primary_caps"]["errors"]["weight"] == analysis["errors"]["primary_caps"]["weight"]
    routing = analysis["routing_iterations"]["class_caps"]
    assert {tensor: sorted(by_index) for tensor, by_index in routing.items()} == {
        "logits": ["0", "1"],
        "coupling": ["0", "1", "2"],
        "pre_activation": ["0", "1", "2"],
        "output": ["0", "1", "2"],
    }
    assert set(routing["output"]["2"]) == {"4", "8"}
    assert sorted(analysis["rankings"]["routing_iterations"]["class_caps"]["coupling"]["4"]) == [0, 1, 2]
    # The cache holds the same entries, ready for the next run on this model and calibration.
    cache = json.loads((tmp_path / "cache.json").read_text())
    assert cache["errors"] == analysis["errors"]
    assert cache["iteration_errors"]["class_caps"] == routing


def test_quantize_rejects_an_unknown_method(checkpoint, tmp_path, capsys):
    assert main(["quantize", "--model", str(checkpoint), "--method", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown allocation method 'nope'" in capsys.readouterr().err


def test_a_rerun_reuses_the_error_analysis_and_the_fp32_test_pass(checkpoint, tmp_path, monkeypatch):
    from capsnet_nncf_plugin.job import reuse

    passes = []
    measure = reuse.evaluate_accuracy
    monkeypatch.setattr(reuse, "evaluate_accuracy", lambda *a, **k: passes.append(1) or measure(*a, **k))
    reused = tmp_path / "reused"

    def quantize(tolerance: str, out: str) -> dict:
        arguments = ["quantize", "--model", str(checkpoint), "--method", "uniform-8", "--calibration", "64"]
        arguments += ["--tolerance", tolerance]
        arguments += ["--analysis-images", "16", "--analysis-bits", "4", "8", "--validation-limit", "100"]
        arguments += ["--limit", "100", "--reuse-dir", str(reused), "--out", str(tmp_path / out)]
        assert main([*arguments, "--no-progress"]) == 0
        return json.loads((tmp_path / out / "summary.json").read_text())

    first = quantize("0.1", "first")
    (analysis,) = (reused / "error-analysis").glob("*.json")
    written = analysis.stat().st_mtime_ns
    second = quantize("0.5", "second")  # another tolerance: the same analysis and FP32 pass
    assert len(passes) == 1 and second["test"]["fp32_accuracy"] == first["test"]["fp32_accuracy"]
    assert analysis.stat().st_mtime_ns == written  # read, nothing new measured
    assert (
        json.loads((tmp_path / "second" / "error_analysis.json").read_text())["errors"]
        == json.loads((tmp_path / "first" / "error_analysis.json").read_text())["errors"]
    )
    assert main(["quantize", "--model", str(checkpoint), "--reuse-dir", str(analysis), "--out", "x"]) == 2


def test_the_search_runs_on_validation_images_calibration_did_not_see(checkpoint, tmp_path, capsys):
    from capsnet_nncf_plugin.job import SearchConfig, load_inputs

    inputs = load_inputs(SearchConfig(model=str(checkpoint), calibration_images=128))
    assert len(inputs.search) == len(inputs.validation) - 128
    assert torch.equal(inputs.search[0][0], inputs.validation[128][0])
    assert torch.equal(torch.cat(inputs.calibration), inputs.validation.images[:128].float())
    out = tmp_path / "q"
    assert main(["quantize", "--model", str(checkpoint), "--calibration", "5000", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "none is left for the bit-width search; pass a smaller --calibration" in error
    assert not out.exists()
