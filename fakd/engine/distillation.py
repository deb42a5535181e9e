"""From a run's ``distill`` settings to a ``DistillationObjective`` for a student/teacher pair.

Method names (``distill.methods``, combinations allowed):

- ``none``: the student alone, L1 to HR (α = 0, teacher never run); cannot be combined.
- ``kd``: output distillation, ``(1 − α)·L1(SR, HR) + α·L1(SR, SR_teacher)``.
- ``fakd``, ``fitnet``, ``at``, ``fsp``, ``ca``: feature terms added to the ``kd`` loss above (the
  paper's FAKD = kd + w · affinity term, w = 1 as run for the published table, 10 as written in the
  official README). So ``--method fakd`` and ``--method fakd --method kd``
  are the same objective; set ``distill.alpha=0`` for feature terms without output KD.

Each feature term uses ``distill.weights[method]``, else :data:`DEFAULT_WEIGHTS`; tap lists default
to each model's ``default_taps`` (the official code's positions), paired one to one. Weights are in
the official code's units: against L1 terms on 0–255 pixels (``fakd.distill.objective``).
"""

from __future__ import annotations

from torch import nn

from fakd.distill import FEATURE_LOSSES, KNOWN_METHODS, DistillationObjective
from fakd.engine.config import DistillSettings
from fakd.errors import FakdError
from fakd.models import resolve_taps

# Weights used when a run gives none, in official units (against L1 on 0–255 pixels). Each is its
# source's weight against the task loss, taken unchanged against the official code's L1:
#   fakd   1     the effective weight behind the FAKD paper's table (official code before
#                2022-06-25 parsed "10*SA" but did not apply the 10; the README writes 10)
#   ca     1     the official code's channel-affinity variant ("1*CA"-style, same family as SA)
#   fitnet 1     Romero et al.'s hint loss as configured in torchdistill (factor 1.0)
#   at     1000  Zagoruyko & Komodakis' beta (torchdistill's AT factor for CIFAR/ImageNet)
#   fsp    1     Yim et al.'s FSP loss weight (torchdistill's FSP factor 1.0)
DEFAULT_WEIGHTS = {"fakd": 1.0, "ca": 1.0, "fitnet": 1.0, "at": 1000.0, "fsp": 1.0}


def check_methods(methods: list[str]) -> list[str]:
    """Unique method names in order; unknown names or ``none`` mixed with others → FakdError."""
    if not methods:
        raise FakdError(f"no distillation method given: use one or more of {', '.join(KNOWN_METHODS)}")
    unknown = [name for name in methods if name not in KNOWN_METHODS]
    if unknown:
        raise FakdError(f"unknown distillation method(s) {unknown}: use {', '.join(KNOWN_METHODS)}")
    methods = list(dict.fromkeys(methods))
    if "none" in methods and len(methods) > 1:
        raise FakdError("method 'none' (no distillation) cannot be combined with other methods")
    return methods


def build_objective(settings: DistillSettings, *, student: nn.Module, teacher: nn.Module | None) -> DistillationObjective:
    """The objective for ``settings`` with taps checked against both models."""
    methods = check_methods(settings.methods)
    for key in ("weights", "options"):  # output KD is weighted by alpha, not by distill.weights.kd
        unused = sorted(set(getattr(settings, key)) - set(FEATURE_LOSSES))
        if unused:
            raise FakdError(f"distill.{key} names {unused}, which are not feature methods "
                            f"({', '.join(FEATURE_LOSSES)}; output KD is set by distill.alpha)")
    if methods == ["none"]:
        return DistillationObjective(alpha=0.0)
    if teacher is None:
        raise FakdError(f"methods {methods} need a teacher checkpoint (--teacher)")
    student_taps = resolve_taps(student, settings.student_taps or None)
    teacher_taps = resolve_taps(teacher, settings.teacher_taps or (settings.student_taps or None))
    if len(student_taps) != len(teacher_taps):
        raise FakdError(
            f"{len(student_taps)} student taps {student_taps} but {len(teacher_taps)} teacher taps "
            f"{teacher_taps}: they are paired one to one"
        )
    terms = []
    for method in methods:
        if method == "kd":
            continue
        terms.append({
            "method": method,
            "weight": float(settings.weights.get(method, DEFAULT_WEIGHTS[method])),
            "student_taps": student_taps,
            "teacher_taps": teacher_taps,
            **settings.options.get(method, {}),
        })
    return DistillationObjective(alpha=settings.alpha, terms=terms)


def distill_overrides(
    methods: list[str] | None = None,
    *,
    weights: list[float] | None = None,
    student_taps: list[str] | None = None,
    teacher_taps: list[str] | None = None,
    p: int | None = None,
) -> list[str]:
    """Command-line style choices as ``--set`` overrides for ``load_run_config``.

    ``weights``: one value for every feature method, or one per feature method in the order of
    ``methods`` (``kd``/``none`` take none). ``p``: the FAKD affinity distance (1 or 2).
    """
    overrides = []
    if methods:
        methods = check_methods(list(methods))
        overrides.append(f"distill.methods=[{','.join(methods)}]")
    if weights:
        if any(weight < 0 for weight in weights):
            raise FakdError(f"weights must be ≥ 0, got {list(weights)}")
        if not methods:
            raise FakdError("a weight needs a method (which term it weighs)")
        featured = [method for method in methods if method in FEATURE_LOSSES]
        if not featured:
            raise FakdError(f"a weight was given, but methods {methods} have no feature term to weigh")
        if len(weights) == 1:
            chosen = dict.fromkeys(featured, weights[0])
        elif len(weights) == len(featured):
            chosen = dict(zip(featured, weights))
        else:
            raise FakdError(f"{len(weights)} --weight values for {len(featured)} feature method(s) "
                            f"{featured}: give one for all or one per feature method")
        overrides += [f"distill.weights.{method}={float(weight)!r}" for method, weight in chosen.items()]
    if student_taps:
        overrides.append(f"distill.student_taps=[{','.join(student_taps)}]")
    if teacher_taps:
        overrides.append(f"distill.teacher_taps=[{','.join(teacher_taps)}]")
    if p is not None:
        if "fakd" not in methods:
            raise FakdError(f"--p sets the FAKD affinity distance, but the methods {list(methods)} do not include fakd")
        if p not in (1, 2):
            raise FakdError(f"the FAKD affinity distance p must be 1 or 2, got {p!r}")
        overrides.append(f"distill.options.fakd.p={int(p)}")
    return overrides

