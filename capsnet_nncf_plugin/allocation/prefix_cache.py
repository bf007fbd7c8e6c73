"""Reuse what did not change between two candidates of a search: the activations of the common prefix.

Most candidates of a search differ from an allocation evaluated before in one layer or one routing tensor
(a descent lowers one layer; a routing search changes the class capsules alone). Every quantized module
before the first changed one computes exactly what it computed then, on the same validation batches, so
its outputs can be kept and the candidate run from there.

:class:`PrefixRunner` runs a converted model (the FX graph of the integer model) node by node. Each node
gets a key: a hash of what determines its output, the node's own state (a module's formats, weight codes
and buffers; a function and its constant arguments) and the keys of its inputs. Two candidates' nodes with
equal keys compute equal tensors. At a few *cuts* (positions between nodes where the values still needed
are few and small, chosen by :func:`choose_cuts` from the time spent before them per byte kept) the values
alive are stored in a :class:`PrefixCache`, by batch and by the keys of those values; a later candidate
whose values at a cut have the same keys starts that batch there. Nothing is approximated: the nodes after
the cut run on the very tensors the earlier candidate's nodes produced
(tests/allocation/test_fast_evaluation.py compares with the plain forward pass).

The cache holds at most ``budget_bytes`` (least recently used batches go first).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import torch

from capsnet_nncf_plugin.quantized.modules import QuantizedModule

#: Module attributes that say nothing about what a module computes.
_IGNORED_ATTRIBUTES = frozenset({"training", "_is_full_backward_hook", "bound", "_t"})
#: Values a node's key is built from as they are; anything else is summarised by its type.
_PLAIN_TYPES = (int, float, str, bool, type(None), torch.dtype, torch.device, torch.memory_format, slice)


def _describe(value: Any) -> Any:
    """A hashable, address-free description of an attribute or constant argument."""
    if isinstance(value, _PLAIN_TYPES):
        return repr(value)
    if isinstance(value, enum.Enum):
        return repr(value)
    if isinstance(value, torch.Tensor):
        return _tensor_digest(value)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_describe(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(key), _describe(item)) for key, item in value.items())))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (type(value).__qualname__, tuple((f.name, _describe(getattr(value, f.name))) for f in fields))
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(type(value)))}"
    return f"<{type(value).__qualname__}>"


def _tensor_digest(tensor: torch.Tensor) -> tuple:
    tensor = tensor.detach()
    if tensor.is_quantized:
        header = (str(tensor.dtype), tuple(tensor.shape), float(tensor.q_scale()), int(tensor.q_zero_point()))
        tensor = tensor.int_repr()
    else:
        header = (str(tensor.dtype), tuple(tensor.shape))
    data = tensor.contiguous().view(-1)
    if data.dtype == torch.bool:
        data = data.to(torch.uint8)
    digest = hashlib.blake2b(data.view(torch.uint8).numpy().tobytes(), digest_size=16).hexdigest()
    return (*header, digest)


#: Keys of the quantized modules seen so far. Those are inference forms that nothing modifies in place, and
#: a search's candidates share most of theirs (``SharedCalibration(share_modules=True)``): hashing their
#: weights again for every candidate took 6 s of a DeepCaps descent.
_quantized_module_keys: weakref.WeakKeyDictionary[QuantizedModule, str] = weakref.WeakKeyDictionary()


def module_key(module: torch.nn.Module) -> str:
    """A hash of everything that decides what ``module`` computes: the types, plain attributes, buffers and
    parameters of it and of every submodule."""
    if isinstance(module, QuantizedModule):
        if module not in _quantized_module_keys:
            _quantized_module_keys[module] = _content_key(module)
        return _quantized_module_keys[module]
    return _content_key(module)


def _content_key(module: torch.nn.Module) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, sub in module.named_modules():
        attributes = {
            key: value
            for key, value in vars(sub).items()
            if not key.startswith("_") and key not in _IGNORED_ATTRIBUTES
        }
        tensors = [
            *((f"b:{key}", value) for key, value in sub._buffers.items()),
            *((f"p:{key}", value) for key, value in sub._parameters.items()),
        ]
        description = (name, type(sub).__qualname__, _describe(attributes), _describe(dict(tensors)))
        digest.update(repr(description).encode())
    return digest.hexdigest()


def _argument_key(argument: Any, keys: dict[torch.fx.Node, str]) -> Any:
    if isinstance(argument, torch.fx.Node):
        return ("node", keys[argument])
    if isinstance(argument, (tuple, list)):
        return (type(argument).__name__, tuple(_argument_key(item, keys) for item in argument))
    if isinstance(argument, dict):
        return ("dict", tuple(sorted((str(k), _argument_key(v, keys)) for k, v in argument.items())))
    return _describe(argument)


def node_keys(model: torch.fx.GraphModule) -> dict[torch.fx.Node, str]:
    """Each node's key: equal keys, equal outputs for equal model inputs."""
    keys: dict[torch.fx.Node, str] = {}
    for node in model.graph.nodes:
        if node.op == "call_module":
            own: Any = module_key(model.get_submodule(node.target))
        elif node.op == "get_attr":
            own = _describe(_fetch_attribute(model, node.target))
        else:
            own = _describe(node.target)
        description = (node.op, own, _argument_key(node.args, keys), _argument_key(node.kwargs, keys))
        keys[node] = hashlib.blake2b(repr(description).encode(), digest_size=16).hexdigest()
    return keys


def _fetch_attribute(model: torch.nn.Module, target: str) -> Any:
    value: Any = model
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(item) for item in value)
    return 0


class PrefixCache:
    """The values alive at the cuts of evaluated candidates, by (cut values' keys, batch); LRU by bytes."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple[str, int], tuple[Any, ...]] = OrderedDict()
        self.hits = 0
        self.stores = 0

    def get(self, key: str, batch: int) -> tuple[Any, ...] | None:
        values = self._entries.get((key, batch))
        if values is not None:
            self._entries.move_to_end((key, batch))
            self.hits += 1
        return values

    def __contains__(self, entry: tuple[str, int]) -> bool:
        return entry in self._entries

    def put(self, key: str, batch: int, values: tuple[Any, ...]) -> None:
        size = _nbytes(values)
        if (key, batch) in self._entries or size > self.budget_bytes:
            return
        while self._entries and self.bytes + size > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= _nbytes(evicted)
        self._entries[(key, batch)] = values
        self.bytes += size
        self.stores += 1


@dataclasses.dataclass
class _Plan:
    """A place to cut a model: before module ``name`` (node ``position``), the values ``alive`` are all the
    rest of the graph reads."""

    name: str
    position: int
    alive: tuple[torch.fx.Node, ...]


def _plans(nodes: list[torch.fx.Node]) -> dict[str, _Plan]:
    """The values alive before every module call (the modules are what costs), by the module's name.

    Cuts are named by module, not by position, so that the candidates of one model share them even where
    a width adds or removes a node before them.
    """
    index = {node: position for position, node in enumerate(nodes)}
    last_use = {node: max((index[user] for user in node.users), default=-1) for node in nodes}
    plans = {}
    for position, node in enumerate(nodes):
        if node.op != "call_module" or node.target in plans:
            continue
        alive = tuple(
            earlier
            for earlier in nodes[:position]
            if last_use[earlier] >= position and earlier.op != "get_attr"
        )
        plans[node.target] = _Plan(node.target, position, alive)
    return plans


def choose_cuts(
    seconds_before: dict[str, float], bytes_per_image: dict[str, int], byte_allowance: float
) -> list[str]:
    """The cuts to keep: the most seconds saved per byte kept first, within ``byte_allowance`` bytes per
    image in all (the cache must hold several candidates' worth); a cut that saves nothing is left out."""
    order = sorted(
        (name for name, seconds in seconds_before.items() if seconds > 0),
        key=lambda name: -seconds_before[name] / max(bytes_per_image[name], 1),
    )
    chosen, spent = [], 0
    for name in order:
        if spent + bytes_per_image[name] <= byte_allowance:
            chosen.append(name)
            spent += bytes_per_image[name]
    return chosen


class PrefixRunner:
    """Runs one candidate's converted model batch by batch, starting each batch at the furthest of the
    ``cuts`` (module names, see :func:`choose_cuts`) the cache holds for it, and storing its values at the
    cuts it passes."""

    def __init__(self, model: torch.fx.GraphModule, cache: PrefixCache) -> None:
        self.model = model
        self.cache = cache
        self.nodes = list(model.graph.nodes)
        self.keys = node_keys(model)
        self.plans = _plans(self.nodes)
        index = {node: position for position, node in enumerate(self.nodes)}
        self.last_use = {node: max((index[user] for user in node.users), default=-1) for node in self.nodes}
        self.started_at: list[int] = []  # the node each batch started from
        self._cut_keys: dict[str, str] = {}

    def cut_key(self, name: str) -> str:
        """The key of the values alive at cut ``name``: equal keys, equal values."""
        if name not in self._cut_keys:
            plan = self.plans[name]
            joined = "|".join(self.keys[node] for node in plan.alive)
            self._cut_keys[name] = hashlib.blake2b(f"{name}:{joined}".encode(), digest_size=16).hexdigest()
        return self._cut_keys[name]

    @torch.no_grad()
    def profile(self, images: torch.Tensor) -> tuple[dict[str, float], dict[str, int]]:
        """Per cut: the seconds spent before it on ``images`` and the bytes per image alive there."""
        elapsed: list[float] = []
        _, values = self._execute(images, 0, {}, elapsed.append)
        count = max(len(images), 1)
        seconds = {name: sum(elapsed[: plan.position]) for name, plan in self.plans.items()}
        sizes = {
            name: _nbytes([values[node] for node in plan.alive]) // count for name, plan in self.plans.items()
        }
        return seconds, sizes

    @torch.no_grad()
    def run(self, batch: int, images: torch.Tensor, cuts: Iterable[str]) -> Any:
        """The model's output on ``images``, validation batch number ``batch``."""
        usable = sorted(
            (self.plans[name] for name in cuts if name in self.plans), key=lambda plan: plan.position
        )
        start, environment = 0, {}
        for plan in reversed(usable):
            stored = self.cache.get(self.cut_key(plan.name), batch)
            if stored is not None:
                start, environment = plan.position, dict(zip(plan.alive, stored, strict=True))
                break
        self.started_at.append(start)
        to_store = {plan.position: plan for plan in usable if plan.position > start}

        def store(position: int, values: dict) -> None:
            plan = to_store.get(position)
            if plan is not None and (self.cut_key(plan.name), batch) not in self.cache:
                self.cache.put(self.cut_key(plan.name), batch, tuple(values[node] for node in plan.alive))

        output, _ = self._execute(images, start, environment, None, store)
        return output

    def _execute(
        self,
        images: torch.Tensor,
        start: int,
        environment: dict[torch.fx.Node, Any],
        timing: Callable[[float], None] | None,
        at_position: Callable[[int, dict], None] | None = None,
    ) -> tuple[Any, dict[torch.fx.Node, Any]]:
        values = dict(environment)
        for node in self.nodes[:start]:  # constants read after the cut are fetched again
            if node.op == "get_attr":
                values[node] = _fetch_attribute(self.model, node.target)
        kept: dict[torch.fx.Node, Any] = {}
        for position in range(start, len(self.nodes)):
            node = self.nodes[position]
            if at_position is not None:
                at_position(position, values)
            began = time.perf_counter()
            if node.op == "placeholder":
                values[node] = images
            elif node.op == "get_attr":
                values[node] = _fetch_attribute(self.model, node.target)
            elif node.op == "output":
                return torch.fx.node.map_arg(node.args[0], values.__getitem__), kept
            else:
                args = torch.fx.node.map_arg(node.args, values.__getitem__)
                kwargs = torch.fx.node.map_arg(node.kwargs, values.__getitem__)
                if node.op == "call_module":
                    values[node] = self.model.get_submodule(node.target)(*args, **kwargs)
                elif node.op == "call_function":
                    values[node] = node.target(*args, **kwargs)
                else:  # call_method
                    receiver, *rest = args
                    values[node] = getattr(receiver, node.target)(*rest, **kwargs)
            if timing is not None:  # profiling one batch: every value kept, to size the cuts
                timing(time.perf_counter() - began)
                kept[node] = values[node]
                continue
            # Values no later node reads are dropped at once: a run holds no more than the forward pass.
            for argument in node.all_input_nodes:
                if self.last_use[argument] <= position:
                    values.pop(argument, None)
        raise ValueError("the graph has no output node")
