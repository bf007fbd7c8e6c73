"""What the jobs are told: one dataclass per layer of options, shared by ``capsq run``, ``capsq quantize``
and the benchmarks, so every option has one name, one default and one check.

``JobConfig`` (the model, its data, the output folder) < ``SearchConfig`` (the allocation search and the
quantization settings) < ``RunConfig`` / ``QuantizeConfig`` (each job's own). ``check()`` refuses a
configuration that cannot work, or whose options contradict each other, before anything is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from capsnet_nncf_plugin.allocation.allocate import ANALYSIS_IMAGES
from capsnet_nncf_plugin.allocation.defaults import (
    DEFAULT_CRITERION,
    DEFAULT_SEARCH_SETTINGS,
    DEFAULT_WEIGHT_REDUCTION,
    check_weight_reduction,
)
from capsnet_nncf_plugin.allocation.evaluator import CRITERIA
from capsnet_nncf_plugin.allocation.methods import get_method
from capsnet_nncf_plugin.allocation.methods.builtin import DEFAULT_METHOD
from capsnet_nncf_plugin.allocation.sensitivity import CANDIDATE_BITS
from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.core.real_numbers import is_finite_number
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.errors import ConfigError, MissingFileError
from capsnet_nncf_plugin.job.output import check_output_folder
from capsnet_nncf_plugin.job.reuse import AUTOMATIC, reuse_folder

#: The model the jobs run on unless told otherwise: the bundled ShallowCaps trained on MNIST.
DEFAULT_MODEL = "zoo:shallowcaps-mnist"
#: Validation images an allocation search measures each candidate on.
DEFAULT_VALIDATION_LIMIT = 2000
#: Validation images every job calibrates on.
DEFAULT_CALIBRATION_IMAGES = 512
#: The method value that asks for no search: uniform bits.
NO_SEARCH = "none"


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a positive number of images, got {value!r}")


@dataclass
class JobConfig:
    """The model, its data and the output folder."""

    model: str = DEFAULT_MODEL  # zoo:NAME, a checkpoint of `capsq train`, or path/to/file.py:factory
    dataset: str | None = None  # default: the one the model records
    data_root: str | None = None  # a folder with the official dataset files
    weights: str | None = None  # a state dict for a model given as file.py:factory
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES
    test_limit: int | None = None  # test images (default: the whole test split)
    out_dir: str = "reports/job"
    # Where measurements a rerun reuses are kept (job/reuse.py); "auto": the plugin's cache; None: nowhere.
    reuse_dir: str | None = AUTOMATIC

    def check(self) -> None:
        """Raise ``ValueError`` naming the first option that cannot work; the output folder included."""
        for name in ("calibration_images", "test_limit"):
            _check_count(name, getattr(self, name))
        folder = reuse_folder(self.reuse_dir)
        if folder is not None and folder.exists() and not folder.is_dir():
            raise ConfigError(f"reuse_dir: {folder} is a file; give a folder, or 'none' to reuse nothing")
        if self.weights is not None and not Path(self.weights).is_file():
            raise MissingFileError(f"weights: no file {self.weights}; give the path of a saved state dict")
        check_output_folder(self.out_dir)


@dataclass
class SearchConfig(JobConfig):
    """The allocation search and how its candidates are quantized."""

    method: str | None = None  # an allocation method; None: the default one; "none": no search
    tolerance: float = 0.1  # percentage points
    criterion: str = DEFAULT_CRITERION
    clip: str = DEFAULT_SEARCH_SETTINGS.clip
    bias_correction: bool = DEFAULT_SEARCH_SETTINGS.bias_correction
    weight_rounding: str = DEFAULT_SEARCH_SETTINGS.weight_rounding
    validation_limit: int | None = DEFAULT_VALIDATION_LIMIT
    weight_memory_budget: float | None = None  # MB of weights, for the methods that take a budget
    # The budget as a reduction against the FP32 weights (None: no budget, the default).
    weight_reduction: float | None = DEFAULT_WEIGHT_REDUCTION
    analysis_images: int = ANALYSIS_IMAGES
    analysis_bits: tuple[int, ...] = CANDIDATE_BITS
    analysis_cache: str | None = None  # a JSON file keeping the error analysis across runs

    @property
    def searches(self) -> bool:
        return self.method != NO_SEARCH

    @property
    def search_method(self) -> str:
        """The method the search runs: the one given, else the default."""
        return DEFAULT_METHOD if self.method in (None, NO_SEARCH) else self.method

    def settings(self) -> QuantizationSettings:
        """The quantization settings every candidate, and the result, is quantized with."""
        return QuantizationSettings(self.clip, self.bias_correction, self.weight_rounding)

    def check(self) -> None:
        super().check()
        self.settings()  # clip, rounding, and the two that do not combine
        if self.criterion not in CRITERIA:
            raise ConfigError(f"criterion must be one of {', '.join(CRITERIA)}, got {self.criterion!r}")
        tolerance = self.tolerance
        if not (is_finite_number(tolerance) and tolerance >= 0):
            raise ConfigError(
                f"tolerance is in percentage points and must be a finite number >= 0, got {tolerance}"
            )
        for name in ("validation_limit", "analysis_images"):
            _check_count(name, getattr(self, name))
        for bits in self.analysis_bits:
            check_bits(bits, "analysis_bits")
        budget = self.weight_memory_budget
        if budget is not None and not (is_finite_number(budget) and budget > 0):
            raise ConfigError(f"weight_memory_budget must be a number > 0, got {budget!r}")
        check_weight_reduction(self.weight_reduction, "weight_reduction")
        if self.weight_memory_budget is not None and self.weight_reduction is not None:
            raise ConfigError(
                "--weight-memory-budget and --weight-reduction both set the weights budget: give one"
            )
        if self.searches:
            get_method(self.search_method)  # an unknown name lists the registered methods


def config_fields(config_type: type) -> set[str]:
    """The option names a config dataclass has."""
    return {field.name for field in fields(config_type)}
