"""SR models with named tap points (RCAN, EDSR) and their presets.

Build one with ``build_model("rcan-student", scale=4)``; every model has ``head`` / ``body`` /
``tail``, ``tap_names()``, ``default_taps``, ``scale`` and ``config``.
"""

from fakd.models.common import SUPPORTED_SCALES
from fakd.models.edsr import EDSR, edsr_default_taps
from fakd.models.rcan import RCAN, rcan_default_taps
from fakd.models.registry import (
    ARCHITECTURES,
    PRESETS,
    build_model,
    build_model_from_config,
    count_parameters,
    list_presets,
)

__all__ = [
    "ARCHITECTURES",
    "EDSR",
    "PRESETS",
    "RCAN",
    "SUPPORTED_SCALES",
    "build_model",
    "build_model_from_config",
    "count_parameters",
    "edsr_default_taps",
    "list_presets",
    "rcan_default_taps",
]
