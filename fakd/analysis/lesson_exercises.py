"""The lesson's self-checking exercises: each ``check_*`` runs a learner's answer and says right or wrong.

A check prints one line — ``✓ right: …``, ``✗ wrong: …`` (what differs) or ``… not answered yet`` for
an untouched stub that returns None — and returns nothing (the cell shows just that line), so an
exercise cell runs headless without failing. References are the kit's own functions (``fakd.distill``) on
random features of several widths, compared in float64; the widths answer is checked against what
the loss classes do (``fakd.analysis.lesson_families.width_requirement``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from fakd.analysis.lesson_families import WIDTH_ANSWERS, width_requirement
from fakd.distill import affinity_loss, spatial_affinity
from fakd.distill.baselines import attention_map

FEATURE_SHAPES = ((2, 3, 5, 4), (1, 17, 6, 6))  # (B, C, H, W): odd widths, non-square maps
WIDTH_METHODS = ("fitnet", "at", "fsp", "ca", "fakd")
TOLERANCE = 1e-4


def _features(seed: int = 0) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator, dtype=torch.float64) for shape in FEATURE_SHAPES]


def _say(right: bool | None, message: str) -> None:
    mark = {True: "✓ right", False: "✗ wrong", None: "… not answered yet"}[right]
    print(f"{mark}: {message}")


def _compare(answer, expected: Tensor, *, what: str) -> str | None:
    """None when ``answer`` equals ``expected`` within TOLERANCE, else what differs."""
    if not isinstance(answer, Tensor):
        return f"{what} should be a torch tensor, got {type(answer).__name__}"
    if tuple(answer.shape) != tuple(expected.shape):
        return f"{what} has shape {tuple(answer.shape)}, expected {tuple(expected.shape)}"
    error = float((answer.detach().double() - expected).abs().max())
    return None if error <= TOLERANCE else f"{what} differs from the kit's by up to {error:.3g}"


def _check_function(function: Callable, reference: Callable, *, what: str, name: str) -> None:
    for feat in _features():
        answer = function(feat.clone())
        if answer is None:
            return _say(None, f"{name} returned None — write it, then run the cell again")
        problem = _compare(answer, reference(feat), what=f"{what} of a {tuple(feat.shape)} map")
        if problem:
            return _say(False, problem)
    return _say(True, f"{name} matches the kit's {what} on maps of {len(FEATURE_SHAPES)} shapes")


def check_spatial_affinity(function: Callable[[Tensor], Tensor]) -> None:
    """``function(feat (B, C, H, W)) -> (B, N, N)``: the cosines between positions (FAKD's A)."""
    return _check_function(function, spatial_affinity, what="spatial affinity", name=function.__name__)


def check_attention_map(function: Callable[[Tensor], Tensor]) -> None:
    """``function(feat (B, C, H, W)) -> (B, H·W)``: AT's map, mean over channels of |F|², unit length."""
    return _check_function(function, attention_map, what="attention map", name=function.__name__)


def check_affinity_distance(function: Callable[[Tensor, Tensor], Tensor]) -> None:
    """``function(student_feat, teacher_feat) -> scalar``: FAKD's term mean |A_s − A_t| (widths may differ)."""
    student, teacher = _features(seed=1)[0], _features(seed=2)[0].repeat(1, 3, 1, 1)  # 3 vs 9 channels
    answer = function(student.clone(), teacher.clone())
    if answer is None:
        return _say(None, f"{function.__name__} returned None — write it, then run the cell again")
    problem = _compare(torch.as_tensor(answer).reshape(()), affinity_loss(student, teacher, p=1).reshape(()),
                       what="the FAKD distance of 3- and 9-channel maps")
    if problem:
        return _say(False, problem)
    return _say(True, "your FAKD distance equals the kit's exact affinity_loss (p = 1) for unequal widths")


def check_width_answers(answers: Mapping[str, str | None]) -> None:
    """``{method: "any widths" | "an adapter" | "equal widths"}`` for FitNet, AT, FSP, CA and FAKD."""
    if all(answers.get(name) is None for name in WIDTH_METHODS):
        return _say(None, f"fill in an answer for each of {', '.join(WIDTH_METHODS)}")
    unknown = {name: value for name, value in answers.items() if value not in WIDTH_ANSWERS[:3]}
    if unknown or set(answers) != set(WIDTH_METHODS):
        return _say(False, f"answer each of {', '.join(WIDTH_METHODS)} with one of {', '.join(WIDTH_ANSWERS[:3])} "
                           f"(got {dict(answers)})")
    wrong = [name for name in WIDTH_METHODS if answers[name] != width_requirement(name)]
    if wrong:
        return _say(False, f"{len(wrong)} of {len(WIDTH_METHODS)} answers are wrong: {', '.join(wrong)} "
                           "(try the loss classes on a 16- and a 32-channel map)")
    return _say(True, "all five, as the loss classes behave when student and teacher widths differ")
