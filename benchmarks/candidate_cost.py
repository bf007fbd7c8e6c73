"""Where a candidate's time goes: one batch of an integer model, per layer as a search runs it in torch, and
per op type in onnxruntime on the same model exported.

    python benchmarks/candidate_cost.py --model zoo:deepcaps-mnist --allocation A.json \
        --markdown docs/candidate-cost.md

A search scores each candidate with the torch integer model, its squash and routing in the native kernels
(allocation/evaluator.py); ``capsq quantize``'s integer test runs the exported model in onnxruntime. Both
compute the same integers. This script times one batch of ``--batch`` validation images (the first the
search sees) through each, ``--repeats`` times after a warm-up, for the allocation given (default: 8 bits
everywhere):

* torch: per node of the converted model, as the prefix cache runs them (a module per layer; the few
  functions between layers together as "between layers");
* onnxruntime: per ONNX op type, from its own profile (the kernels alone).

The two totals and the three costliest rows of each say what an evaluation's time is made of, and how much
of it is arithmetic (convolutions, squash, routing) that either runtime must do. The table is appended to
``--markdown`` per model, with the CPU and its integer dot-product flags.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
import warnings
from pathlib import Path

import torch
from allocation import code_version, publish_section
from search_speed import cpu_description

from capsnet_nncf_plugin.allocation import quantizable_layers
from capsnet_nncf_plugin.allocation.native_kernels import native_kernels
from capsnet_nncf_plugin.cli.arguments import positive_int
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.data import search_images
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import iterate_batches
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.heap import keep_freed_memory
from capsnet_nncf_plugin.job import SearchConfig, load_inputs
from capsnet_nncf_plugin.runtime import InferenceSession, session_options

BETWEEN_LAYERS = "between layers"


class TimedInterpreter(torch.fx.Interpreter):
    """Runs a converted model node by node, adding each node's seconds to ``seconds`` (by module name)."""

    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.seconds: collections.Counter[str] = collections.Counter()

    def run_node(self, node: torch.fx.Node):
        started = time.perf_counter()
        result = super().run_node(node)
        name = node.target if node.op == "call_module" else BETWEEN_LAYERS
        self.seconds[str(name)] += time.perf_counter() - started
        return result


def torch_cost(quantized: torch.fx.GraphModule, images: torch.Tensor, repeats: int) -> dict[str, float]:
    """Seconds per batch of each layer of ``quantized``, native squash and routing, as a search runs it."""
    interpreter = TimedInterpreter(quantized)
    with native_kernels(), torch.no_grad():
        interpreter.run(images)  # warm-up: sessions of the native kernels, int8 weight packing
        interpreter.seconds.clear()
        for _ in range(repeats):
            interpreter.run(images)
    return {name: seconds / repeats for name, seconds in interpreter.seconds.items()}


def onnxruntime_cost(path: Path, images: torch.Tensor, repeats: int, folder: Path) -> dict[str, float]:
    """Seconds per batch of each ONNX op type of the model at ``path`` (onnxruntime's kernel times), the
    first run (a warm-up) left out."""
    options = session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "onnxruntime-profile")
    session = InferenceSession(str(path), options)
    feed = {session.get_inputs()[0].name: images.numpy()}
    for _ in range(repeats + 1):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted(event["ts"] for event in events if event.get("name") == "model_run")
    seconds: collections.Counter[str] = collections.Counter()
    for event in events:
        timed = event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time")
        if timed and event["ts"] >= runs[1]:
            seconds[event["args"]["op_name"]] += event["dur"] / 1e6
    return {name: value / repeats for name, value in seconds.items()}


def table(title: str, cost: dict[str, float]) -> list[str]:
    total = sum(cost.values())
    lines = [f"| {title} | ms per batch | share |", "| --- | ---: | ---: |"]
    for name, seconds in sorted(cost.items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {seconds * 1000:.1f} | {seconds / total:.0%} |")
    lines.append(f"| **total** | **{total * 1000:.1f}** | |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="zoo:NAME or a checkpoint")
    parser.add_argument("--allocation", type=Path, help="allocation.json (default: 8 bits)")
    parser.add_argument("--batch", type=positive_int, default=100, help="images per batch (a search's)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed batches after a warm-up")
    parser.add_argument("--calibration", type=positive_int, default=512, help="calibration images")
    parser.add_argument("--markdown", type=Path, help="also append the tables here")
    args = parser.parse_args(argv)
    allocation = BitAllocation.load(args.allocation) if args.allocation else None
    warnings.simplefilter("ignore")
    keep_freed_memory()  # as capsq does: batches above glibc's mmap threshold, see heap.py
    inputs = load_inputs(SearchConfig(model=args.model, calibration_images=args.calibration))
    if allocation is None:
        allocation = BitAllocation.uniform([layer.name for layer in quantizable_layers(inputs.model)])
    images = next(
        iter(iterate_batches(search_images(inputs.validation, args.calibration), args.batch, None))
    )[0]
    quantized = quantize_fx(inputs.model, inputs.calibration, allocation=allocation)
    in_torch = torch_cost(quantized, images, args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        exported = export_onnx(quantized, images[:2], Path(folder) / "model.onnx")
        in_onnxruntime = onnxruntime_cost(exported.path, images, args.repeats, Path(folder))
    ratio = sum(in_torch.values()) / sum(in_onnxruntime.values())
    lines = [
        f"## {args.model}",
        "",
        f"Allocation: {args.allocation or '8 bits everywhere'} ({allocation.method or 'uniform'}); "
        f"batches of {len(images)} validation images, {args.repeats} timed after a warm-up; "
        f"CPU: {cpu_description()}; {torch.get_num_threads()} threads; commit {code_version() or 'unknown'}. "
        f"Torch (native kernels) takes {ratio:.2f}x onnxruntime's kernel time per batch.",
        "",
        *table("torch integer model, per layer", in_torch),
        "",
        *table("onnxruntime, per op type", in_onnxruntime),
    ]
    return publish_section("\n".join(lines) + "\n", args.markdown)


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
