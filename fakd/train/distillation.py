"""From a run's ``distill`` settings to a ``DistillationObjective`` for a student/teacher pair.

Method names (``distill.methods``, combinations allowed; the registry is ``fakd.distill.methods``):

- ``none``: the student alone, L1 to HR (α = 0, teacher never run); cannot be combined.
- ``kd``: output distillation, ``(1 − α)·L1(SR, HR) + α·L1(SR, SR_teacher)``.
- ``fakd``, ``fitnet``, ``at``, ``fsp``, ``ca``: feature terms added to the ``kd`` loss above (the
  paper's FAKD = kd + w · affinity term, w = 1 as run for the published table, 10 as written in the
  official README). So ``--method fakd`` and ``--method fakd --method kd``
  are the same objective; set ``distill.alpha=0`` for feature terms without output KD.

Each feature term uses ``distill.weights[method]``, else the method's default weight; tap lists
default to each model's ``default_taps`` (the official code's positions), paired one to one. Weights
are in the official code's units: against L1 terms on 0–255 pixels (``fakd.distill.objective``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from fakd.distill import METHODS, DistillationObjective, check_methods, objective_for, resolve_taps
from fakd.distill.baselines import check_order
from fakd.errors import FakdError
from fakd.train.config import DistillSettings


def build_objective(settings: DistillSettings, *, student: nn.Module, teacher: nn.Module | None) -> DistillationObjective:
    """The objective for ``settings`` with taps checked against both models."""
    methods = check_methods(settings.methods)
    if methods != ["none"] and teacher is None:
        raise FakdError(f"methods {methods} need a teacher checkpoint (--teacher)")
    student_taps = teacher_taps = []
    if methods != ["none"]:
        student_taps = resolve_taps(student, settings.student_taps or None)
        teacher_taps = resolve_taps(teacher, settings.teacher_taps or (settings.student_taps or None))
    return objective_for(methods, alpha=settings.alpha, weights=settings.weights, options=settings.options,
                         student_taps=student_taps, teacher_taps=teacher_taps)


def distill_updates(
    methods: list[str] | None = None,
    *,
    weights: list[float] | None = None,
    student_taps: list[str] | None = None,
    teacher_taps: list[str] | None = None,
    p: int | None = None,
) -> dict[str, Any]:
    """Command-line style choices as typed ``updates`` for ``load_run_config`` (dotted key → value).

    ``weights``: one value for every feature method, or one per feature method in the order of
    ``methods`` (``kd``/``none`` take none); their range is checked with the rest of the config.
    ``p``: the FAKD affinity distance (1 or 2).
    """
    updates: dict[str, Any] = {}
    if methods:
        methods = check_methods(list(methods))
        updates["distill.methods"] = methods
    if weights:
        if not methods:
            raise FakdError("a weight needs a method (which term it weighs)")
        featured = [method for method in methods if METHODS[method].has_feature_term]
        if not featured:
            raise FakdError(f"a weight was given, but methods {methods} have no feature term to weigh")
        if len(weights) == 1:
            chosen = dict.fromkeys(featured, weights[0])
        elif len(weights) == len(featured):
            chosen = dict(zip(featured, weights))
        else:
            raise FakdError(f"{len(weights)} --weight values for {len(featured)} feature method(s) "
                            f"{featured}: give one for all or one per feature method")
        updates.update({f"distill.weights.{method}": float(weight) for method, weight in chosen.items()})
    if student_taps:
        updates["distill.student_taps"] = list(student_taps)
    if teacher_taps:
        updates["distill.teacher_taps"] = list(teacher_taps)
    if p is not None:
        if "fakd" not in (methods or []):
            raise FakdError(f"--p sets the FAKD affinity distance, but the methods {list(methods or [])} do not "
                            "include fakd")
        check_order(p)
        updates["distill.options.fakd.p"] = int(p)
    return updates

