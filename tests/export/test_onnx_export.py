"""export_onnx: QDQ ONNX that onnxruntime runs bit for bit like the torch quantized model."""

import collections
import logging
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.allocation.layers import quantizable_layers
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.errors import ExportError
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.export.forms import ExportWeightLayer
from capsnet_nncf_plugin.export.onnx_export import TORCH_EXPORTER_REGISTRY_LOGGER, export_form
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.models import create
from capsnet_nncf_plugin.runtime import InferenceSession

LEVELS = {
    "unoptimized": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "optimized": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def run_onnx(
    path, images: torch.Tensor, level: str = "unoptimized", optimized_path=None, widen_int4: bool = True
) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = LEVELS[level]
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    session = InferenceSession(str(path), sess_options=options, widen_int4=widen_int4)
    return session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]


def quantized_tiny(**bits):
    images = tiny_images(32)
    return quantize_fx(tiny_capsnet(), [images[:16], images[16:]], **bits), tiny_images(48, seed=7)


def op_counts(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph.node)


def unread_values(model: onnx.ModelProto) -> list[str]:
    """Node outputs and initializers that no node and no graph output reads."""
    graph = model.graph
    read = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
    written = [name for node in graph.node for name in node.output] + [t.name for t in graph.initializer]
    return [name for name in written if name and name not in read]


@pytest.mark.parametrize("level", sorted(LEVELS))
@pytest.mark.parametrize(
    "bits",
    [
        {},
        {"weight_bits": 4},
        {"activation_bits": 6, "routing_bits": 5},
        {"weight_bits": 3, "activation_bits": 12, "routing_bits": {"logits": 10, "coupling": 7}},
        {"weight_bits": 3, "weight_rounding": "gptq"},
    ],
    ids=["8-bit", "int4-weights", "6-bit-act-5-bit-routing", "mixed-12-bit", "gptq-3-bit-weights"],
)
def test_onnxruntime_matches_torch_bit_for_bit(tmp_path, bits, level):
    quantized, images = quantized_tiny(**bits)
    exported = export_onnx(quantized, images[:2], tmp_path / "tiny.onnx")
    expected = quantized(images).numpy()
    actual = run_onnx(exported.path, images, level)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def test_layout_is_qdq_with_capsnet_ops_and_fuses_into_qlinearconv(tmp_path):
    quantized, images = quantized_tiny()
    exported = export_onnx(quantized, images[:2], tmp_path / "tiny.onnx")
    model = onnx.load(exported.path)
    counts = op_counts(model)
    assert counts["Conv"] == 2 and counts["QuantizeLinear"] >= 4 and counts["DequantizeLinear"] >= 6
    assert exported.op_types["capsnet.IntSquash"] == 1 and exported.op_types["capsnet.IntDynamicRouting"] == 1
    assert {opset.domain: opset.version for opset in model.opset_import}[""] == 21
    # Every scale in the file is an exact power of two.
    constants = {
        node.output[0]: onnx.numpy_helper.to_array(node.attribute[0].t)
        for node in model.graph.node
        if node.op_type == "Constant" and node.attribute[0].name == "value"
    }
    scales = [n.input[1] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(scales) == counts["QuantizeLinear"] + counts["DequantizeLinear"]
    for name in scales:
        mantissas, _ = np.frexp(constants[name].reshape(-1))
        assert np.all(mantissas == 0.5), name
    optimized_path = tmp_path / "optimized.onnx"
    run_onnx(exported.path, images[:4], "optimized", optimized_path)
    assert op_counts(onnx.load(optimized_path))["QLinearConv"] == 2


def test_weights_of_at_most_4_bits_are_int4(tmp_path):
    quantized, images = quantized_tiny(weight_bits=4)
    exported = export_onnx(quantized, images[:2], tmp_path / "tiny.onnx")
    model = onnx.load(exported.path)
    int4 = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT4]
    assert exported.int4_weights == len(int4) == 3  # conv, primary capsules, W_ij
    for tensor in int4:
        codes = onnx.numpy_helper.to_array(tensor)
        assert codes.min() >= -8 and codes.max() <= 7
        assert len(tensor.raw_data) == (codes.size + 1) // 2  # two codes per byte
    # The int8 zero points INT4 weights no longer take are gone, not left for onnxruntime to warn about.
    assert unread_values(model) == []
    int8 = export_onnx(quantize_fx(tiny_capsnet(), [tiny_images(16)]), images[:2], tmp_path / "int8.onnx")
    assert exported.size_bytes < int8.size_bytes


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_int4_weights_run_widened_to_int8_with_the_same_outputs_and_fused(tmp_path, level):
    quantized, images = quantized_tiny(weight_bits=3)
    exported = export_onnx(quantized, images[:2], tmp_path / "tiny.onnx")
    as_stored = run_onnx(exported.path, images, level, tmp_path / "int4.onnx", widen_int4=False)
    widened = run_onnx(exported.path, images, level, tmp_path / "int8.onnx")
    np.testing.assert_array_equal(widened, as_stored)
    if level == "unoptimized":
        np.testing.assert_array_equal(widened, quantized(images).numpy())
    else:  # onnxruntime has no INT4 convolution: only the widened weights reach QLinearConv
        assert op_counts(onnx.load(tmp_path / "int4.onnx"))["QLinearConv"] == 0
        assert op_counts(onnx.load(tmp_path / "int8.onnx"))["QLinearConv"] == 2
    stored = onnx.load(exported.path).graph.initializer  # the file itself is untouched: still INT4
    assert any(t.data_type == onnx.TensorProto.INT4 for t in stored)


def test_batch_is_dynamic(tmp_path):
    quantized, images = quantized_tiny()
    exported = export_onnx(quantized, images[:2], tmp_path / "tiny.onnx")
    for batch in (1, 5):
        np.testing.assert_array_equal(
            run_onnx(exported.path, images[:batch]), quantized(images[:batch]).numpy()
        )


def test_export_logs_nothing_about_the_torchvision_ops_it_does_not_use(tmp_path, caplog):
    quantized, images = quantized_tiny()
    registry_logger = logging.getLogger(TORCH_EXPORTER_REGISTRY_LOGGER)
    callers_level = registry_logger.level
    registry_logger.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.WARNING):
            export_onnx(quantized, images[:2], tmp_path / "tiny.onnx")
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        # The logger is left as the caller set it.
        assert registry_logger.level == logging.INFO
    finally:
        registry_logger.setLevel(callers_level)


def test_shallowcaps_file_sizes_against_fp32_onnx(tmp_path):
    torch.manual_seed(0)
    model = create("shallowcaps", in_channels=1, image_size=28, num_classes=10).eval()
    images = torch.randint(0, 256, (8, 1, 28, 28), generator=torch.Generator().manual_seed(0)).float()
    torch.onnx.export(model, (images[:2],), tmp_path / "fp32.onnx", dynamo=True, opset_version=21)
    fp32 = (tmp_path / "fp32.onnx").stat().st_size + sum(
        p.stat().st_size for p in tmp_path.iterdir() if p.suffix == ".data"
    )
    int8 = export_onnx(quantize_fx(model, [images]), images[:2], tmp_path / "int8.onnx")
    int4 = export_onnx(quantize_fx(model, [images], weight_bits=4), images[:2], tmp_path / "int4.onnx")
    assert fp32 / int8.size_bytes >= 3.5
    assert fp32 / int4.size_bytes >= 6.0
    np.testing.assert_array_equal(
        run_onnx(int4.path, images, "optimized"), quantize_fx(model, [images], weight_bits=4)(images).numpy()
    )


def layer_outputs_on(network: torch.nn.Module, layers: list[str], images: torch.Tensor) -> dict:
    """The float output values of each quantized module (or its export form), by layer name."""
    outputs, handles = {}, []
    for name in layers:

        def keep(_module, _inputs, output, name=name):
            outputs[name] = output.dequantize() if output.is_quantized else output

        handles.append(network.get_submodule(name).register_forward_hook(keep))
    with torch.no_grad():
        network(images)
    for handle in handles:
        handle.remove()
    return outputs


# The first cell reads the stem through an ``unsqueeze``. A narrower first cell reads the stem's output
# unchanged; one told to narrow its input must do so in the export form too (a signed 8-bit stem output
# once went through unclamped there, off by up to 0.47 on the zoo model).
@pytest.mark.parametrize("first_cell", ["uniform", "narrower-output", "narrows-its-input"])
def test_deepcaps_exports_and_matches(tmp_path, first_cell):
    torch.manual_seed(0)
    model = create("deepcaps", in_channels=1, image_size=28, num_classes=10).eval()
    with torch.no_grad():
        model.stem_bn.bias.fill_(-0.3)  # a signed stem output, as in the trained models
    images = torch.randint(0, 256, (6, 1, 28, 28), generator=torch.Generator().manual_seed(0)).float()
    names = [layer.name for layer in quantizable_layers(model)]
    allocation = BitAllocation.uniform(names)
    if first_cell != "uniform":
        allocation = allocation.with_layer("cell1.entry", activation=5)
    quantized = quantize_fx(model, [images], allocation=allocation, clip="minmax")
    if first_cell == "narrows-its-input":
        quantized.cell1.entry.input_bits = 4
    # An untrained DeepCaps's scores hardly depend on its first cell: compare every layer's output.
    form = export_form(quantized, (images[:2],))
    layer_outputs = [layer_outputs_on(network, names, images) for network in (quantized, form)]
    assert layer_outputs[0].keys() == layer_outputs[1].keys()
    for name, expected_output in layer_outputs[0].items():
        assert torch.equal(expected_output, layer_outputs[1][name]), name
    exported = export_onnx(quantized, images[:2], tmp_path / "deepcaps.onnx")
    assert exported.op_types["capsnet.IntDynamicRouting"] == 2  # the 3D routing cell and the class capsules
    expected = quantized(images).numpy()
    for level in LEVELS:
        np.testing.assert_array_equal(run_onnx(exported.path, images, level), expected)


def test_bad_input_gives_clear_errors_and_writes_nothing(tmp_path, monkeypatch):
    model = tiny_capsnet()
    images = tiny_images(4)
    with pytest.raises(ExportError, match="quantized capsule modules"):
        export_onnx(model, images[:2], tmp_path / "float.onnx")
    quantized = quantize_fx(model, [images])
    with pytest.raises(ValueError, match="opset"):
        export_onnx(quantized, images[:2], tmp_path / "old.onnx", opset=17)
    with pytest.raises(ValueError, match="batch of at least 2"):
        export_onnx(quantized, images[:1], tmp_path / "one.onnx")

    def failing_checker(*args, **kwargs):
        raise onnx.checker.ValidationError("simulated")

    monkeypatch.setattr(onnx.checker, "check_model", failing_checker)
    with pytest.raises(ExportError, match=r"onnx\.checker"):
        export_onnx(quantized, images[:2], tmp_path / "checked.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("weight_bits", "input_bits", "signed", "exact"),
    [(8, 8, False, False), (7, 8, False, True), (8, 7, False, True), (8, 7, True, False), (6, 8, True, True)],
)
def test_u8s8_is_exact_only_where_pairs_of_products_fit_16_bits(weight_bits, input_bits, signed, exact):
    from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
    from capsnet_nncf_plugin.export.forms import u8s8_is_exact

    assert u8s8_is_exact(weight_bits, PowerOfTwoQuantizer(input_bits, signed, -4)) is exact


def test_narrow_weights_keep_int8_and_stay_bit_exact_when_fused(tmp_path):
    quantized, images = quantized_tiny(weight_bits=6)
    exported = export_onnx(quantized, images[:2], tmp_path / "tiny.onnx")
    model = onnx.load(exported.path)
    weights = [t for t in model.graph.initializer if t.name.endswith(".codes")]
    assert weights and all(t.data_type == onnx.TensorProto.INT8 for t in weights)
    optimized_path = tmp_path / "optimized.onnx"
    actual = run_onnx(exported.path, images, "optimized", optimized_path)
    np.testing.assert_array_equal(actual, quantized(images).numpy())
    assert op_counts(onnx.load(optimized_path))["QLinearConv"] == 2


def test_layers_beyond_float32s_exact_sums_export_exact(tmp_path):
    """11-bit weights on 11-bit inputs (the Q-CapsNets allocation on deepcaps-fmnist): a DeepCaps cell sums
    past 2^24 accumulator steps, which onnxruntime's float32 convolution would round; the export cuts the
    input codes into exact float32 passes joined in float64, as the torch model computes them."""
    torch.manual_seed(0)
    model = create("deepcaps", in_channels=1, image_size=28, num_classes=10).eval()
    images = torch.randint(0, 256, (6, 1, 28, 28), generator=torch.Generator().manual_seed(1)).float()
    names = [layer.name for layer in quantizable_layers(model)]
    allocation = BitAllocation.uniform(names)
    for name in ("cell2.main1", "cell2.main2", "cell2.skip"):
        allocation = allocation.with_layer(name, weight=11, activation=11)
    allocation = allocation.with_layer("cell4.skip", weight=11, activation=9)  # a Conv3d of votes
    quantized = quantize_fx(model, [images], allocation=allocation, clip="minmax")
    form = export_form(quantized, (images[:2],))
    parts = {
        name: module.parts for name, module in form.named_modules() if isinstance(module, ExportWeightLayer)
    }
    assert parts["cell2.main2.module.layer.conv"] >= 2  # the wide layers split ...
    assert parts["cell4.skip.module.layer.votes"] >= 2
    assert parts["cell1.main1.module.layer.conv"] == 1  # ... 8-bit ones stay one pass (QLinearConv)
    layer_outputs = [layer_outputs_on(network, names, images) for network in (quantized, form)]
    for name, expected_output in layer_outputs[0].items():
        assert torch.equal(expected_output, layer_outputs[1][name]), name
    exported = export_onnx(quantized, images[:2], tmp_path / "wide.onnx")
    expected = quantized(images).numpy()
    for level in LEVELS:
        np.testing.assert_array_equal(run_onnx(exported.path, images, level), expected)
