"""The runtime runs an exported model with onnxruntime and numpy alone: a deployment machine has no torch."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import torch
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantize_fx

RUN_WITHOUT_TORCH = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # any import of torch now fails
    import numpy as np
    from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier

    model, images, expected = sys.argv[1:4]
    scores = OnnxClassifier(InferenceSession(model))(np.load(images))
    assert isinstance(scores, np.ndarray), type(scores)
    assert np.array_equal(scores, np.load(expected)), np.abs(scores - np.load(expected)).max()
    assert not any(name == "torch" or name.startswith("torch.") for name in sys.modules if sys.modules[name])
    print("bit-identical without torch:", scores.shape)
    """
)


def test_an_exported_model_runs_bit_for_bit_without_torch(tmp_path):
    model, images = tiny_capsnet(), tiny_images(24, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = quantize_fx(model, [images[:16]], weight_bits=4, activation_bits=6)
        exported = export_onnx(quantized, images[:2], tmp_path / "model.onnx")
    with torch.no_grad():
        expected = quantized(images[8:])
    np.save(tmp_path / "images.npy", images[8:].numpy())
    np.save(
        tmp_path / "expected.npy",
        expected.dequantize().numpy() if expected.is_quantized else expected.numpy(),
    )
    arguments = [str(exported.path), str(tmp_path / "images.npy"), str(tmp_path / "expected.npy")]
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TORCH, *arguments], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "bit-identical without torch: (16, 3)" in result.stdout
