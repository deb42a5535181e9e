"""What the affinity explorer and the comparison show: one pixel's affinity row, and per-tap agreement.

The spatial affinity of a feature map F (C, h, w) is A = F̂ᵀF̂ with every position's C-vector scaled
to unit length (``fakd.distill.spatial_affinity``). Row ``n`` of A — the cosine similarity of
position ``n`` to every other position — reshaped to (h, w) is a heat map over the image: which
parts of the image the network "sees" as like that pixel at that depth. Rows are computed directly
(one matrix-vector product), never the N×N matrix, so whole images work.

Agreement between a student's and a teacher's affinities at one tap is given two ways, both exact
and both without N×N matrices:

- ``l1``: mean |A_s − A_t| over all N² pairs — the FAKD loss term itself (0 = identical);
- ``correlation``: Pearson correlation of the N² entries of A_s and A_t (1 = same structure up to
  an affine map), from C×C Gram products: ΣA = ‖Σₙ f̂ₙ‖², ΣA² = ‖F̂F̂ᵀ‖², ΣA_s·A_t = ‖F̂_sF̂_tᵀ‖².
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from fakd.distill import FeatureTaps, affinity_loss, check_tap_pairs, normalise_positions, resolve_taps
from fakd.errors import FakdError


def tap_features(model: nn.Module, lr: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:
    """``{tap: (1, C, h, w) feature}`` of ``model`` on one LR image (uint8 or float (3, h, w) / (1, 3, h, w))."""
    names = resolve_taps(model, list(taps))
    batch = lr if lr.dim() == 4 else lr.unsqueeze(0)
    if batch.dtype == torch.uint8:
        batch = batch.float().div(255.0)
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad(), FeatureTaps(model, names) as captured:
        model(batch.to(device))
        return {name: captured[name].detach().float().cpu() for name in names}


def pixel_to_position(pixel: tuple[int, int], *, size: tuple[int, int]) -> int:
    """Flat index n = y·w + x of ``pixel`` = (y, x) in a (h, w) map; out of range is a FakdError."""
    y, x = int(pixel[0]), int(pixel[1])
    height, width = size
    if not (0 <= y < height and 0 <= x < width):
        raise FakdError(f"pixel (y={y}, x={x}) lies outside the {height}x{width} feature map")
    return y * width + x


def affinity_row(feat: Tensor, pixel: tuple[int, int]) -> np.ndarray:
    """Row of the spatial affinity for ``pixel`` (y, x) as an (h, w) float array in [−1, 1].

    ``feat`` is one feature map (C, h, w) or (1, C, h, w).
    """
    if feat.dim() == 3:
        feat = feat.unsqueeze(0)
    if feat.dim() != 4 or feat.shape[0] != 1:
        raise ValueError(f"affinity_row takes one feature map (C, h, w) or (1, C, h, w), got {tuple(feat.shape)}")
    height, width = feat.shape[-2:]
    position = pixel_to_position(pixel, size=(height, width))
    unit = normalise_positions(feat.double())[0]  # (C, N)
    row = unit[:, position] @ unit  # (N,)
    return row.reshape(height, width).numpy()


def affinity_agreement(student_feat: Tensor, teacher_feat: Tensor) -> dict[str, float]:
    """``{"l1": mean |A_s − A_t|, "correlation": Pearson r of A_s and A_t}`` over all N² pairs.

    Student and teacher maps must share batch and spatial size (channel counts may differ).
    """
    l1 = float(affinity_loss(student_feat.float(), teacher_feat.float(), p=1))
    student = normalise_positions(student_feat.double())
    teacher = normalise_positions(teacher_feat.double())
    batch, _, positions = student.shape
    count = batch * positions * positions

    def gram_square(first: Tensor, second: Tensor) -> float:
        return float(torch.bmm(first, second.transpose(1, 2)).square().sum())

    sum_s = float(student.sum(dim=2).square().sum())
    sum_t = float(teacher.sum(dim=2).square().sum())
    square_s, square_t = gram_square(student, student), gram_square(teacher, teacher)
    cross = gram_square(student, teacher)
    covariance = cross / count - (sum_s / count) * (sum_t / count)
    variance_s = square_s / count - (sum_s / count) ** 2
    variance_t = square_t / count - (sum_t / count) ** 2
    denominator = np.sqrt(max(variance_s, 0.0) * max(variance_t, 0.0))
    correlation = covariance / denominator if denominator > 0 else float("nan")
    return {"l1": l1, "correlation": float(correlation)}


def compare_affinities(teacher: nn.Module, student: nn.Module, lr: Tensor, *, pixel: tuple[int, int],
                       taps: Sequence[str] | None = None,
                       teacher_taps: Sequence[str] | None = None) -> list[dict]:
    """Per tap: the teacher's and the student's affinity rows for ``pixel`` (LR (y, x)) and their agreement.

    ``taps`` default to the student's default taps and the teacher's to its own (as distillation pairs them:
    the same names for models of one depth, the same relative depths otherwise); given ``taps``, the teacher
    uses the same names unless ``teacher_taps`` pairs others one to one. Returns one dict per tap with
    ``tap``, ``teacher_row``, ``student_row``, ``difference`` (student − teacher), ``l1`` and ``correlation``.
    """
    student_names = resolve_taps(student, None if taps is None else list(taps))
    teacher_names = resolve_taps(teacher, list(teacher_taps) if teacher_taps is not None
                                 else None if taps is None else student_names)
    check_tap_pairs(student_names, teacher_names, what="the affinity comparison")
    student_features = tap_features(student, lr, student_names)
    teacher_features = tap_features(teacher, lr, teacher_names)
    views = []
    for student_name, teacher_name in zip(student_names, teacher_names):
        s_feat, t_feat = student_features[student_name], teacher_features[teacher_name]
        teacher_row, student_row = affinity_row(t_feat, pixel), affinity_row(s_feat, pixel)
        views.append({
            "tap": student_name if student_name == teacher_name else f"{student_name}~{teacher_name}",
            "teacher_row": teacher_row,
            "student_row": student_row,
            "difference": student_row - teacher_row,
            **affinity_agreement(s_feat, t_feat),
        })
    return views
