"""BackendConfig patterns for capsule ops (torch.ao FX)."""

from capsnet_nncf_plugin.patterns.backend_config import (
    capsule_dtype_configs,
    capsule_pattern_configs,
    get_capsnet_backend_config,
)

__all__ = ["capsule_dtype_configs", "capsule_pattern_configs", "get_capsnet_backend_config"]
