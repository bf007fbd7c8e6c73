"""onnxruntime sessions with the ``capsnet`` custom ops: :func:`session_options` and
:func:`InferenceSession`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime

from capsnet_nncf_plugin.onnx_domain import declare_output_types, widen_int4_weights
from capsnet_nncf_plugin.runtime.library import library_path

#: Session config entry recording that the library is registered in a SessionOptions object:
#: onnxruntime refuses to create a session whose options registered the same domain twice.
REGISTERED_CONFIG_KEY = "capsnet.custom_ops_library"
#: onnxruntime's config key for the folder of external initializers when the model comes as bytes.
_EXTERNAL_DATA_FOLDER_KEY = "session.model_external_initializers_file_folder_path"
_DEFAULT_PROVIDERS = ("CPUExecutionProvider",)

ModelSource = str | os.PathLike | bytes | onnx.ModelProto


def session_options(options: onnxruntime.SessionOptions | None = None) -> onnxruntime.SessionOptions:
    """``options`` (or new ones) with the custom-op library registered; registering twice is a no-op."""
    if options is None:
        options = onnxruntime.SessionOptions()
    if not _is_registered(options):
        path = str(library_path())
        options.register_custom_ops_library(path)
        options.add_session_config_entry(REGISTERED_CONFIG_KEY, path)
    return options


def InferenceSession(
    path_or_bytes: ModelSource,
    sess_options: onnxruntime.SessionOptions | None = None,
    providers: list | tuple | None = None,
    widen_int4: bool = True,
    **kwargs,
) -> onnxruntime.InferenceSession:
    """An ``onnxruntime.InferenceSession`` that can run ``capsnet`` ops, on the CPU provider by default.

    ``path_or_bytes`` is a model path, serialized model or ``onnx.ModelProto``. The library is registered
    into ``sess_options`` (which are modified, as with :func:`session_options`), and the output dtypes of
    ``capsnet`` nodes that the model does not declare are added (:func:`declare_output_types`) before the
    model reaches onnxruntime. ``widen_int4``: INT4 weights are handed to onnxruntime as INT8 with the same
    values (the file is not touched; see ``export.int4.widen_int4_weights``), because its CPU provider runs
    INT4 convolutions in float. Other keyword arguments go to ``onnxruntime.InferenceSession``.
    """
    options = session_options(sess_options)
    model = _prepared_model(path_or_bytes, options, widen_int4)
    return onnxruntime.InferenceSession(
        model, sess_options=options, providers=list(providers or _DEFAULT_PROVIDERS), **kwargs
    )


def _is_registered(options: onnxruntime.SessionOptions) -> bool:
    return bool(_config_entry(options, REGISTERED_CONFIG_KEY))


def _config_entry(options: onnxruntime.SessionOptions, key: str) -> str:
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # onnxruntime raises for a key that was never set
        return ""


def _prepared_model(
    source: ModelSource, options: onnxruntime.SessionOptions, widen_int4: bool
) -> str | bytes:
    """The model as onnxruntime takes it: the path or bytes unchanged when nothing needs adding (declared
    capsnet output types, INT4 weights widened), else the amended model as bytes."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
    elif isinstance(source, bytes):
        model = onnx.load_model_from_string(source)
    else:
        model = onnx.load_model(os.fspath(source), load_external_data=False)
    changed = declare_output_types(model)
    changed = (widen_int4 and widen_int4_weights(model) > 0) or changed
    if isinstance(source, onnx.ModelProto) or changed:
        if not isinstance(source, bytes | onnx.ModelProto) and not _config_entry(
            options, _EXTERNAL_DATA_FOLDER_KEY
        ):
            # The model reaches onnxruntime as bytes: external initializers are found relative to this folder.
            folder = str(Path(os.fspath(source)).resolve().parent)
            options.add_session_config_entry(_EXTERNAL_DATA_FOLDER_KEY, folder)
        return model.SerializeToString()
    return source if isinstance(source, bytes) else os.fspath(source)


class OnnxClassifier:
    """An onnxruntime session as an ``images -> scores`` callable (one input, one output).

    Takes a numpy array, or anything with ``.detach().cpu().numpy()`` such as a torch tensor; returns scores
    of the same kind (a torch tensor for torch input). The runtime itself never imports torch: a caller
    that passes torch tensors has it loaded already.
    """

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        if len(session.get_inputs()) != 1:
            raise ValueError(
                f"OnnxClassifier needs a one-input model, this one has {len(session.get_inputs())}"
            )
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, images: Any) -> Any:
        is_torch = hasattr(images, "detach")
        array = images.detach().cpu().numpy() if is_torch else images
        scores = self.session.run(None, {self.input_name: np.ascontiguousarray(array, dtype=np.float32)})[0]
        return sys.modules["torch"].from_numpy(scores) if is_torch else scores
