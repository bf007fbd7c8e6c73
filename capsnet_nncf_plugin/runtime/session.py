"""onnxruntime sessions with the ``capsnet`` custom ops: :func:`session_options` and
:func:`InferenceSession`.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper

from capsnet_nncf_plugin.errors import CapsqError
from capsnet_nncf_plugin.onnx_domain import DOMAIN, DOMAIN_VERSION, declare_output_types, widen_int4_weights
from capsnet_nncf_plugin.runtime.library import library_path

#: Session config entry recording that the library is registered in a SessionOptions object:
#: onnxruntime refuses to create a session whose options registered the same domain twice.
REGISTERED_CONFIG_KEY = "capsnet.custom_ops_library"
#: Its value when the caller registered the library (or another build of it) before handing the options over.
REGISTERED_BY_CALLER = "registered by the caller"
#: onnxruntime's message for options that registered the ``capsnet`` domain twice.
_DUPLICATE_DOMAIN_MESSAGE = "Domain already set in registry"
#: onnxruntime's config key for the folder of external initializers when the model comes as bytes.
_EXTERNAL_DATA_FOLDER_KEY = "session.model_external_initializers_file_folder_path"
_DEFAULT_PROVIDERS = ("CPUExecutionProvider",)

ModelSource = str | os.PathLike | bytes | onnx.ModelProto


class DuplicateRegistrationError(CapsqError, ValueError):
    """Session options that register the ``capsnet`` custom-op library twice: onnxruntime refuses them."""


def session_options(options: onnxruntime.SessionOptions | None = None) -> onnxruntime.SessionOptions:
    """``options`` (or new ones) with the custom-op library registered; registering twice is a no-op.

    Options whose ``capsnet`` ops were registered by hand (``options.register_custom_ops_library(...)``, as
    in docs/runtime.md) are left as they are: onnxruntime cannot say which libraries options hold, so
    options this function has not seen before are tried on a one-node ``capsnet`` model first.
    """
    fresh = options is None
    options = onnxruntime.SessionOptions() if options is None else options
    if not _is_registered(options):
        if not fresh and _runs_capsnet_ops(options):
            # Registering again would make onnxruntime refuse every session ("Domain already set in
            # registry"), so only the registration is recorded.
            options.add_session_config_entry(REGISTERED_CONFIG_KEY, REGISTERED_BY_CALLER)
        else:
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
    try:
        return onnxruntime.InferenceSession(
            model, sess_options=options, providers=list(providers or _DEFAULT_PROVIDERS), **kwargs
        )
    except Exception as error:  # onnxruntime's own exception classes; only this one is ours to explain
        if _DUPLICATE_DOMAIN_MESSAGE not in str(error):
            raise
        raise DuplicateRegistrationError(
            "these onnxruntime SessionOptions register the capsnet custom-op library twice (onnxruntime: "
            f"{_DUPLICATE_DOMAIN_MESSAGE}); register it once: pass options without "
            "register_custom_ops_library() and let InferenceSession or session_options() register it, or "
            "pass new options"
        ) from error


def _is_registered(options: onnxruntime.SessionOptions) -> bool:
    return bool(_config_entry(options, REGISTERED_CONFIG_KEY))


@functools.cache
def _probe_model() -> bytes:
    """One ``IntSquash`` node: a session on it can be created only where the ``capsnet`` ops are known."""
    node = helper.make_node("IntSquash", ["x"], ["y"], domain=DOMAIN, exponent_in=0, bits_out=8)
    graph = helper.make_graph(
        [node],
        "capsnet_probe",
        [helper.make_tensor_value_info("x", TensorProto.INT16, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, ["N", 2])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()


def _runs_capsnet_ops(options: onnxruntime.SessionOptions) -> bool:
    """Whether sessions made with ``options`` already run ``capsnet`` ops (the library registered by hand).

    The probe session must leave no trace: the options' profiling and optimized-model output, which a
    session writes to files, are switched off for it and restored.
    """
    profiling, optimized_path = options.enable_profiling, options.optimized_model_filepath
    options.enable_profiling, options.optimized_model_filepath = False, ""
    try:
        onnxruntime.InferenceSession(_probe_model(), options, providers=list(_DEFAULT_PROVIDERS))
    except Exception:  # "capsnet:IntSquash(-1) is not a registered function/op", or any other refusal
        return False
    finally:
        options.enable_profiling, options.optimized_model_filepath = profiling, optimized_path
    return True


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
