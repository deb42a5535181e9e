"""Checks of values a user gives (command lines, configs, notebook parameters), one per idea, so that
every layer applies the same rule and words the error the same way (a ``FakdError``).

The scale rule: an SR scale is a whole number ≥ 2 everywhere — data (degrade, benchmark pairs,
training patches), metrics (the border crop) and evaluation. The networks' pixel-shuffle upsamplers
build only ×2, ×3, ×4 and ×8 (``fakd.models.SUPPORTED_SCALES``), so the models pass those as
``supported``; bicubic degradation and evaluation work at any scale.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection

from fakd.errors import FakdError


def check_scale(scale, *, supported: Collection[int] | None = None) -> int:
    """``scale`` as an int: a whole number ≥ 2 (numpy integers and whole floats too), and one of
    ``supported`` when given; anything else → FakdError."""
    whole = not isinstance(scale, bool) and isinstance(scale, numbers.Real) and math.isfinite(scale) \
        and scale == int(scale) and scale >= 2
    if supported is not None and not (whole and int(scale) in supported):
        raise FakdError(f"unsupported scale {scale!r}: use one of {sorted(supported)}")
    if not whole:
        raise FakdError(f"scale must be a whole number >= 2, got {scale!r}")
    return int(scale)


def check_positive_int(name: str, value: int) -> int:
    """Return ``value`` if it is an integer >= 1, else raise FakdError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FakdError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_positive_number(name: str, value: float) -> float:
    """Return ``value`` if it is a real number > 0, else raise FakdError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise FakdError(f"{name} must be a positive number, got {value!r}")
    return value
