"""The checks of a run config beyond its types: positive sizes, a known schedule, weights ≥ 0, and
upper limits on sizes, so that a typo (``data.batch_size=1000000000``, ``n_feats=40000``) is one clear
error before anything is allocated rather than an out-of-memory kill mid-way. ``fakd.train.config``
applies them to every config it builds (``validate_config``)."""

from __future__ import annotations

import math
from typing import Any

from fakd.errors import FakdError

SCHEDULES = ("multistep", "cosine")
# student.init → the block rule of fakd.models.inherit (None: random weights, as the paper)
STUDENT_INITS = {"scratch": None, "teacher": "first", "teacher-spaced": "spaced"}
MAX_SEED = 2**32 - 1  # numpy's seed range; torch's is wider
MAX_SCALE = 16
MAX_THREADS = 1024
MAX_BATCH_ELEMENTS = 2**30  # batch × 3 × (patch·scale)²: 4 GiB for one float32 HR batch


def validate_config(config) -> None:
    """Check value ranges that the type alone does not (positive sizes, known schedule, ...)."""
    positive = {
        "scale": config.scale,
        "validate_every": config.validate_every,
        "checkpoint_every": config.checkpoint_every,
        "log_every": config.log_every,
        "data.patch_size": config.data.patch_size,
        "data.batch_size": config.data.batch_size,
        "data.validation_images": config.data.validation_images,
    }
    for role in ("teacher", "student"):
        positive[f"{role}.iterations"] = config.role(role).iterations
        _validate_role(config.role(role), role=role)
    for name, value in positive.items():
        if value < 1:
            raise FakdError(f"{name} must be ≥ 1, got {value}")
    _validate_ranges(config)
    if not 0 <= config.distill.alpha <= 1:
        raise FakdError(f"distill.alpha must be in [0, 1], got {config.distill.alpha}")
    from fakd.distill.methods import check_weight  # here, not at the top: torch stays out of `fakd … --help`

    for method, weight in config.distill.weights.items():
        check_weight(weight, where=f"distill.weights.{method}")
    if not config.data.train_sets:
        raise FakdError("data.train_sets is empty: name at least one HR set")
    from fakd.models.registry import check_model_size  # here, not at the top: torch stays out of `fakd … --help`

    for role in ("teacher", "student"):
        settings = config.role(role).model
        check_model_size({**_preset_config(settings.preset), **settings.overrides, "scale": config.scale},
                         where=f"{role}.model ({settings.preset})")


def _validate_role(settings, *, role: str) -> None:
    if settings.init not in STUDENT_INITS:
        raise FakdError(f"{role}.init must be one of {', '.join(STUDENT_INITS)}, got {settings.init!r}")
    if role == "teacher" and settings.init != "scratch":
        raise FakdError(f"teacher.init must be scratch (only a student starts from a teacher), got {settings.init!r}")
    if settings.schedule not in SCHEDULES:
        raise FakdError(f"{role}.schedule must be one of {', '.join(SCHEDULES)}, got {settings.schedule!r}")
    if not (math.isfinite(settings.lr) and settings.lr > 0):
        raise FakdError(f"{role}.lr must be a finite number > 0, got {settings.lr}")
    if not (math.isfinite(settings.min_lr) and 0 <= settings.min_lr <= settings.lr):
        raise FakdError(f"{role}.min_lr must be in [0, {role}.lr = {settings.lr}], got {settings.min_lr}")
    if len(settings.betas) != 2 or not all(0 <= b < 1 for b in settings.betas):
        raise FakdError(f"{role}.betas must be two numbers in [0, 1), got {settings.betas}")
    if any(not 0 < m < 1 for m in settings.milestones):
        raise FakdError(f"{role}.milestones are fractions of the run in (0, 1), got {settings.milestones}")
    if not 0 < settings.gamma <= 1:
        raise FakdError(f"{role}.gamma must be in (0, 1], got {settings.gamma}")


def _validate_ranges(config) -> None:
    """Upper bounds: seeds numpy accepts, and sizes that fit in memory (see the MAX_* limits)."""
    if not 0 <= config.seed <= MAX_SEED:
        raise FakdError(f"seed must be in [0, {MAX_SEED}], got {config.seed}")
    if config.scale > MAX_SCALE:
        raise FakdError(f"scale must be ≤ {MAX_SCALE}, got {config.scale}")
    if not 0 <= config.threads <= MAX_THREADS:
        raise FakdError(f"threads must be in [0, {MAX_THREADS}] (0 = torch default), got {config.threads}")
    if not (math.isfinite(config.teacher_cache_gb) and config.teacher_cache_gb >= 0):
        raise FakdError(f"teacher_cache_gb must be a number ≥ 0 (0 = no cap), got {config.teacher_cache_gb}")
    if config.data.validation_crop < 0:
        raise FakdError(f"data.validation_crop must be ≥ 0 (0 = whole images), got {config.data.validation_crop}")
    elements = config.data.batch_size * 3 * (config.data.patch_size * config.scale) ** 2
    if elements > MAX_BATCH_ELEMENTS:
        raise FakdError(
            f"data.batch_size={config.data.batch_size} with data.patch_size={config.data.patch_size} at "
            f"x{config.scale} would hold {elements * 4 / 2**30:.3g} GiB in one HR batch alone (limit "
            f"{MAX_BATCH_ELEMENTS * 4 / 2**30:.0f} GiB); use a smaller batch or patch"
        )


def _preset_config(preset: str) -> dict[str, Any]:
    from fakd.models.registry import PRESETS  # here too: torch stays out of `fakd … --help`

    if preset not in PRESETS:
        raise FakdError(f"unknown model preset {preset!r}: known ones are {sorted(PRESETS)}")
    return {**PRESETS[preset], "preset": preset}
