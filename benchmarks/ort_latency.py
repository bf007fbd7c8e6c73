"""Inference latency: FP32 torch, FP32 onnxruntime, onnxruntime's own quantize_static, and this plugin.

    python benchmarks/ort_latency.py                                  # zoo:shallowcaps-mnist
    python benchmarks/ort_latency.py --model runs/x/best.pt --rounds 7

Every backend runs in its own process (one model, one thread pool), and the rounds interleave the
backends, so they share the machine's state alike; each cell is the median over rounds of each round's
median. Rows, at batch 1 and 32, in ms per image and as a ratio to FP32 onnxruntime:

* ``fp32 torch``: the float model in eager mode;
* ``fp32 onnxruntime``: the float model exported with torch's dynamo exporter;
* ``ort quantize_static``: onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights, uint8
  activations, calibrated on the same images) of the FP32 ONNX: what a user would do without the plugin
  (routing stays float);
* ``capsnet (ours)``: ``export_onnx`` of the 8-bit power-of-two model with the integer capsnet ops.

Then the routing alone on the model's votes: ``capsnet.IntDynamicRouting`` against float routing in
onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from capsnet_nncf_plugin.cli.arguments import positive_int
from capsnet_nncf_plugin.errors import run_reporting_user_errors

BACKENDS = ("fp32 torch", "fp32 onnxruntime", "ort quantize_static", "capsnet (ours)")
ROUTING = ("float routing", "IntDynamicRouting")


def _load_model(reference: str) -> tuple[torch.nn.Module, str]:
    from capsnet_nncf_plugin.models import create, open_checkpoint

    if reference.startswith("untrained:"):
        torch.manual_seed(0)
        return create(
            reference.split(":", 1)[1], in_channels=1, image_size=28, num_classes=10
        ).eval(), "mnist"
    checkpoint = open_checkpoint(reference)
    checkpoint.model.without_decoder()
    return checkpoint.model.eval(), checkpoint.metadata.get("dataset", "mnist")


def _calibration_images(dataset: str, count: int) -> torch.Tensor:
    from capsnet_nncf_plugin.data import load_dataset
    from capsnet_nncf_plugin.errors import DatasetError

    try:
        return load_dataset(dataset, "val").images[:count].float()
    except DatasetError:  # the timing does not depend on the pixels: say so and go on
        print(f"({dataset} not available: timing on random pixels)", file=sys.stderr)
        return torch.randint(0, 256, (count, 1, 28, 28)).float()


def prepare(reference: str, folder: Path, calibration_count: int) -> dict[str, str]:
    """Write every backend's model file into ``folder``; returns backend -> file."""
    import onnxruntime.quantization as ortq

    from capsnet_nncf_plugin.export import export_onnx
    from capsnet_nncf_plugin.fx import quantize_fx
    from capsnet_nncf_plugin.nn import DynamicRouting

    model, dataset = _load_model(reference)
    images = _calibration_images(dataset, calibration_count)
    batch = torch.export.Dim("batch")
    files = {"fp32 torch": str(folder / "model.pt"), "fp32 onnxruntime": str(folder / "fp32.onnx")}
    torch.save(model, files["fp32 torch"])
    torch.onnx.export(
        model,
        (images[:2],),
        files["fp32 onnxruntime"],
        external_data=False,
        dynamo=True,
        opset_version=21,
        dynamic_shapes=({0: batch},),
        verbose=False,
    )

    class Reader(ortq.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"images": b.numpy()} for b in images.split(64)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    preprocessed = folder / "fp32-preprocessed.onnx"
    ortq.quant_pre_process(files["fp32 onnxruntime"], str(preprocessed), skip_symbolic_shape=True)
    files["ort quantize_static"] = str(folder / "ort-static.onnx")
    ortq.quantize_static(
        str(preprocessed),
        files["ort quantize_static"],
        Reader(),
        quant_format=ortq.QuantFormat.QDQ,
        per_channel=True,
        activation_type=ortq.QuantType.QUInt8,
        weight_type=ortq.QuantType.QInt8,
    )
    quantized = quantize_fx(model, images.split(128))
    files["capsnet (ours)"] = str(export_onnx(quantized, images[:2], folder / "capsnet.onnx").path)

    # Routing alone: the float module and the integer op on the votes of the model's last routing.
    routing = [m for m in model.modules() if isinstance(m, DynamicRouting)][-1]
    seen: list[torch.Tensor] = []
    handle = routing.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        model(images[:32])
    handle.remove()
    votes = seen[-1]
    torch.save(votes, folder / "votes.pt")
    torch.onnx.export(
        DynamicRouting(routing.iterations),
        (votes[:2],),
        folder / "routing.onnx",
        dynamo=True,
        opset_version=21,
        dynamic_shapes=({0: batch},),
        verbose=False,
    )
    files["float routing"] = str(folder / "routing.onnx")
    files["IntDynamicRouting"] = str(folder / "int-routing.onnx")
    _write_int_routing_model(quantized, votes, Path(files["IntDynamicRouting"]))
    return files


def _write_int_routing_model(quantized: torch.nn.Module, votes: torch.Tensor, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from capsnet_nncf_plugin.quantized import QuantizedRoutingLayer

    layer = [m for m in quantized.modules() if isinstance(m, QuantizedRoutingLayer)][-1]
    params = layer.routing
    node = helper.make_node("IntDynamicRouting", ["votes"], ["v"], domain="capsnet", **params.to_dict())
    output_type = TensorProto.INT8 if params.output_bits <= 8 else TensorProto.INT16
    graph = helper.make_graph(
        [node],
        "routing",
        [helper.make_tensor_value_info("votes", TensorProto.INT8, ["N", *votes.shape[1:]])],
        [helper.make_tensor_value_info("v", output_type, ["N", votes.shape[2], votes.shape[3]])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("capsnet", 1)], ir_version=8
    )
    onnx.save(model, path)
    codes = layer.votes_quantizer.quantize(votes).to(torch.int8)
    torch.save(codes, path.with_suffix(".votes.pt"))


def worker(backend: str, path: str, batch: int, repeats: int) -> float:
    """Median ms per image of one backend at one batch size (runs in its own process)."""
    from capsnet_nncf_plugin.latency import median_latency_ms
    from capsnet_nncf_plugin.runtime import InferenceSession

    folder = Path(path).parent
    if backend in ROUTING:
        inputs = torch.load(folder / "votes.pt")
        if backend == "IntDynamicRouting":
            inputs = torch.load(Path(path).with_suffix(".votes.pt"))
    else:
        inputs = torch.randint(0, 256, (batch, 1, 28, 28)).float()
    inputs = (
        inputs[:batch]
        if inputs.shape[0] >= batch
        else inputs.repeat(batch // inputs.shape[0] + 1, 1, 1, 1)[:batch]
    )
    if backend == "fp32 torch":
        model = torch.load(path, weights_only=False)
        return median_latency_ms(model, inputs, repeats) / batch
    session = InferenceSession(path)
    name = session.get_inputs()[0].name
    array = inputs.numpy()

    def run(_: torch.Tensor) -> None:
        session.run(None, {name: array})

    return median_latency_ms(run, inputs, repeats) / batch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="zoo:shallowcaps-mnist", help="zoo:NAME, a checkpoint, or untrained:NAME"
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=5, help="interleaved rounds per backend and batch"
    )
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed runs per round")
    parser.add_argument("--calibration", type=positive_int, default=256)
    parser.add_argument(
        "--worker", nargs=4, metavar=("BACKEND", "FILE", "BATCH", "REPEATS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.worker:
        backend, path, batch, repeats = args.worker
        print(json.dumps(worker(backend, path, int(batch), int(repeats))))
        return
    with tempfile.TemporaryDirectory() as folder:
        files = prepare(args.model, Path(folder), args.calibration)
        timings: dict[tuple[str, int], list[float]] = {}
        for round_index in range(args.rounds):
            for batch in (1, 32):
                for backend in (*BACKENDS, *ROUTING):
                    command = [
                        sys.executable,
                        __file__,
                        "--worker",
                        backend,
                        files[backend],
                        str(batch),
                        str(args.repeats),
                    ]
                    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                    timings.setdefault((backend, batch), []).append(
                        json.loads(output.strip().splitlines()[-1])
                    )
            print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    median = {key: statistics.median(values) for key, values in timings.items()}
    print(f"\n{args.model}: median ms per image ({args.rounds} interleaved rounds x {args.repeats} runs)")
    print(f"{'backend':<22}{'batch 1':>10}{'ratio':>8}{'batch 32':>10}{'ratio':>8}")
    for backend in BACKENDS:
        cells = []
        for batch in (1, 32):
            value = median[(backend, batch)]
            cells.append(f"{value:>10.3f}{value / median[('fp32 onnxruntime', batch)]:>8.2f}")
        print(f"{backend:<22}{''.join(cells)}")
    print("\nrouting alone, on the votes of the last routing layer (ratio to float routing)")
    for backend in ROUTING:
        cells = "".join(
            f"{median[(backend, b)]:>10.3f}{median[(backend, b)] / median[('float routing', b)]:>8.2f}"
            for b in (1, 32)
        )
        print(f"{backend:<22}{cells}")
    ours, static = median[("capsnet (ours)", 32)], median[("ort quantize_static", 32)]
    print(
        f"\nbatch 32: ours / FP32 onnxruntime = {ours / median[('fp32 onnxruntime', 32)]:.2f}x, "
        f"ours / quantize_static = {ours / static:.2f}x"
    )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
