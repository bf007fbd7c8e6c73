"""The primary-capsule convolution in onnxruntime's kernels: where the integer model's time is bounded.

    python benchmarks/conv_kernels.py                   # ShallowCaps: 256 -> 256 channels, 9x9, stride 2
    python benchmarks/conv_kernels.py --batch 1 --rounds 15

The convolution holds 95 % of ShallowCaps' multiply-accumulates. Each row runs the same convolution
(uint8 inputs, power-of-two scales) as a one-node-or-few graph, in one run and one process:

* ``fp32 Conv``: the float convolution, the reference the ratios are taken against;
* ``QLinearConv u8 x s8``: int8 weights, the fast path on AVX2 (``vpmaddubsw``), which saturates pairs of
  large products on CPUs without VNNI;
* ``QLinearConv u8 x u8``: uint8 weights with zero point 128, exact everywhere (what the exporter writes
  for 8-bit weights on 8-bit inputs, see docs/export.md);
* ``im2col + QLinearMatMul u8 x s8`` / ``u8 x u8``: the batch folded into one GEMM
  ([batch x positions, in x k x k] x [in x k x k, out]) after a Gather that builds the patches.

Cells: median milliseconds per batch over ``--rounds`` runs, the GEMM's throughput in GOP/s, and the ratio
to FP32. The GEMM-only column of the im2col rows excludes the Gather (from onnxruntime's profiler).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

INPUT_SCALE, WEIGHT_SCALE = 2.0**-7, 2.0**-10
OPSET = 21


@dataclass(frozen=True)
class ConvShape:
    batch: int = 32
    in_channels: int = 256
    out_channels: int = 256
    image: int = 20
    kernel: int = 9
    stride: int = 2

    @property
    def out_size(self) -> int:
        return (self.image - self.kernel) // self.stride + 1

    @property
    def patch(self) -> int:
        return self.in_channels * self.kernel * self.kernel

    @property
    def operations(self) -> float:
        """Multiplies and adds of the whole batch."""
        return 2.0 * self.batch * self.out_size**2 * self.patch * self.out_channels


VARIANTS = (
    "fp32 Conv",
    "QLinearConv u8 x s8",
    "QLinearConv u8 x u8",
    "im2col + QLinearMatMul u8 x s8",
    "im2col + QLinearMatMul u8 x u8",
)


def _scalar(value: float | int, dtype: type, name: str) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def _weight_tensor(codes: np.ndarray, unsigned: bool) -> tuple[np.ndarray, int]:
    if unsigned:
        return (codes.astype(np.int16) + 128).astype(np.uint8), 128
    return codes.astype(np.int8), 0


def patch_indices(shape: ConvShape) -> np.ndarray:
    """For each output position, the flattened input positions its kernel window reads: [positions, k*k]."""
    k, s, size = shape.kernel, shape.stride, shape.image
    return np.array(
        [
            [(s * oy + ky) * size + (s * ox + kx) for ky in range(k) for kx in range(k)]
            for oy in range(shape.out_size)
            for ox in range(shape.out_size)
        ],
        dtype=np.int64,
    )


def output_scale(shape: ConvShape, max_code: int) -> float:
    """A power of two that spreads the outputs over about +-16 codes (one standard deviation)."""
    # Uniform pixels in 0..255 and codes in +-max_code: the accumulator's standard deviation.
    spread = math.sqrt(shape.patch * (255 * 511 / 6) * (max_code * (max_code + 1) / 3))
    return 2.0 ** round(math.log2(spread * INPUT_SCALE * WEIGHT_SCALE / 16))


def build_graph(variant: str, shape: ConvShape, codes: np.ndarray, y_scale: float) -> onnx.ModelProto:
    """One variant's graph: input ``x`` [N, C, H, W], output ``y`` [N, out, OH, OW] (or [N*OH*OW, out])."""
    unsigned = variant.endswith("u8 x u8")
    weights, weight_zero = _weight_tensor(codes, unsigned)
    in_type = TensorProto.FLOAT if variant == "fp32 Conv" else TensorProto.UINT8
    quant = [
        _scalar(INPUT_SCALE, np.float32, "x_scale"),
        _scalar(0, np.uint8, "x_zero"),
        _scalar(WEIGHT_SCALE, np.float32, "w_scale"),
        _scalar(weight_zero, weights.dtype, "w_zero"),
        _scalar(y_scale, np.float32, "y_scale"),
        _scalar(128, np.uint8, "y_zero"),
    ]
    strides = [shape.stride, shape.stride]
    if variant == "fp32 Conv":
        initializers = [numpy_helper.from_array(codes.astype(np.float32) * np.float32(WEIGHT_SCALE), "w")]
        nodes = [helper.make_node("Conv", ["x", "w"], ["y"], strides=strides)]
    elif variant.startswith("QLinearConv"):
        initializers = [numpy_helper.from_array(weights, "w"), *quant]
        inputs = ["x", "x_scale", "x_zero", "w", "w_scale", "w_zero", "y_scale", "y_zero"]
        nodes = [helper.make_node("QLinearConv", inputs, ["y"], strides=strides)]
    else:
        # Weights pre-transposed to [patch, out] so the DQ-free QLinearMatMul reads them directly.
        columns = weights.reshape(shape.out_channels, shape.patch).T.copy()
        initializers = [
            numpy_helper.from_array(columns, "w"),
            numpy_helper.from_array(np.array([0, shape.in_channels, -1], np.int64), "flat_shape"),
            numpy_helper.from_array(patch_indices(shape), "patches"),
            numpy_helper.from_array(np.array([-1, shape.patch], np.int64), "rows_shape"),
            *quant,
        ]
        nodes = [
            helper.make_node("Reshape", ["x", "flat_shape"], ["flat"]),
            helper.make_node("Gather", ["flat", "patches"], ["windows"], axis=2),  # [N, C, P, k*k]
            helper.make_node("Transpose", ["windows"], ["by_position"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", ["by_position", "rows_shape"], ["rows"]),
            helper.make_node(
                "QLinearMatMul",
                ["rows", "x_scale", "x_zero", "w", "w_scale", "w_zero", "y_scale", "y_zero"],
                ["y"],
            ),
        ]
    graph = helper.make_graph(
        nodes,
        variant,
        [helper.make_tensor_value_info("x", in_type, ["N", shape.in_channels, shape.image, shape.image])],
        [helper.make_tensor_value_info("y", in_type, None)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10
    return model


def session(model: onnx.ModelProto, threads: int, profile: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = profile
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "capsq_conv_kernels")
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options)


def as_convolution(variant: str, output: np.ndarray, shape: ConvShape, y_scale: float) -> np.ndarray:
    """Any variant's output as uint8 codes [N, out, OH, OW] (FP32: quantized like the integer ones)."""
    if variant == "fp32 Conv":
        return np.clip(np.rint(output / y_scale) + 128, 0, 255).astype(np.uint8)
    if variant.startswith("im2col"):
        positions = shape.out_size
        output = output.reshape(-1, positions, positions, shape.out_channels).transpose(0, 3, 1, 2)
    return output


def gemm_milliseconds(graph: onnx.ModelProto, feed: np.ndarray, rounds: int, threads: int) -> float:
    """The QLinearMatMul node's mean time per run, from onnxruntime's profiler.

    A separate profiled session, so that profiling never slows the timed runs.
    """
    runner = session(graph, threads, profile=True)
    for _ in range(rounds):
        runner.run(None, {"x": feed})
    profile = Path(runner.end_profiling())
    kernel_us: Counter[str] = Counter()
    for event in json.loads(profile.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            kernel_us[event["args"]["op_name"]] += event["dur"]
    profile.unlink(missing_ok=True)
    return kernel_us["QLinearMatMul"] / 1000.0 / rounds


def run_variant(
    variant: str,
    shape: ConvShape,
    codes: np.ndarray,
    pixels: np.ndarray,
    y_scale: float,
    rounds: int,
    threads: int,
) -> tuple[list[float], float | None, np.ndarray]:
    """Per-round milliseconds, the GEMM's own milliseconds (im2col rows), and the output codes."""
    graph = build_graph(variant, shape, codes, y_scale)
    feed = pixels.astype(np.float32) * np.float32(INPUT_SCALE) if variant == "fp32 Conv" else pixels
    runner = session(graph, threads)
    output = runner.run(None, {"x": feed})[0]  # warm-up, also the result
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        runner.run(None, {"x": feed})
        times.append(1000.0 * (time.perf_counter() - started))
    gemm_ms = gemm_milliseconds(graph, feed, rounds, threads) if variant.startswith("im2col") else None
    return times, gemm_ms, as_convolution(variant, output, shape, y_scale)


def measure(shape: ConvShape, rounds: int, threads: int, max_code: int = 100, seed: int = 0) -> list[dict]:
    """One row per variant, measured in one run on the same pixels and weights (codes within +-max_code).

    With ``max_code <= 64`` no pair of products can saturate u8 x s8 kernels, so every integer variant
    computes the same codes; above, u8 x s8 may differ on CPUs without VNNI.
    """
    generator = np.random.default_rng(seed)
    weight_shape = (shape.out_channels, shape.in_channels, shape.kernel, shape.kernel)
    codes = generator.integers(-max_code, max_code + 1, weight_shape)
    pixels = generator.integers(0, 256, (shape.batch, shape.in_channels, shape.image, shape.image))
    pixels = pixels.astype(np.uint8)
    y_scale = output_scale(shape, max_code)
    rows = []
    for variant in VARIANTS:
        times, gemm_ms, output = run_variant(variant, shape, codes, pixels, y_scale, rounds, threads)
        median = statistics.median(times)
        rows.append(
            {
                "variant": variant,
                "ms_per_batch": median,
                "gemm_ms": gemm_ms,
                "gop_per_s": shape.operations / ((gemm_ms or median) / 1000.0) / 1e9,
                "output": output,
            }
        )
    reference = rows[0]["ms_per_batch"]
    for row in rows:
        row["ratio"] = row["ms_per_batch"] / reference
    return rows


def format_table(rows: list[dict], shape: ConvShape) -> str:
    lines = [
        f"convolution {shape.in_channels} -> {shape.out_channels}, {shape.kernel}x{shape.kernel}, stride "
        f"{shape.stride}, {shape.image}x{shape.image} input, batch {shape.batch}",
        "| variant | ms / batch | ms / image | GEMM only ms | GOP/s | ratio to fp32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        gemm = f"{row['gemm_ms']:.2f}" if row["gemm_ms"] is not None else ""
        lines.append(
            f"| {row['variant']} | {row['ms_per_batch']:.2f} | {row['ms_per_batch'] / shape.batch:.3f} | "
            f"{gemm} | {row['gop_per_s']:.0f} | {row['ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7, help="timed runs per variant (median)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.rounds < 1 or args.threads < 1:
        parser.error("--batch, --rounds and --threads must be >= 1")
    shape = ConvShape(batch=args.batch)
    print(format_table(measure(shape, args.rounds, args.threads), shape))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
