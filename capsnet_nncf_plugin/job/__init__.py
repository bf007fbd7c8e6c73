"""The jobs behind ``capsq run`` and ``capsq quantize``, shared with the benchmarks.

- :func:`run` (:class:`RunConfig`): FP32 accuracy, bit-width search, quantization (FX or NNCF flow),
  export, integer accuracy in torch and onnxruntime, memory, sizes, latency;
- :func:`quantize` (:class:`QuantizeConfig`): error analysis and allocation search with a report;
- the steps both use: :func:`load_inputs`, :func:`analyze`, :func:`search`, :func:`export_and_compare`,
  and :class:`RunFolder` (an output folder written as one unit).
"""

from capsnet_nncf_plugin.job.config import JobConfig, SearchConfig
from capsnet_nncf_plugin.job.inputs import JobInputs, load_inputs
from capsnet_nncf_plugin.job.measurement import export_and_compare
from capsnet_nncf_plugin.job.output import OutputFolderError, RunFolder, check_output_folder
from capsnet_nncf_plugin.job.quantize import QuantizeConfig, QuantizeResult, quantize
from capsnet_nncf_plugin.job.run import RunConfig, RunResult, run
from capsnet_nncf_plugin.job.search import analyze, search

__all__ = [
    "JobConfig",
    "JobInputs",
    "OutputFolderError",
    "QuantizeConfig",
    "QuantizeResult",
    "RunConfig",
    "RunFolder",
    "RunResult",
    "SearchConfig",
    "analyze",
    "check_output_folder",
    "export_and_compare",
    "load_inputs",
    "quantize",
    "run",
    "search",
]
