"""QDQ ONNX export of quantized capsule networks: ``export_onnx(quantized_model, example_inputs, path)``.

The export is an adapter over the quantized model: each quantized module gets an *export form* (same
arithmetic, written with Quantize/DequantizeLinear ops and the ``capsnet`` integer ops), torch's dynamo
exporter translates it, and a last pass stores weights of <= 4 bits as INT4.
"""

from capsnet_nncf_plugin.export.onnx_export import ExportedModel, export_onnx

__all__ = ["ExportedModel", "export_onnx"]
