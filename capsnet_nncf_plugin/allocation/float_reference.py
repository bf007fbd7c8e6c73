"""The FP32 model's classes through onnxruntime, the same as torch's, for the job's FP32 passes.

A first run scores the float model on every test image (10,000) and on the search's validation images.
On DeepCaps torch runs those passes at 122 images/s on 2 cores, and onnxruntime runs the same model,
exported, at 222 (2.0x on a quiet AMD EPYC with AVX2; docs/search-speed.md). The two differ by float
rounding (at most 8e-7 on DeepCaps' class scores over 1,000 images), which can change a class only where
the top two scores nearly tie. :class:`FloatClassifier` scores those images again in torch and hands back
torch's scores for them, so its classes are torch's wherever the two runtimes differ by less than half of
``NEAR_TIE``; its first batch checks that they differ by less than ``AGREEMENT``.

The model is exported for one batch size (the job's), so a model whose trace depends on the batch (a loop
over ``x.size(0)``) is exported as it runs at that size; other batch sizes (the last, partial batch) run
in torch. A model that does not export, or whose first batch disagrees, runs in torch throughout, with one
log line saying why.
"""

from __future__ import annotations

import io
import logging

import onnxruntime
import torch

from capsnet_nncf_plugin.export.onnx_export import quiet_torch_exporter

logger = logging.getLogger(__name__)

#: Images whose top two float scores lie closer than this are scored in torch again.
NEAR_TIE = 1e-3
#: The most the two runtimes' scores may differ on the first batch; more and the model runs in torch.
AGREEMENT = 1e-4
#: The ONNX opset of the float export (every op a float CapsNet uses is older).
FLOAT_OPSET = 17


class FloatClassifier:
    """``model`` (images -> class scores) as a callable whose classes are torch's, run by onnxruntime on
    batches of ``batch_size`` where the model exports, in torch otherwise (module doc)."""

    def __init__(self, model: torch.nn.Module, batch_size: int) -> None:
        self.model = model.eval()
        self.batch_size = batch_size
        self.session: onnxruntime.InferenceSession | None = None
        self._checked = False
        self.runtime = "torch"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if len(images) != self.batch_size or not self._open(images):
                return self.model(images)
            scores = _scores(self.session, images)
            if scores.shape[1] > 1:
                top = scores.topk(2, dim=1).values
                near = (top[:, 0] - top[:, 1]) < NEAR_TIE
                if near.any():
                    scores[near] = self.model(images[near])
            return scores

    def _open(self, images: torch.Tensor) -> bool:
        """Export and check the model on its first full batch ``images``, once; whether it runs there."""
        if self._checked:
            return self.session is not None
        self._checked = True
        try:
            session = _float_session(self.model, images)
            largest = float((_scores(session, images) - self.model(images)).abs().max())
        except Exception as error:  # any failure to export or run: torch stays, and the run goes on
            logger.info("FP32 passes in torch: the float model does not run in onnxruntime (%s)", error)
            return False
        if not largest <= AGREEMENT:
            logger.info("FP32 passes in torch: onnxruntime's scores differ from torch's by %.3g", largest)
            return False
        self.session, self.runtime = session, "onnxruntime"
        logger.info("FP32 passes in onnxruntime (classes as torch's; first batch within %.1g)", largest)
        return True


def _scores(session: onnxruntime.InferenceSession, images: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(session.run(None, {"images": images.contiguous().numpy()})[0])


def _float_session(model: torch.nn.Module, example: torch.Tensor) -> onnxruntime.InferenceSession:
    """An onnxruntime session of ``model`` exported at ``example``'s shape, on as many threads as torch."""
    buffer = io.BytesIO()
    with quiet_torch_exporter():
        torch.onnx.export(
            model, (example,), buffer, dynamo=False, opset_version=FLOAT_OPSET, input_names=["images"]
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
