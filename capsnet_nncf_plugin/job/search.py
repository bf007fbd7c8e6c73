"""The allocation step of a job: the error analysis and a method's search, as every job runs them."""

from __future__ import annotations

from capsnet_nncf_plugin.allocation import ErrorAnalysis, allocate, analyze_errors
from capsnet_nncf_plugin.allocation.allocate import analysis_batches
from capsnet_nncf_plugin.allocation.defaults import weight_budget_for_reduction
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.errors import ConfigError
from capsnet_nncf_plugin.job.config import SearchConfig
from capsnet_nncf_plugin.job.inputs import JobInputs
from capsnet_nncf_plugin.job.reuse import analysis_folder, store_of

#: Bits in a megabyte (``--weight-memory-budget`` is in MB).
BITS_PER_MB = 8e6


def analyze(inputs: JobInputs, config: SearchConfig, progress: bool, complete: bool = False) -> ErrorAnalysis:
    """The quantization-error analysis of the model, lazy (each entry measured when a method reads it)
    unless ``complete``; kept in ``config.analysis_cache`` if set, else in the job's reuse folder."""
    return analyze_errors(
        inputs.model,
        analysis_batches(inputs.calibration, config.analysis_images),
        candidate_bits=config.analysis_bits,
        settings=config.settings(),
        progress=progress,
        lazy=not complete,
        cache=config.analysis_cache,
        cache_folder=analysis_folder(config.reuse_dir),
    )


def search(
    inputs: JobInputs,
    config: SearchConfig,
    method: str | None = None,
    analysis: ErrorAnalysis | None = None,
    progress: bool = False,
) -> BitAllocation:
    """The allocation ``method`` (default ``config.method``) finds on the validation images after the
    calibration's (``inputs.search``)."""
    check_search_images(inputs, config)
    return allocate(
        inputs.model,
        inputs.calibration,
        inputs.search,
        method=method or config.search_method,
        tolerance=config.tolerance,
        weight_memory_budget=weight_budget_bits(inputs, config),
        weight_reduction=None,  # the budget above is the job's whole answer, None included
        settings=config.settings(),
        validation_limit=config.validation_limit,
        analysis=analysis if analysis is not None else analyze(inputs, config, progress),
        progress=progress,
        criterion=config.criterion,
        store=store_of(config.reuse_dir),
    )


def check_search_images(inputs: JobInputs, config: SearchConfig) -> None:
    """A ``ConfigError`` where calibration leaves no validation images for the search to decide on."""
    if config.searches and len(inputs.search) == 0:
        raise ConfigError(
            f"the validation split holds {len(inputs.validation)} images and calibration takes the first "
            f"{config.calibration_images}: none is left for the bit-width search; pass a smaller "
            "--calibration"
        )


def weight_budget_bits(inputs: JobInputs, config: SearchConfig) -> float | None:
    """The weights budget in bits: ``--weight-memory-budget`` MB, or the FP32 weights over
    ``--weight-reduction``; None without a budget (the default)."""
    if config.weight_memory_budget is not None:
        return config.weight_memory_budget * BITS_PER_MB
    if config.weight_reduction is not None:
        return weight_budget_for_reduction(inputs.model, config.weight_reduction)
    return None
