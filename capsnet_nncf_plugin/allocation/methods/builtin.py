"""The built-in allocation methods, by name (registered like any plugin's, see registry.py)."""

from capsnet_nncf_plugin.allocation.methods.baselines import qcapsnets, qcapsnets_clipped, uniform_8
from capsnet_nncf_plugin.allocation.methods.block_routing import block_routing
from capsnet_nncf_plugin.allocation.methods.error_guided import error_guided
from capsnet_nncf_plugin.allocation.methods.progressive_descent import progressive_descent
from capsnet_nncf_plugin.allocation.methods.rate_distortion import rate_distortion

BUILTIN_METHODS = {
    "progressive-descent": progressive_descent,
    "error-guided": error_guided,
    "block-routing": block_routing,
    "rate-distortion": rate_distortion,
    "uniform-8": uniform_8,
    "qcapsnets": qcapsnets,
    "qcapsnets-clipped": qcapsnets_clipped,
}

#: The method ``allocate``, ``capsq quantize`` and ``capsq run`` use unless told otherwise. On
#: ``shallowcaps-mnist`` (docs/results.md) it matched progressive descent's weight reduction (10.64x vs
#: 10.66x), beat its activation reduction (5.93x vs 5.05x) and accuracy (0.00 vs 0.05 pp loss) with 7
#: evaluations instead of 15.
DEFAULT_METHOD = "error-guided"
