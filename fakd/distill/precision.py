"""Distillation terms under bfloat16 autocast: the precision rule and its measurement.

Under ``torch.autocast(dtype=torch.bfloat16)`` the networks' features come out in bfloat16 (8
significant bits). A term left to autocast runs its matmuls in bfloat16 too, and the affinity-type
terms then subtract nearly equal numbers (cosines of student and teacher, flow matrices) in 8 bits.
The rule: a method whose record says ``float32`` (``fakd.distill.methods``) is computed with
autocast off and its inputs upcast to float32 (``in_float32``); the objective applies it. Which
methods need it was measured with ``precision_errors`` (docs/precision.md,
``benchmarks/bf16_step.py``): each term's value and gradient against float64 arithmetic.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

HALF = torch.bfloat16
# bfloat16 is good enough for a term when its value is this close to float64 and its gradient within this
# factor of the rule's (whose error is the gradient's own rounding to bfloat16, ~2e-3: nothing does better)
VALUE_LIMIT = 1e-4
GRADIENT_FACTOR = 2.0


def in_float32(loss: Callable, student, teacher) -> Tensor:
    """``loss(student, teacher)`` with autocast off and every half-precision map (or pair of maps)
    upcast to float32; float32 and float64 maps stay as they are."""
    device = _leaves(student)[0].device.type
    with torch.autocast(device_type=device, enabled=False):
        return loss(_upcast(student), _upcast(teacher))


def _upcast(maps):
    def cast(tensor: Tensor) -> Tensor:
        return tensor.float() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor
    return tuple(cast(t) for t in maps) if isinstance(maps, (tuple, list)) else cast(maps)


def precision_errors(loss: nn.Module, student, teacher, *, half_loss: nn.Module | None = None) -> dict:
    """Relative errors of one term's value and student gradient in four ways, each against float64
    arithmetic on the same inputs:

    - ``float32``: float32 inputs and arithmetic (training without autocast);
    - ``bfloat16``: inputs rounded to bfloat16, the term under bfloat16 autocast (``half_loss`` instead
      of ``loss`` when given: FAKD's affinity computes in float32 whatever autocast says, so its
      bfloat16 arithmetic is a loss built with ``compute_dtype``);
    - ``float32_on_bfloat16``: inputs rounded to bfloat16, ``in_float32`` (the rule);
    - ``input_rounding``: float64 on the rounded inputs against float64 on the originals — what the
      bfloat16 forward itself costs, which no loss precision can undo.

    ``student``/``teacher``: (B, C, H, W) maps or, for FSP, pairs of them. Value error |v − v₆₄|/|v₆₄|;
    gradient error ‖g − g₆₄‖/‖g₆₄‖ over the student's maps. The float64 reference runs a float64 copy
    of ``loss`` (FitNet's adapter included)."""
    double = copy.deepcopy(loss).double()
    rounded = _as(student, HALF), _as(teacher, HALF)
    exact = _evaluate(double, _as(student, torch.float64), _as(teacher, torch.float64))
    exact_rounded = _evaluate(double, _as(rounded[0], torch.float64), _as(rounded[1], torch.float64))
    device = _leaves(student)[0].device.type

    def half(s, t):
        with torch.autocast(device_type=device, dtype=HALF):
            return (half_loss or loss)(s, t)

    ways = {
        "float32": (_evaluate(loss, _as(student, torch.float32), _as(teacher, torch.float32)), exact),
        "bfloat16": (_evaluate(half, *rounded), exact_rounded),
        "float32_on_bfloat16": (_evaluate(lambda s, t: in_float32(loss, s, t), *rounded), exact_rounded),
        "input_rounding": (exact_rounded, exact),
    }
    return {name: _relative_errors(got, reference) for name, (got, reference) in ways.items()}


def needs_float32(errors: dict) -> bool:
    """Whether a term measured by ``precision_errors`` is not good enough left to bfloat16 autocast."""
    half, rule = errors["bfloat16"], errors["float32_on_bfloat16"]
    return half["value"] > VALUE_LIMIT or half["gradient"] > GRADIENT_FACTOR * rule["gradient"]


def _evaluate(loss: Callable, student, teacher) -> tuple[Tensor, list[Tensor]]:
    """(value, gradients with respect to the student's maps), both as float64."""
    student = _as(student, None, grad=True)
    value = loss(student, teacher)
    gradients = torch.autograd.grad(value, _leaves(student))
    return value.detach().double(), [gradient.double() for gradient in gradients]


def _relative_errors(got, reference) -> dict[str, float]:
    (value, gradients), (reference_value, reference_gradients) = got, reference
    difference = torch.sqrt(sum((g - r).square().sum() for g, r in zip(gradients, reference_gradients)))
    size = torch.sqrt(sum(r.square().sum() for r in reference_gradients))
    return {"value": float((value - reference_value).abs() / reference_value.abs().clamp_min(1e-300)),
            "gradient": float(difference / size.clamp_min(1e-300))}


def _leaves(maps) -> list[Tensor]:
    return list(maps) if isinstance(maps, (tuple, list)) else [maps]


def _as(maps, dtype: torch.dtype | None, *, grad: bool = False):
    """``maps`` (a tensor or a tuple of them) cast to ``dtype`` (None: as they are), as fresh leaves when ``grad``."""
    def cast(tensor: Tensor) -> Tensor:
        tensor = tensor.detach() if grad else tensor
        tensor = tensor.to(dtype) if dtype is not None else tensor
        return tensor.clone().requires_grad_(True) if grad else tensor
    return tuple(cast(t) for t in maps) if isinstance(maps, (tuple, list)) else cast(maps)
