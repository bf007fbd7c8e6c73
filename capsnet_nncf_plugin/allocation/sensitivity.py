"""Quantization-error analysis: how much each layer, block and routing iteration suffers from each
bit-width, alone.

Three levels, each quantized *alone* at every candidate width with everything else at 16 bits, each run
on the FP32 inputs cached by one pass over the calibration data, each error measured on its own output
against the cached FP32 output (SQNR in dB and MSE):

* layers: every quantizable layer and every kind of tensor it quantizes (weights, its activation, its
  routing tensors);
* blocks (a DeepCaps cell, a ShallowCaps layer): every layer of the block at once, for weights and for
  activations, on the block's output, each layer calibrated on its own FP32 inputs; a block of one layer
  is that layer;
* routing iterations: one routing tensor (b, c, s or v) of one iteration of one routing layer, on the
  layer's output.

Only the unit under test runs, so an entry costs about one calibration pass of that unit.

A lazy analysis (``analyze_errors(..., lazy=True)``) measures each entry the first time a method asks for
it: progressive descent reads one width per kind, so it pays for 6 of ShallowCaps' 49 layer entries.
With ``cache=PATH`` every entry is also written to a JSON file as soon as it is measured, under a
fingerprint of the model's weights, the calibration images and the settings; an analysis of the same
fingerprint reads its entries back instead of measuring them (a DeepCaps analysis is tens of minutes on
2 cores: runs with other search settings, and a run interrupted part-way, share it).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from capsnet_nncf_plugin.allocation.layers import Layer, blocks, quantizable_layers
from capsnet_nncf_plugin.allocation.native_kernels import native_kernels
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.core.bit_widths import ROUTING_TENSORS, LayerBits, RoutingBits, routing_entries
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.fingerprint import measurement_fingerprint
from capsnet_nncf_plugin.fx.calibration import CalibrationStatistics, calibrate
from capsnet_nncf_plugin.fx.observed import observe, to_quantized
from capsnet_nncf_plugin.fx.qconfig import make_qconfig
from capsnet_nncf_plugin.quantized.carrier import as_float
from capsnet_nncf_plugin.quantized.layer_kinds import routing_iterations

KINDS = ("weight", "activation", "routing")
#: The kinds a block is assigned as a unit; routing is analysed per iteration instead.
BLOCK_KINDS = ("weight", "activation")
CANDIDATE_BITS = (2, 3, 4, 5, 6, 7, 8)
#: Width of every kind not under test: close enough to float that it adds no visible error.
REFERENCE_BITS = 16

Entry = dict[str, float]

#: Version of the cache file layout; a file of another version is measured over.
CACHE_FORMAT = 1
#: The three stores of entries and how many integer-keyed levels each has above its entries.
_STORES = {"errors": 1, "block_errors": 1, "iteration_errors": 2}

logger = logging.getLogger(__name__)


def sqnr_db(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum ref^2 / sum (ref - approx)^2)`` in dB."""
    reference = reference.double()
    return _sqnr_db(reference, reference - approximation.double())


def _sqnr_db(reference: torch.Tensor, error: torch.Tensor) -> float:
    signal = float((reference**2).sum())
    noise = float((error**2).sum())
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def error_entry(reference: torch.Tensor, approximation: torch.Tensor) -> Entry:
    """The SQNR (dB) and MSE of ``approximation`` against ``reference``."""
    # Each tensor converted once (the same sums as before, a third of the float64 traffic).
    reference = reference.double()
    error = reference - approximation.double()
    return {"sqnr_db": _sqnr_db(reference, error), "mse": float((error * error).mean())}


class Measurer(Protocol):
    """What a lazy analysis asks to measure one entry of each level."""

    def layer(self, name: str, kind: str, bits: int) -> Entry: ...

    def block(self, block: str, kind: str, bits: int) -> Entry: ...

    def iteration(self, name: str, tensor: str, iteration: int, bits: int) -> Entry: ...


def _by_sqnr(units: Iterable[Any], sqnr: Callable[[Any], float]) -> list[Any]:
    return sorted(units, key=lambda unit: -sqnr(unit))


@dataclass
class ErrorAnalysis:
    """Errors per level: ``errors[layer][kind][bits]``, ``block_errors[block][kind][bits]`` (blocks of
    several layers; a one-layer block reads its layer's entries) and
    ``iteration_errors[layer][tensor][iteration][bits]``, each entry ``{"sqnr_db": ..., "mse": ...}``.

    ``kinds[layer]`` lists the kinds of tensor each layer quantizes, ``iterations[layer]`` the routing
    iterations of each routing layer. With ``measure`` set (a lazy analysis), the accessors measure a
    missing entry on first use; ``complete()`` measures all of them.
    """

    layers: list[Layer]
    errors: dict[str, dict[str, dict[int, Entry]]] = field(default_factory=dict)
    seconds: float = 0.0
    kinds: dict[str, list[str]] = field(default_factory=dict)
    candidate_bits: list[int] = field(default_factory=lambda: list(CANDIDATE_BITS))
    measure: Measurer | None = field(default=None, repr=False, compare=False)
    block_errors: dict[str, dict[str, dict[int, Entry]]] = field(default_factory=dict)
    iteration_errors: dict[str, dict[str, dict[int, dict[int, Entry]]]] = field(default_factory=dict)
    iterations: dict[str, int] = field(default_factory=dict)
    cache: Path | None = field(default=None, repr=False, compare=False)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        for name, by_kind in self.errors.items():  # an analysis built from finished errors
            self.kinds.setdefault(name, list(by_kind))

    def _entry(self, store: dict, path: tuple, bits: int, measure: Callable[[], Entry]) -> Entry:
        node = store
        for key in path:
            node = node.get(key, {})
        if bits in node:
            return node[bits]
        if self.measure is None:
            raise KeyError(f"the error analysis has no entry for {' / '.join(map(str, path))} / {bits} bits")
        started = time.perf_counter()
        entry = measure()
        self.seconds += time.perf_counter() - started
        node = store
        for key in path:
            node = node.setdefault(key, {})
        node[bits] = entry
        if self.cache is not None:
            self._write_cache()
        return entry

    # --- cache ----------------------------------------------------------------------------------------

    def measured(self) -> dict[str, Any]:
        """Every entry measured so far, JSON-ready; :meth:`absorb` reads it back."""

        def keyed(tree: Any) -> Any:
            if isinstance(tree, dict) and not _is_entry(tree):
                return {str(key): keyed(value) for key, value in tree.items()}
            return tree

        return {store: keyed(getattr(self, store)) for store in _STORES}

    def absorb(self, measured: dict[str, Any]) -> int:
        """Take the entries of ``measured`` (from :meth:`measured`) this analysis lacks; returns how many.

        Entries of layers, kinds, blocks or routing tensors this model does not have are refused: they
        come from another model, whatever the file says.
        """
        added = 0
        for store, integer_levels in _STORES.items():
            for unit, by_name in measured.get(store, {}).items():
                for name, subtree in by_name.items():
                    self._check_known(store, unit, name)
                    for path, bits, entry in _leaves(subtree, integer_levels):
                        node = getattr(self, store).setdefault(unit, {}).setdefault(name, {})
                        for key in path:
                            node = node.setdefault(key, {})
                        if bits not in node:
                            node[bits] = {key: float(value) for key, value in entry.items()}
                            added += 1
        return added

    def _check_known(self, store: str, unit: str, name: str) -> None:
        if store == "errors":
            known = name in self.kinds.get(unit, ())
        elif store == "block_errors":
            known = unit in self.blocks() and name in self.block_kinds(unit)
        else:
            known = unit in self.iterations and name in ROUTING_TENSORS
        if not known:
            raise ValueError(
                f"the saved error analysis has {store} entries for {unit} / {name}, which this model does "
                f"not have: it belongs to another model; delete the cache file or pass another one"
            )

    def _write_cache(self) -> None:
        document = {"format": CACHE_FORMAT, "fingerprint": self.fingerprint, **self.measured()}
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.cache, json.dumps(document, default=float) + "\n")

    def attach_cache(self, path: str | os.PathLike, fingerprint: str) -> int:
        """Read the entries of ``path`` if it holds this ``fingerprint``, and write every new one to it.

        Returns the number of entries read. A file of another fingerprint or format is left alone until
        the first new entry replaces it.
        """
        self.cache, self.fingerprint = Path(path), fingerprint
        if not self.cache.exists():
            return 0
        try:
            document = json.loads(self.cache.read_text())
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("ignoring the error-analysis cache %s (%s); measuring afresh", self.cache, error)
            return 0
        if document.get("format") != CACHE_FORMAT or document.get("fingerprint") != fingerprint:
            logger.info(
                "error-analysis cache %s is of another model, calibration or settings: measuring afresh",
                self.cache,
            )
            return 0
        added = self.absorb(document)
        logger.info("error analysis: %d entries read from %s", added, self.cache)
        return added

    # --- layers ---------------------------------------------------------------------------------------

    def error(self, layer: str, kind: str, bits: int) -> Entry:
        """The entry of ``(layer, kind, bits)``, measured now if the analysis is lazy and lacks it."""
        if self.measure is not None and kind not in self.kinds.get(layer, ()):
            raise KeyError(f"the error analysis has no entry for {layer} / {kind} / {bits} bits")
        return self._entry(self.errors, (layer, kind), bits, lambda: self.measure.layer(layer, kind, bits))

    def sqnr(self, layer: str, kind: str, bits: int) -> float:
        return self.error(layer, kind, bits)["sqnr_db"]

    def kinds_of(self, layer: str) -> list[str]:
        return list(self.kinds.get(layer, ()))

    def ranking(self, kind: str, bits: int) -> list[str]:
        """Layers having ``kind`` from least to most susceptible at ``bits`` (highest SQNR first)."""
        names = [layer.name for layer in self.layers if kind in self.kinds.get(layer.name, ())]
        return _by_sqnr(names, lambda name: self.sqnr(name, kind, bits))

    def smallest_bits(self, layer: str, kind: str, min_sqnr_db: float, default: int = 8) -> int:
        """The smallest width below ``default`` whose SQNR reaches ``min_sqnr_db`` (``default`` if none does).

        The widths tried are the candidates and, where the analysis can measure them (lazy), every width
        between the widest candidate and ``default``: a layer that 8 bits leave just short of the
        threshold then gets 9 or 10 bits, not the whole 12 of a wide start.
        """
        return self._smallest_width(lambda bits: self.sqnr(layer, kind, bits), min_sqnr_db, default)

    def _smallest_width(self, sqnr: Callable[[int], float], min_sqnr_db: float, default: int) -> int:
        widths = set(self.candidate_bits)
        if self.measure is not None and widths:
            widths.update(range(max(widths) + 1, default))
        for bits in sorted(width for width in widths if width < default):
            if sqnr(bits) >= min_sqnr_db:
                return bits
        return default

    # --- blocks ---------------------------------------------------------------------------------------

    def blocks(self) -> dict[str, list[str]]:
        """Each block's layer names, in execution order."""
        return {block: [layer.name for layer in members] for block, members in blocks(self.layers).items()}

    def block_kinds(self, block: str) -> list[str]:
        members = self.blocks()[block]
        return [kind for kind in BLOCK_KINDS if any(kind in self.kinds.get(name, ()) for name in members)]

    def block_error(self, block: str, kind: str, bits: int) -> Entry:
        """The entry of every layer of ``block`` at once with ``kind`` at ``bits``, on the block's output."""
        members = self.blocks()[block]
        if len(members) == 1:
            return self.error(members[0], kind, bits)
        if kind not in self.block_kinds(block):
            raise KeyError(f"block {block} quantizes no {kind}")
        return self._entry(
            self.block_errors, (block, kind), bits, lambda: self.measure.block(block, kind, bits)
        )

    def block_sqnr(self, block: str, kind: str, bits: int) -> float:
        return self.block_error(block, kind, bits)["sqnr_db"]

    def block_ranking(self, kind: str, bits: int) -> list[str]:
        """Blocks having ``kind`` from least to most susceptible at ``bits`` (highest SQNR first)."""
        having = [block for block in self.blocks() if kind in self.block_kinds(block)]
        return _by_sqnr(having, lambda block: self.block_sqnr(block, kind, bits))

    # --- routing iterations ---------------------------------------------------------------------------

    def iteration_count(self, layer: str, tensor: str) -> int:
        """How many widths routing tensor ``tensor`` of ``layer`` has (iterations, or logit updates)."""
        if layer not in self.iterations:
            raise KeyError(f"{layer} is not a routing layer of this analysis")
        return routing_entries(tensor, self.iterations[layer])

    def iteration_error(self, layer: str, tensor: str, iteration: int, bits: int) -> Entry:
        """The entry of ``tensor`` in ``iteration`` of routing layer ``layer`` alone at ``bits``."""
        if not 0 <= iteration < self.iteration_count(layer, tensor):
            raise KeyError(f"{layer} has no {tensor} entry {iteration}")
        return self._entry(
            self.iteration_errors,
            (layer, tensor, iteration),
            bits,
            lambda: self.measure.iteration(layer, tensor, iteration, bits),
        )

    def iteration_sqnr(self, layer: str, tensor: str, iteration: int, bits: int) -> float:
        return self.iteration_error(layer, tensor, iteration, bits)["sqnr_db"]

    def smallest_iteration_bits(
        self, layer: str, tensor: str, iteration: int, min_sqnr_db: float, default: int = 8
    ) -> int:
        """The smallest width below ``default`` at which ``tensor`` of ``iteration`` alone keeps the routing
        layer's output SQNR at ``min_sqnr_db`` (``default`` if none does); the widths as
        :meth:`smallest_bits` tries them."""
        return self._smallest_width(
            lambda bits: self.iteration_sqnr(layer, tensor, iteration, bits), min_sqnr_db, default
        )

    def iteration_ranking(self, layer: str, tensor: str, bits: int) -> list[int]:
        """The iterations of ``tensor`` in ``layer`` from least to most susceptible at ``bits``."""
        indices = range(self.iteration_count(layer, tensor))
        return _by_sqnr(indices, lambda index: self.iteration_sqnr(layer, tensor, index, bits))

    # --- all of it ------------------------------------------------------------------------------------

    def jobs(self) -> list[Callable[[], Entry]]:
        """One call per entry of every level and candidate width (what ``complete`` measures)."""
        widths = self.candidate_bits
        layer_calls = [
            lambda n=name, k=kind, b=bits: self.error(n, k, b)
            for name, kinds in self.kinds.items()
            for kind in kinds
            for bits in widths
        ]
        block_calls = [
            lambda blk=block, k=kind, b=bits: self.block_error(blk, k, b)
            for block, members in self.blocks().items()
            if len(members) > 1
            for kind in self.block_kinds(block)
            for bits in widths
        ]
        iteration_calls = [
            lambda n=name, t=tensor, i=index, b=bits: self.iteration_error(n, t, i, b)
            for name in self.iterations
            for tensor in ROUTING_TENSORS
            for index in range(self.iteration_count(name, tensor))
            for bits in widths
        ]
        return layer_calls + block_calls + iteration_calls

    def complete(self, progress: bool = False) -> ErrorAnalysis:
        """Measure every missing entry of every level and order the widths; returns ``self``."""
        for call in tqdm(self.jobs(), desc="error analysis", disable=not progress, leave=False):
            call()
        for levels in (self.errors, self.block_errors):
            for by_kind in levels.values():
                for kind, by_bits in by_kind.items():
                    by_kind[kind] = dict(sorted(by_bits.items()))
        for by_tensor in self.iteration_errors.values():
            for by_index in by_tensor.values():
                for index, by_bits in by_index.items():
                    by_index[index] = dict(sorted(by_bits.items()))
        return self

    def rankings(self) -> dict[str, Any]:
        """Least susceptible first, at every candidate width: layers and blocks per kind, the iterations
        of every routing tensor per routing layer."""
        widths = self.candidate_bits
        return {
            "layers": {kind: {b: self.ranking(kind, b) for b in widths} for kind in self._kinds_present()},
            "blocks": {kind: {b: self.block_ranking(kind, b) for b in widths} for kind in BLOCK_KINDS},
            "routing_iterations": {
                name: {
                    t: {b: self.iteration_ranking(name, t, b) for b in widths} for t in self._tensors(name)
                }
                for name in self.iterations
            },
        }

    def _kinds_present(self) -> list[str]:
        return [kind for kind in KINDS if any(kind in kinds for kinds in self.kinds.values())]

    def _tensors(self, layer: str) -> list[str]:
        return [tensor for tensor in ROUTING_TENSORS if self.iteration_count(layer, tensor) > 0]

    def to_dict(self) -> dict:
        if self.measure is not None:
            self.complete()

        def by_width(by_bits: dict[int, Any]) -> dict[str, Any]:
            return {str(bits): value for bits, value in by_bits.items()}

        return {
            "layers": [layer.__dict__ for layer in self.layers],
            "errors": {
                name: {kind: by_width(by_bits) for kind, by_bits in kinds.items()}
                for name, kinds in self.errors.items()
            },
            "blocks": {
                block: {
                    "layers": members,
                    "errors": {
                        kind: by_width({b: self.block_error(block, kind, b) for b in self.candidate_bits})
                        for kind in self.block_kinds(block)
                    },
                }
                for block, members in self.blocks().items()
            },
            "routing_iterations": {
                name: {
                    tensor: {
                        str(index): by_width(by_bits)
                        for index, by_bits in self.iteration_errors.get(name, {}).get(tensor, {}).items()
                    }
                    for tensor in self._tensors(name)
                }
                for name in self.iterations
            },
            "rankings": json.loads(json.dumps(self.rankings())),  # JSON keys: widths as strings
            "seconds": self.seconds,
        }

    def save(self, path: str | os.PathLike) -> Path:
        destination = Path(path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(destination, json.dumps(self.to_dict(), indent=2, default=float) + "\n")
        return destination


def _is_entry(tree: dict) -> bool:
    return "sqnr_db" in tree


def _leaves(tree: dict, integer_levels: int, path: tuple[int, ...] = ()):
    """``(path, bits, entry)`` of a saved subtree: ``integer_levels`` integer keys, the last one the width."""
    for key, value in tree.items():
        if integer_levels == 1:
            yield path, int(key), value
        else:
            yield from _leaves(value, integer_levels - 1, (*path, int(key)))


def analysis_fingerprint(
    model: torch.nn.Module,
    batches: list[torch.Tensor],
    candidate_bits: list[int],
    settings: QuantizationSettings,
) -> str:
    """What an analysis's entries depend on: the model's code, parameters and buffers, the calibration
    images and the settings, hashed."""
    described = [candidate_bits, settings.clip, settings.bias_correction, CACHE_FORMAT]
    # Appended only when it differs from the default, so caches written before GPTQ existed stay valid.
    if settings.weight_rounding != "nearest":
        described.append(settings.weight_rounding)
    return measurement_fingerprint(model, (("batch", batch) for batch in batches), described)


def _capture_fp32(
    model: torch.nn.Module, names: list[str], batches: list[torch.Tensor]
) -> dict[str, tuple[list[tuple[torch.Tensor, ...]], list[torch.Tensor]]]:
    """The inputs (positional arguments) and output of each module ``names`` on every batch."""
    modules = dict(model.named_modules())
    captured: dict[str, tuple[list[tuple[torch.Tensor, ...]], list[torch.Tensor]]] = {
        name: ([], []) for name in names
    }
    handles = []
    for name in names:

        def hook(module, inputs, output, name=name):
            captured[name][0].append(tuple(tensor.detach() for tensor in inputs))
            captured[name][1].append(output.detach())

        handles.append(modules[name].register_forward_hook(hook))
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def quantize_alone(
    module: torch.nn.Module,
    inputs: list[torch.Tensor],
    bits: LayerBits,
    settings: QuantizationSettings,
    fused_relu: bool,
    moments: dict[str, torch.Tensor] | None = None,
    statistics: dict[tuple[str, ...], CalibrationStatistics] | None = None,
) -> torch.nn.Module:
    """The plugin's quantized module for ``module`` alone, calibrated on ``inputs`` as ``quantize_fx`` would
    calibrate it inside the model (``calibrate``: statistics, bias correction, GPTQ rounding).

    A reference-width weight (an activation or routing entry) is the exact baseline: rounded to nearest,
    without a clipping search. ``moments``: a dict kept across calls on the same module and inputs, so GPTQ's
    input moments are gathered once. ``statistics``: the same for the observers' statistics, which do not
    depend on the widths (``SharedCalibration``): the float pass over ``inputs`` runs once per layer, not
    once per entry (not with bias correction, which measures each width's own weights).
    """
    reference = bits.weight >= REFERENCE_BITS
    # A 16-bit reference weight needs no clipping search (it would cost more than the rest of the run).
    qconfig = make_qconfig(bits, settings.clip, "minmax" if reference else "mse")
    if reference and settings.weight_rounding == "gptq":
        settings = QuantizationSettings(settings.clip, settings.bias_correction, "nearest")
    observed = observe(module, qconfig, fused_relu)
    shared = statistics is not None and not settings.bias_correction
    signature = CalibrationStatistics.signature(observed)
    known = statistics.get(signature) if shared else None
    calibrate(observed, inputs, settings, moments=moments, restore=known)
    if shared and known is None:
        statistics[signature] = CalibrationStatistics.of(observed)
    return to_quantized(observed)


class _FloatOutput(torch.nn.Module):
    """A quantized layer inside a float block: the block's own float code reads its output."""

    def __init__(self, quantized: torch.nn.Module) -> None:
        super().__init__()
        self.quantized = quantized

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return as_float(self.quantized(tensor))


def _bits_for(kind: str, bits: int) -> LayerBits:
    wide = REFERENCE_BITS
    return LayerBits(
        weight=bits if kind == "weight" else wide,
        activation=bits if kind == "activation" else wide,
        routing=RoutingBits.from_dict(bits if kind == "routing" else wide),
    )


@dataclass
class _CalibrationMeasurer:
    """Measures entries on the FP32 inputs and outputs captured from the calibration pass."""

    modules: dict[str, torch.nn.Module]
    layers: dict[str, Layer]
    members: dict[str, list[str]]  # block -> its layer names
    captured: dict[str, tuple[list[tuple[torch.Tensor, ...]], list[torch.Tensor]]]  # layers and blocks
    iterations: dict[str, int]
    settings: QuantizationSettings
    moments: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # GPTQ's, per layer
    statistics: dict[str, dict] = field(default_factory=dict)  # the observers', per layer

    def _quantized(self, name: str, bits: LayerBits) -> torch.nn.Module:
        inputs = [arguments[0] for arguments in self.captured[name][0]]
        return quantize_alone(
            self.modules[name],
            inputs,
            bits,
            self.settings,
            self.layers[name].fused_relu,
            self.moments.setdefault(name, {}),
            self.statistics.setdefault(name, {}),
        )

    def _layer_entry(self, name: str, bits: LayerBits) -> Entry:
        quantized = self._quantized(name, bits)
        inputs, outputs = self.captured[name]
        with torch.no_grad():
            approximation = torch.cat([as_float(quantized(arguments[0])) for arguments in inputs])
        reference = torch.cat(outputs)
        if self.layers[name].fused_relu:
            reference = torch.relu(reference)
        return error_entry(reference, approximation)

    # Every entry runs the integer squash and routing with the native kernels where they load: the same
    # integers as the torch reference, so the same entries (the cache fingerprint stays valid).

    def layer(self, name: str, kind: str, bits: int) -> Entry:
        with native_kernels():
            return self._layer_entry(name, _bits_for(kind, bits))

    def iteration(self, name: str, tensor: str, iteration: int, bits: int) -> Entry:
        count = routing_entries(tensor, self.iterations[name])
        routing = RoutingBits.from_dict(REFERENCE_BITS).with_entry(tensor, iteration, bits, count)
        with native_kernels():
            return self._layer_entry(name, LayerBits(REFERENCE_BITS, REFERENCE_BITS, routing))

    def block(self, block: str, kind: str, bits: int) -> Entry:
        quantized_block = copy.deepcopy(self.modules[block])
        for name in self.members[block]:
            wrapped = _FloatOutput(self._quantized(name, _bits_for(kind, bits)))
            quantized_block.set_submodule(name.removeprefix(f"{block}."), wrapped)
        inputs, outputs = self.captured[block]
        with torch.no_grad(), native_kernels():
            approximation = torch.cat([quantized_block(*arguments) for arguments in inputs])
        return error_entry(torch.cat(outputs), approximation)


def analyze_errors(
    model: torch.nn.Module,
    calibration_batches: Iterable[torch.Tensor],
    candidate_bits: Iterable[int] = CANDIDATE_BITS,
    settings: QuantizationSettings | None = None,
    progress: bool = False,
    lazy: bool = False,
    cache: str | os.PathLike | None = None,
    cache_folder: str | os.PathLike | None = None,
) -> ErrorAnalysis:
    """The error of every layer, block and routing iteration alone at every width (see the module doc).

    ``settings``: the clipping rule, bias correction and weight rounding every entry is quantized with, as
    ``quantize_fx`` would (default: ``QuantizationSettings()``).
    ``lazy``: measure nothing but the FP32 pass now, each entry when first asked for.
    ``cache``: a JSON file that keeps every measured entry; entries it already holds for the same model,
    calibration images and settings are read instead of measured.
    ``cache_folder``: a folder of such files, one per fingerprint (``cache`` wins when both are given).
    """
    settings = settings or QuantizationSettings()
    started = time.perf_counter()
    model = model.eval()
    layers = quantizable_layers(model)
    batches = list(calibration_batches)
    if not batches:
        raise ValueError("analyze_errors needs at least one calibration batch")
    members = {block: [layer.name for layer in group] for block, group in blocks(layers).items()}
    multi_layer_blocks = [block for block, names in members.items() if len(names) > 1]
    captured = _capture_fp32(model, [layer.name for layer in layers] + multi_layer_blocks, batches)
    modules = dict(model.named_modules())
    kinds = {
        layer.name: [
            kind
            for kind in KINDS
            if (kind != "routing" or layer.routing) and (kind != "weight" or _has_weight(modules[layer.name]))
        ]
        for layer in layers
    }
    iterations = {layer.name: routing_iterations(modules[layer.name]) for layer in layers if layer.routing}
    measurer = _CalibrationMeasurer(
        modules=modules,
        layers={layer.name: layer for layer in layers},
        members=members,
        captured=captured,
        iterations=iterations,
        settings=settings,
    )
    analysis = ErrorAnalysis(
        layers,
        kinds=kinds,
        candidate_bits=sorted(set(candidate_bits)),
        measure=measurer,
        iterations=iterations,
    )
    if cache is not None or cache_folder is not None:
        fingerprint = analysis_fingerprint(model, batches, analysis.candidate_bits, settings)
        path = cache if cache is not None else Path(cache_folder) / f"{fingerprint}.json"
        analysis.attach_cache(path, fingerprint)
    analysis.seconds = time.perf_counter() - started
    if not lazy:
        analysis.complete(progress)
    return analysis


def _has_weight(module: torch.nn.Module) -> bool:
    if isinstance(module, torch.nn.BatchNorm2d):
        return False
    return any(isinstance(getattr(m, "weight", None), torch.nn.Parameter) for m in module.modules())
