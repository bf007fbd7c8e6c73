"""``capture``: a user's CapsNet, as its author wrote it, rebuilt from the plugin's capsule modules.

Steps: ``torch.export`` with a dynamic batch; every node's value on the example inputs; the recognizers
(built-ins and plugins', in order) each claim regions of the graph and the plugin module that computes
them; the graph rebuilt with those modules; the rebuilt model checked against the original on the
example inputs (a mismatch raises). Patterns the integer ops do not compute exactly stay float, each with
a :class:`CaptureWarning` naming the subgraph, the variant and why.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import torch

from capsnet_nncf_plugin.capture.graph import CapturedGraph, CaptureError, export_model
from capsnet_nncf_plugin.capture.rebuild import CapturedModel, rebuild
from capsnet_nncf_plugin.capture.recognizers import RecognitionContext, run_order
from capsnet_nncf_plugin.plugins import collect

logger = logging.getLogger(__name__)

#: How far a rebuilt model's outputs may be from the original's, relative to their largest magnitude: float
#: rounding of the same maths computed in another order (and the ``eps`` of a squash), never a change of it.
OUTPUT_TOLERANCE = 1e-4


class CaptureWarning(UserWarning):
    """A pattern was recognized but stays float (the integer ops do not compute it exactly)."""


@dataclass(frozen=True)
class Recognized:
    name: str
    kind: str
    description: str


@dataclass
class CaptureReport:
    """What the capture found: each module it built, what stayed float and why, and how close the
    rebuilt model is to the original on the example inputs."""

    model: str
    recognized: list[Recognized] = field(default_factory=list)
    float_regions: list[str] = field(default_factory=list)
    max_difference: float = 0.0
    seconds: float = 0.0

    def kinds(self) -> list[str]:
        return [entry.kind for entry in self.recognized]

    def summary(self) -> str:
        lines = [
            f"captured {self.model} in {self.seconds:.1f} s (max output difference {self.max_difference:.2e})"
        ]
        lines += [f"  {entry.name}: {entry.kind} - {entry.description}" for entry in self.recognized]
        lines += [f"  float: {reason}" for reason in self.float_regions]
        return "\n".join(lines)


@dataclass
class Capture:
    module: CapturedModel
    report: CaptureReport


def _as_tuple(example_inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    if not inputs or any(not isinstance(x, torch.Tensor) or x.dim() == 0 for x in inputs):
        raise CaptureError("example_inputs must be one or more batched tensors, e.g. (images[:2],)")
    if any(x.shape[0] < 2 for x in inputs):
        raise CaptureError(
            "give example inputs with a batch of at least 2, so the captured batch stays dynamic"
        )
    if any(not x.is_floating_point() for x in inputs):
        raise CaptureError("example inputs must be float tensors (raw pixels as float 0..255 for the zoo)")
    return inputs


def capture_with_report(
    model: torch.nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...]
) -> Capture:
    """Capture ``model`` (left untouched) on ``example_inputs``; the rebuilt module and the report."""
    started = time.perf_counter()
    inputs = _as_tuple(example_inputs)
    model = model.eval()
    graph = CapturedGraph(export_model(model, inputs), inputs)
    context = RecognitionContext(graph)
    for name, recognizer in run_order(collect("capsnet_capture_recognizers")):
        try:
            recognizer(context)
        except CaptureError:
            raise
        except Exception as error:  # a recognizer's bug must name the recognizer
            raise CaptureError(
                f"capture recognizer {name!r} failed: {type(error).__name__}: {error}"
            ) from error
    captured = rebuild(graph, context.matches, type(model).__name__)
    difference = _check(model, captured, inputs)
    report = CaptureReport(
        model=type(model).__name__,
        recognized=[Recognized(match.name, match.kind, match.description) for match in context.matches],
        float_regions=list(context.warnings),
        max_difference=difference,
        seconds=time.perf_counter() - started,
    )
    for message in context.warnings:
        warnings.warn(message, CaptureWarning, stacklevel=2)
    logger.info("%s", report.summary())
    captured.capture_report = report
    return Capture(captured, report)


def capture(model: torch.nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> CapturedModel:
    """``model`` rebuilt from the plugin's capsule modules: hand it to ``prepare_fx``, ``quantize_fx``, the
    NNCF adapter, ``allocate`` or ``export_onnx`` as any model built from them. Its report is
    ``captured.capture_report``."""
    return capture_with_report(model, example_inputs).module


def _check(model: torch.nn.Module, captured: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """The largest output difference on the example inputs; raises if it is more than float rounding."""
    with torch.no_grad():
        expected, actual = model(*inputs), captured(*inputs)
    pairs = list(zip(_leaves(expected), _leaves(actual), strict=False))
    if len(pairs) != len(_leaves(expected)) or len(_leaves(actual)) != len(pairs):
        raise CaptureError(
            "the captured model returns other outputs than the model; this is a bug in the capture"
        )
    largest = 0.0
    for want, got in pairs:
        if want.shape != got.shape:
            raise CaptureError(
                f"the captured model's output has shape {tuple(got.shape)}, the model's {tuple(want.shape)}"
            )
        difference = float((want.double() - got.double()).abs().max()) if want.numel() else 0.0
        scale = float(want.abs().max()) if want.numel() else 0.0
        largest = max(largest, difference)
        same_class = want.dim() < 2 or torch.equal(want.argmax(dim=-1), got.argmax(dim=-1))
        if difference > OUTPUT_TOLERANCE * scale + 1e-6 or not same_class:
            raise CaptureError(
                f"the captured model differs from the model on the example inputs (max difference "
                f"{difference:.3g} of {scale:.3g}); please report it with the model"
            )
    return largest


def _leaves(output: object) -> list[torch.Tensor]:
    return [leaf for leaf in torch.utils._pytree.tree_leaves(output) if isinstance(leaf, torch.Tensor)]
