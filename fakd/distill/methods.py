"""The distillation methods, one record each: the only place a method's facts are written down.

Per method: its feature loss class (none for ``none``/``kd``, which are the α term), its default
weight in the official code's units (against L1 on 0–255 pixels, see ``fakd.distill.objective``),
its display label in reports, how its taps pair up, and the loss options it accepts. The objective,
the training config, the ablation report and the shipped models' manifest all read this table, and
``fakd.distill.objective.objective_for`` is the one path from method names to a ``DistillationObjective``.

Default weights — each is its source's weight against the task loss, taken unchanged against the
official code's L1:

    fakd   1     the effective weight behind the FAKD paper's table (official code before
                 2022-06-25 parsed "10*SA" but did not apply the 10; the README writes 10)
    ca     1     the official code's channel-affinity variant ("1*CA"-style, same family as SA)
    fitnet 1     Romero et al.'s hint loss as configured in torchdistill (factor 1.0)
    at     1000  Zagoruyko & Komodakis' beta (torchdistill's AT factor for CIFAR/ImageNet)
    fsp    1     Yim et al.'s FSP loss weight (torchdistill's FSP factor 1.0)

Precision under bfloat16 autocast (``float32``; measured in docs/precision.md): FAKD, AT, FSP and CA
subtract nearly equal numbers and are computed in float32; FitNet (a 1×1 conv adapter, then an MSE that
autocast already keeps in float32) stays as autocast runs it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from torch import nn

from fakd.distill.baselines import (AttentionTransferLoss, ChannelAffinityLoss, FeatureAffinityLoss,
                                    FitNetLoss, FSPLoss)
from fakd.errors import FakdError


@dataclass(frozen=True)
class Method:
    """What fakd knows about one distillation method."""

    name: str
    label: str                          # display label in tables and figures
    loss: type[nn.Module] | None = None  # the feature loss; None: no feature term (none, kd)
    default_weight: float | None = None  # in official units; None without a feature term
    min_tap_pairs: int = 0              # student/teacher tap pairs a term needs
    consecutive_pairs: bool = False     # FSP compares consecutive (first, second) tap pairs
    options: tuple[str, ...] = ()       # keyword options of ``loss``
    float32: bool = False               # under autocast, computed in float32 (fakd.distill.precision)

    @property
    def has_feature_term(self) -> bool:
        return self.loss is not None


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("none", "no KD"),
    Method("kd", "output KD"),
    Method("fakd", "FAKD", FeatureAffinityLoss, 1.0, 1, options=("p", "block_bytes"), float32=True),
    Method("fitnet", "FitNet", FitNetLoss, 1.0, 1, options=("student_channels", "teacher_channels")),
    Method("at", "AT", AttentionTransferLoss, 1000.0, 1, options=("p",), float32=True),
    Method("fsp", "FSP", FSPLoss, 1.0, 2, consecutive_pairs=True, float32=True),
    Method("ca", "CA", ChannelAffinityLoss, 1.0, 1, options=("p",), float32=True),
)}


def known_methods() -> tuple[str, ...]:
    """Every registered method's name, in registration order (read at call time: ``register_method`` counts)."""
    return tuple(METHODS)


def feature_methods() -> tuple[str, ...]:
    """The registered methods with a feature term."""
    return tuple(name for name, method in METHODS.items() if method.has_feature_term)


def register_method(record: Method) -> Method:
    """Add a method to the registry: the objective, the config, the CLI's --method help, the report's
    comparison tables and labels all read ``METHODS`` when they run, so nothing else needs editing."""
    if record.name in METHODS:
        raise FakdError(f"a distillation method named {record.name!r} is registered already")
    METHODS[record.name] = record
    return record


def method(name: str) -> Method:
    """The record of ``name``; an unknown name → FakdError listing the known ones."""
    if name not in METHODS:
        raise FakdError(f"unknown distillation method {name!r}: use {', '.join(known_methods())}")
    return METHODS[name]


def check_methods(methods: Iterable[str]) -> list[str]:
    """Unique method names in order; none given, unknown names or ``none`` mixed with others → FakdError."""
    methods = list(methods)
    if not methods:
        raise FakdError(f"no distillation method given: use one or more of {', '.join(known_methods())}")
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise FakdError(f"unknown distillation method(s) {unknown}: use {', '.join(known_methods())}")
    methods = list(dict.fromkeys(methods))
    if "none" in methods and len(methods) > 1:
        raise FakdError("method 'none' (no distillation) cannot be combined with other methods")
    return methods


def check_weight(weight, *, where: str) -> float:
    """The one rule for a term's weight — a finite number ≥ 0 — checked where a config is built
    (``fakd.train.config_checks``) and where a term is made without one; FakdError naming ``where``."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (math.isfinite(weight) and weight >= 0):
        raise FakdError(f"{where} must be a finite number ≥ 0, got {weight!r}")
    return float(weight)


def build_loss(name: str, options: Mapping, *, label: str) -> nn.Module:
    """The feature loss of method ``name`` with ``options`` (unknown options → FakdError)."""
    record = METHODS[name]
    unknown = sorted(set(options) - set(record.options))
    if unknown:
        accepted = ", ".join(record.options) or "none"
        raise FakdError(f"term {label!r}: method {name!r} has no option(s) {unknown} (its options: {accepted})")
    return record.loss(**options)

