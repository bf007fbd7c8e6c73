"""Every option of the jobs, defined once: its flag, the config field it sets, its type and its help.

``capsq run``, ``capsq quantize`` and the benchmark scripts pick the options they take from :data:`OPTIONS`
(:func:`add_options`); each option's default is the one of the job's config dataclass
(:mod:`capsnet_nncf_plugin.job.config`), so a default cannot differ between commands.
:func:`config_from_args` builds the config back from the parsed arguments.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

from capsnet_nncf_plugin.allocation.evaluator import CRITERIA
from capsnet_nncf_plugin.cli.arguments import (
    bit_width,
    count_or_all,
    folder_or_none,
    non_negative_float,
    positive_float,
    positive_int,
    positive_or_none,
)
from capsnet_nncf_plugin.core.clipping import CLIP_MODES
from capsnet_nncf_plugin.core.settings import WEIGHT_ROUNDINGS
from capsnet_nncf_plugin.job.run import FLOWS


@dataclass(frozen=True)
class Option:
    """One command-line option: ``flags``, the config ``field`` it sets, and argparse's other keywords."""

    flags: tuple[str, ...]
    field: str
    help: str
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    flag_only: bool = False  # a switch: present means True
    nargs: str | None = None
    metavar: str | None = None


def _option(*flags: str, field: str, help: str, **keywords: Any) -> Option:
    return Option(tuple(flags), field, help, **keywords)


#: Every job option, by field name.
OPTIONS: dict[str, Option] = {
    option.field: option
    for option in (
        _option(
            "--model",
            field="model",
            help="zoo:NAME, a checkpoint of `capsq train`, or path/to/file.py:factory",
        ),
        _option("--dataset", field="dataset", help="dataset (default: the model's own)"),
        _option("--data-root", field="data_root", help="directory with the official dataset files"),
        _option("--weights", field="weights", help="state dict for a model given as file.py:factory"),
        _option(
            "--calibration",
            field="calibration_images",
            type=positive_int,
            metavar="N",
            help="validation images used for calibration",
        ),
        _option(
            "--limit", field="test_limit", type=positive_int, metavar="N", help="test images (default: all)"
        ),
        _option("--out", field="out_dir", help="report folder (replaced as a whole when the job finishes)"),
        _option(
            "--method",
            field="method",
            help="allocation method (see `capsq plugins`; default error-guided); 'none': uniform bits",
        ),
        _option("--tolerance", field="tolerance", type=non_negative_float, help="accepted accuracy loss, pp"),
        _option(
            "--criterion",
            field="criterion",
            choices=CRITERIA,
            help="'accuracy-margin': the accuracy difference within half of TOLERANCE on the validation "
            "images, the other half kept for images the search does not see; 'accuracy': the difference "
            "within TOLERANCE; 'losses': also at most TOLERANCE %% of FP32-correct images lost (no credit "
            "for lucky gains)",
        ),
        _option("--clip", field="clip", choices=CLIP_MODES, help="activation clipping mode"),
        _option(
            "--bias-correction",
            field="bias_correction",
            flag_only=True,
            help="each layer's bias absorbs the mean output error of its quantized weights (FX flow)",
        ),
        _option(
            "--weight-rounding",
            field="weight_rounding",
            choices=WEIGHT_ROUNDINGS,
            help="weight rounding (gptq: error feedback on the calibration inputs; not with bias correction)",
        ),
        _option(
            "--validation-limit",
            field="validation_limit",
            type=count_or_all,
            metavar="N|all",
            help="validation images the search measures each candidate on (those after the calibration's)",
        ),
        _option(
            "--weight-memory-budget",
            field="weight_memory_budget",
            type=positive_float,
            metavar="MB",
            help="weights memory the budgeted methods (error-guided, qcapsnets) must fit, in MB",
        ),
        _option(
            "--weight-reduction",
            field="weight_reduction",
            type=positive_or_none,
            metavar="X|none",
            help="the weights budget as a reduction against FP32 (8: at most 1/8 of the FP32 weights; "
            "none: no budget)",
        ),
        _option(
            "--analysis-images",
            field="analysis_images",
            type=positive_int,
            metavar="N",
            help="calibration images of the error analysis",
        ),
        _option(
            "--analysis-bits",
            field="analysis_bits",
            type=bit_width,
            nargs="+",
            metavar="BITS",
            help="candidate widths of the error analysis",
        ),
        _option(
            "--analysis-cache",
            field="analysis_cache",
            metavar="FILE",
            help="JSON file keeping the error-analysis entries: a rerun on the same model, calibration and "
            "settings (another --method or --tolerance) reads them instead of measuring",
        ),
        _option(
            "--reuse-dir",
            field="reuse_dir",
            type=folder_or_none,
            metavar="DIR|auto|none",
            help="folder keeping the measurements a rerun reuses (the error analysis, the FP32 test "
            "accuracy), each under the fingerprint of the model's code and weights, the images and the "
            "settings; auto: the measurements folder of the plugin's cache ($CAPSQ_CACHE); none: measure "
            "afresh",
        ),
        _option(
            "--compare", field="compare", flag_only=True, help="also run every other method for the plots"
        ),
        _option("--flow", field="flow", choices=FLOWS, help="torch.ao FX or NNCF quantization"),
        _option(
            "--nncf-config", field="nncf_config", help="JSON/YAML nncf.quantize configuration (--flow nncf)"
        ),
        _option(
            "--allocation",
            field="allocation",
            help="BitAllocation JSON from `capsq quantize`: its bits instead of a search",
        ),
        _option(
            "--weight-bits", field="weight_bits", type=bit_width, help="uniform weight bits (--method none)"
        ),
        _option(
            "--activation-bits",
            field="activation_bits",
            type=bit_width,
            help="uniform activation bits (--method none)",
        ),
        _option(
            "--routing-bits",
            field="routing_bits",
            type=bit_width,
            help="uniform routing bits (--method none)",
        ),
        _option(
            "--weight-observer",
            field="weight_observer",
            help="weight observer by name (`capsq plugins`; FX flow)",
        ),
        _option(
            "--activation-observer",
            field="activation_observer",
            help="activation observer by name (`capsq plugins`; FX flow)",
        ),
    )
}

#: The options every job takes, and those of every job that searches an allocation.
JOB_OPTIONS = (
    "model",
    "dataset",
    "data_root",
    "weights",
    "calibration_images",
    "test_limit",
    "out_dir",
    "reuse_dir",
)
SEARCH_OPTIONS = (
    "method",
    "tolerance",
    "criterion",
    "clip",
    "bias_correction",
    "weight_rounding",
    "validation_limit",
    "weight_memory_budget",
    "weight_reduction",
    "analysis_images",
    "analysis_bits",
    "analysis_cache",
)


def _default(config_type: type, name: str) -> Any:
    for field in fields(config_type):
        if field.name == name:
            if field.default is not MISSING:
                return field.default
            if field.default_factory is not MISSING:
                return field.default_factory()
    raise KeyError(f"{config_type.__name__} has no option {name!r}")


def add_options(parser: argparse.ArgumentParser, names: Iterable[str], config_type: type) -> None:
    """Add the options ``names`` to ``parser``, with ``config_type``'s defaults."""
    for name in names:
        option = OPTIONS[name]
        default = _default(config_type, option.field)
        keywords: dict[str, Any] = {"dest": option.field, "default": default, "help": option.help}
        if option.flag_only:
            keywords["action"] = "store_true"
        else:
            keywords.update(
                type=option.type, choices=option.choices, nargs=option.nargs, metavar=option.metavar
            )
        if default not in (None, False) and "%(default)" not in option.help:
            keywords["help"] = f"{option.help} (default: %(default)s)"
        parser.add_argument(
            *option.flags, **{key: value for key, value in keywords.items() if value is not None}
        )


Config = TypeVar("Config")


def config_from_args(config_type: type[Config], args: argparse.Namespace) -> Config:
    """The ``config_type`` whose fields are the parsed options (fields without an option keep defaults)."""
    values = {}
    for field in fields(config_type):
        if hasattr(args, field.name):
            value = getattr(args, field.name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return config_type(**values)
