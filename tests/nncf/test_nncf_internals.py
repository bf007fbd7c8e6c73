"""The NNCF internals the adapter relies on, one test each, so a newer NNCF that moves one is named at once.

The adapter (capsnet_nncf_plugin/nncf/) reaches past NNCF's public API in a few places: the quantizer
registry it swaps a class into, the quantizer's scale property and storage, the hook storage it finds
quantizers in, the operator-metatype registry and hardware op names it registers capsule ops with, and the
annotations of ``nncf.quantize`` it validates configurations against. When one of them changes, the
failure says which, and which file of the adapter to update, instead of surfacing as an AttributeError in
the middle of a quantization run.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import nncf
import pytest
import torch

VERSION = nncf.__version__


def _require(condition: Callable[[], Any], internal: str, module: str) -> Any:
    """``condition()``'s value; a failure of any kind names ``internal`` and the adapter ``module``."""
    try:
        value = condition()
    except Exception as error:  # an import, attribute or call failure all mean "it moved"
        pytest.fail(
            f"nncf {VERSION} no longer has {internal} ({error!r}); update capsnet_nncf_plugin/nncf/{module}"
        )
    if value is False:
        pytest.fail(f"nncf {VERSION} no longer has {internal}; update capsnet_nncf_plugin/nncf/{module}")
    return value


def _symmetric_quantizer(logarithm_scale: bool = False, scale_shape: tuple[int, ...] = (1,)) -> Any:
    from nncf.common.quantization.structs import QuantizationScheme
    from nncf.torch.quantization.layers import PTQuantizerSpec, SymmetricQuantizer

    spec = PTQuantizerSpec(
        num_bits=8,
        mode=QuantizationScheme.SYMMETRIC,
        signedness_to_force=None,
        narrow_range=False,
        half_range=False,
        scale_shape=scale_shape,
        logarithm_scale=logarithm_scale,
    )
    return SymmetricQuantizer(spec)


def test_quantization_modules_registry_maps_symmetric_to_symmetric_quantizer() -> None:
    internal = (
        "nncf.torch.quantization.layers.QUANTIZATION_MODULES.registry_dict[QuantizationScheme.SYMMETRIC]"
    )

    def check() -> bool:
        from nncf.common.quantization.structs import QuantizationScheme
        from nncf.torch.quantization.layers import QUANTIZATION_MODULES, SymmetricQuantizer

        registry = QUANTIZATION_MODULES.registry_dict
        return isinstance(registry, dict) and registry[QuantizationScheme.SYMMETRIC] is SymmetricQuantizer

    _require(check, f"{internal} = SymmetricQuantizer (PowerOfTwoQuantizerScope swaps it)", "quantizer.py")


def test_symmetric_quantizer_scale_is_a_property_with_getter_and_setter() -> None:
    internal = (
        "SymmetricQuantizer.scale as a property with fget and fset (PowerOfTwoSymmetricQuantizer.range_max)"
    )

    def check() -> bool:
        from nncf.torch.quantization.layers import SymmetricQuantizer

        scale = inspect.getattr_static(SymmetricQuantizer, "scale")
        return isinstance(scale, property) and scale.fget is not None and scale.fset is not None

    _require(check, internal, "quantizer.py")


@pytest.mark.parametrize("logarithm_scale", [False, True], ids=["linear", "log"])
def test_setting_scale_writes_the_range_that_fget_reads_back(logarithm_scale: bool) -> None:
    from nncf.torch.quantization.layers import SymmetricQuantizer

    quantizer = _require(
        lambda: _symmetric_quantizer(logarithm_scale, (2, 1)), "PTQuantizerSpec(...)", "quantize.py"
    )
    top = torch.tensor([[0.5], [8.0]])
    internal = "SymmetricQuantizer.scale.fset/fget round-tripping the range (quantize.py _set_exponents)"
    _require(
        lambda: SymmetricQuantizer.scale.fset(quantizer, torch.nn.Parameter(top.clone())),
        internal,
        "quantize.py",
    )
    read = _require(lambda: SymmetricQuantizer.scale.fget(quantizer), internal, "quantize.py")
    _require(lambda: torch.allclose(read, top), internal, "quantize.py")


def test_base_quantizer_keeps_the_range_in_scale_param_storage() -> None:
    internal = "BaseQuantizer._scale_param_storage, a Parameter that setting scale replaces or updates"

    def check() -> bool:
        from nncf.torch.quantization.layers import BaseQuantizer

        quantizer = _symmetric_quantizer()
        storage = quantizer._scale_param_storage
        key = (storage.data_ptr(), storage._version)
        quantizer.scale = torch.nn.Parameter(torch.tensor([4.0]))
        updated = quantizer._scale_param_storage
        # PowerOfTwoSymmetricQuantizer.exponents caches on (data_ptr, _version): a new range must change it.
        return (
            isinstance(quantizer, BaseQuantizer)
            and isinstance(storage, torch.nn.Parameter)
            and (updated.data_ptr(), updated._version) != key
            and float(updated.detach().reshape(-1)[0]) == 4.0
        )

    _require(check, internal, "quantize.py (_set_exponents) and quantizer.py (exponents)")


def test_quantizer_attributes_the_adapter_reads_and_sets() -> None:
    quantizer = _symmetric_quantizer(scale_shape=(3, 1))
    for name, expected in (("level_high", 255), ("scale_shape", (3, 1)), ("num_bits", 8), ("signed", False)):
        _require(lambda name=name: hasattr(quantizer, name), f"SymmetricQuantizer.{name}", "quantizer.py")
        actual = getattr(quantizer, name)
        if actual != expected:
            pytest.fail(
                f"nncf {VERSION}: SymmetricQuantizer.{name} is {actual!r}, expected {expected!r}; "
                "update capsnet_nncf_plugin/nncf/quantizer.py"
            )
    quantizer.num_bits = 4
    _require(lambda: quantizer.level_high == 15, "a settable SymmetricQuantizer.num_bits", "quantize.py")
    parameters = inspect.signature(type(quantizer).quantize).parameters
    _require(
        lambda: list(parameters)[:3] == ["self", "x", "execute_traced_op_as_identity"],
        "SymmetricQuantizer.quantize(x, execute_traced_op_as_identity=False) (overridden)",
        "quantizer.py",
    )
    for method in ("disable_quantization", "enable_quantization"):
        _require(
            lambda method=method: getattr(quantizer, method)() is None,
            f"BaseQuantizer.{method}()",
            "quantize.py",
        )


def test_get_hook_storage_lists_the_hook_modules() -> None:
    internal = "nncf.torch.function_hook.get_hook_storage(model).named_modules() listing hooks"

    def check() -> bool:
        from nncf.torch.function_hook import get_hook_storage, register_pre_function_hook, wrap_model

        model = wrap_model(torch.nn.Sequential(torch.nn.Linear(2, 2)))
        hook = _symmetric_quantizer()
        register_pre_function_hook(model, "0/linear/0", 0, hook)
        return any(module is hook for _, module in get_hook_storage(model).named_modules())

    _require(check, internal, "quantize.py (_nncf_quantizers)")


def test_operator_metatype_registry_and_base_class() -> None:
    def registry() -> bool:
        from nncf.torch.graph.operator_metatypes import PT_OPERATOR_METATYPES

        return isinstance(PT_OPERATOR_METATYPES.registry_dict, dict) and callable(
            PT_OPERATOR_METATYPES.register
        )

    _require(
        registry,
        "nncf.torch.graph.operator_metatypes.PT_OPERATOR_METATYPES.registry_dict/.register",
        "metatypes.py",
    )

    def base_class() -> bool:
        from nncf.torch.graph.operator_metatypes import PTOperatorMetatype

        attributes = (
            "name",
            "external_op_names",
            "hw_config_names",
            "num_expected_input_edges",
            "weight_port_ids",
        )
        return all(hasattr(PTOperatorMetatype, attribute) for attribute in attributes)

    _require(base_class, "PTOperatorMetatype with name/external_op_names/hw_config_names/...", "metatypes.py")

    def lookup() -> bool:
        from nncf.torch.graph.operator_metatypes import PT_OPERATOR_METATYPES

        from capsnet_nncf_plugin.nncf.metatypes import PTCapsuleSquashMetatype, register_capsule_metatypes

        register_capsule_metatypes()
        return PT_OPERATOR_METATYPES.get_operator_metatype_by_op_name("squash") is PTCapsuleSquashMetatype

    _require(
        lookup, "op-name lookup of registered metatypes (get_operator_metatype_by_op_name)", "metatypes.py"
    )


def test_hardware_op_names() -> None:
    def check() -> bool:
        from nncf.common.hardware.opset import HWOpName

        return HWOpName.MULTIPLY is not None and HWOpName.MAT_MUL is not None

    _require(check, "nncf.common.hardware.opset.HWOpName.MULTIPLY/MAT_MUL", "metatypes.py")


def test_quantize_signature_is_annotated_for_config_validation() -> None:
    parameters = _require(lambda: inspect.signature(nncf.quantize).parameters, "nncf.quantize", "config.py")
    _require(
        lambda: {"model", "calibration_dataset", "subset_size"} <= set(parameters),
        "nncf.quantize(model, calibration_dataset, ..., subset_size=...)",
        "config.py and quantize.py",
    )
    _require(
        lambda: type(parameters["subset_size"].default) is int, "an int default of subset_size", "quantize.py"
    )
    unannotated = [
        name
        for name, parameter in parameters.items()
        if name not in ("model", "calibration_dataset") and parameter.annotation is inspect.Parameter.empty
    ]
    if unannotated:
        pytest.fail(
            f"nncf {VERSION}: nncf.quantize parameters {unannotated} lost their annotations, which "
            "capsnet_nncf_plugin/nncf/config.py validates configurations against; update config.py"
        )


def test_parameter_classes_the_config_builds() -> None:
    def check() -> bool:
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

        fields = {field.name for field in dataclasses.fields(AdvancedQuantizationParameters)}
        return "overflow_fix" in fields and OverflowFix.DISABLE.value == "disable"

    _require(check, "AdvancedQuantizationParameters.overflow_fix and OverflowFix.DISABLE", "config.py")
    _require(
        lambda: dataclasses.is_dataclass(nncf.IgnoredScope) and issubclass(nncf.ValidationError, Exception),
        "nncf.IgnoredScope as a dataclass and nncf.ValidationError",
        "config.py",
    )
    _require(
        lambda: nncf.QuantizationPreset.PERFORMANCE.value == "performance",
        "nncf.QuantizationPreset.PERFORMANCE",
        "config.py",
    )
    _require(
        lambda: list(nncf.Dataset([1, 2]).get_inference_data()) == [1, 2],
        "nncf.Dataset.get_inference_data()",
        "quantize.py (_calibration_batches)",
    )
