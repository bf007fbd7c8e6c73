"""benchmarks/candidate_cost.py: one batch of an integer model timed per layer in torch and per op type in
onnxruntime."""

import re
import subprocess
import sys

from benchmark_scripts import BENCHMARKS, load_benchmark
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.fx import quantize_fx

cost = load_benchmark("candidate_cost.py")


def test_every_layer_of_the_converted_model_is_timed():
    model = tiny_capsnet()
    images = tiny_images(16, seed=1)
    quantized = quantize_fx(model, [images])
    seconds = cost.torch_cost(quantized, images, repeats=2)
    modules = {node.target for node in quantized.graph.nodes if node.op == "call_module"}
    assert modules <= set(seconds) and set(seconds) <= modules | {cost.BETWEEN_LAYERS}
    assert all(value >= 0 for value in seconds.values()) and sum(seconds.values()) > 0


def test_the_table_gives_each_rows_share_and_the_total():
    lines = cost.table("per layer", {"conv": 0.030, "routing": 0.010})
    assert lines[2:] == ["| conv | 30.0 | 75% |", "| routing | 10.0 | 25% |", "| **total** | **40.0** | |"]


def test_one_model_both_runtimes(untrained_mnist_checkpoint, tmp_path):
    markdown = tmp_path / "cost.md"
    arguments = ["--model", str(untrained_mnist_checkpoint), "--batch", "8", "--repeats", "2"]
    arguments += ["--calibration", "32", "--markdown", str(markdown)]
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "candidate_cost.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    text = markdown.read_text()
    assert text in completed.stdout
    assert "8 bits everywhere" in text and "integer dot-product flags" in text
    # ShallowCaps' three layers in torch; the custom routing op among onnxruntime's kernels.
    for layer in ("| conv1 |", "| primary_caps |", "| class_caps |", "| IntDynamicRouting |"):
        assert layer in text, layer
    totals = [float(total) for total in re.findall(r"\| \*\*total\*\* \| \*\*([0-9.]+)\*\* \|", text)]
    assert len(totals) == 2 and all(total > 0 for total in totals)
    ratio = float(re.search(r"takes ([0-9.]+)x onnxruntime", text).group(1))
    assert abs(ratio - totals[0] / totals[1]) <= 0.02 * ratio + 0.01
