"""The lesson's KD families side by side: what each loss compares, computed by the kit's own loss classes.

For one LR crop, a trained teacher and a trained student, each family's *picture* is the pair of
things its loss compares (teacher, student) and their difference, plus the loss value the kit's class
(``fakd.distill.baselines``, the objective's output-KD term) gives for them. ``width_requirement``
finds out by calling each loss with features of unequal widths whether it takes any widths, needs an
adapter or refuses — the answer the lesson's exercise checks against, not a table written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from fakd.analysis.affinity_view import affinity_row, tap_features
from fakd.analysis.figures import AFFINITY_MAP, DIFFERENCE_MAP, as_display_image, plt
from fakd.distill import DistillationObjective, spatial_affinity
from fakd.distill.baselines import attention_map, channel_affinity, fsp_matrix
from fakd.distill.methods import METHODS
from fakd.distill.objective import OFFICIAL_PIXEL_RANGE
from fakd.errors import FakdError

# What each family transfers, in one line (the formula is in the lesson's text).
TRANSFERS = {
    "kd": "the teacher's answer: its SR image",
    "fitnet": "the feature values themselves, channel by channel (through an adapter)",
    "at": "where the features are strong: one spatial attention map per layer",
    "fsp": "how two layers relate: the C1×C2 'flow' between their channels",
    "ca": "how channels relate: C×C cosines of the channels' maps",
    "fakd": "how positions relate: N×N cosines of the positions' C-vectors",
}
WIDTH_ANSWERS = ("any widths", "an adapter", "equal widths", "outputs only")


@dataclass(frozen=True)
class FamilyPicture:
    """One family on one crop: the teacher's and the student's compared quantity, their difference."""

    method: str
    compares: str           # what the panels show, e.g. "attention map (h×w)"
    teacher: np.ndarray
    student: np.ndarray
    difference: np.ndarray
    loss: float             # the kit's loss class on these features (unweighted; output KD in 0-255 units)
    kind: str = "map"       # "image" (RGB), "map" (h×w over the crop) or "matrix" (rows × columns)


def width_requirement(name: str, *, student_width: int = 16, teacher_width: int = 32) -> str:
    """One of ``WIDTH_ANSWERS`` for method ``name``, found by calling its loss on unequal widths."""
    record = METHODS[name]
    if not record.has_feature_term:
        return "outputs only"
    torch.manual_seed(0)
    student = torch.randn(1, student_width, 6, 6)
    teacher = torch.randn(1, teacher_width, 6, 6)
    pair = ((student, student), (teacher, teacher)) if record.consecutive_pairs else (student, teacher)
    try:
        record.loss()(*pair)
        return "any widths"
    except FakdError:
        pass  # refused: the widths must be equal, unless the loss can build an adapter
    except RuntimeError:
        pass
    if "student_channels" in record.options:
        loss = record.loss(student_channels=student_width, teacher_channels=teacher_width)
        if loss.adapter is not None and torch.isfinite(loss(student, teacher)):
            return "an adapter"
    return "equal widths"


def _lr_batch(lr: Tensor) -> Tensor:
    batch = lr if lr.dim() == 4 else lr.unsqueeze(0)
    return batch.float().div(255.0) if batch.dtype == torch.uint8 else batch


def output_kd_picture(teacher: nn.Module, student: nn.Module, lr: Tensor) -> FamilyPicture:
    """The teacher's SR, the student's SR and |SR_s − SR_t| (mean over RGB, in grey levels)."""
    batch = _lr_batch(lr)
    with torch.no_grad():
        teacher_sr, student_sr = teacher(batch).clamp(0, 1), student(batch).clamp(0, 1)
    objective = DistillationObjective(alpha=0.5, terms=[])
    _, values = objective(student_sr=student_sr, hr=teacher_sr, teacher_sr=teacher_sr)
    residual = (student_sr - teacher_sr).abs().mean(dim=1)[0].numpy() * OFFICIAL_PIXEL_RANGE
    return FamilyPicture("kd", "SR image (3×H×W)", as_display_image(teacher_sr), as_display_image(student_sr),
                         residual, OFFICIAL_PIXEL_RANGE * float(values["l1_teacher"]), kind="image")


def feature_pictures(teacher_features: dict[str, Tensor], student_features: dict[str, Tensor], *,
                     tap: str, first_tap: str, pixel: tuple[int, int], matrix_crop: int = 16) -> list[FamilyPicture]:
    """FitNet, AT, FSP, CA and FAKD (a row and a matrix) at ``tap`` (FSP: ``first_tap`` → ``tap``)."""
    teacher, student = teacher_features[tap], student_features[tap]
    if teacher.shape[1] != student.shape[1]:
        raise FakdError(f"the side-by-side pictures compare equal widths, got teacher {teacher.shape[1]} and "
                        f"student {student.shape[1]} channels at {tap}")
    losses = {name: METHODS[name].loss() for name in ("fitnet", "at", "fsp", "ca", "fakd")}
    channel = int(teacher[0].flatten(1).var(dim=1).argmax())
    height, width = teacher.shape[-2:]
    maps = [
        FamilyPicture("fitnet", f"feature channel {channel} of {teacher.shape[1]} (h×w)", teacher[0, channel].numpy(),
                      student[0, channel].numpy(), (student - teacher)[0, channel].numpy(),
                      float(losses["fitnet"](student, teacher))),
        FamilyPicture("at", "attention map mean_c |F|² (h×w, unit length)",
                      attention_map(teacher)[0].reshape(height, width).numpy(),
                      attention_map(student)[0].reshape(height, width).numpy(),
                      (attention_map(student) - attention_map(teacher))[0].reshape(height, width).numpy(),
                      float(losses["at"](student, teacher))),
    ]
    flows = [fsp_matrix(features[first_tap], features[tap])[0].numpy() for features in (teacher_features, student_features)]
    cosines = [channel_affinity(features)[0].numpy() for features in (teacher, student)]
    maps += [
        FamilyPicture("fsp", f"flow {first_tap} → {tap} (C×C)", flows[0], flows[1], flows[1] - flows[0],
                      float(losses["fsp"]((student_features[first_tap], student),
                                          (teacher_features[first_tap], teacher))), kind="matrix"),
        FamilyPicture("ca", "channel affinity (C×C cosines)", cosines[0], cosines[1], cosines[1] - cosines[0],
                      float(losses["ca"](student, teacher)), kind="matrix"),
    ]
    return maps + _fakd_pictures(teacher, student, pixel=pixel, matrix_crop=matrix_crop, loss=losses["fakd"])


def _fakd_pictures(teacher: Tensor, student: Tensor, *, pixel: tuple[int, int], matrix_crop: int,
                   loss: nn.Module) -> list[FamilyPicture]:
    rows = [affinity_row(features, pixel) for features in (teacher, student)]
    value = float(loss(student, teacher))
    height, width = teacher.shape[-2:]
    top, left = max(0, (height - matrix_crop) // 2), max(0, (width - matrix_crop) // 2)
    crop = (slice(None), slice(None), slice(top, top + matrix_crop), slice(left, left + matrix_crop))
    matrices = [spatial_affinity(features[crop])[0].numpy() for features in (teacher, student)]
    side = min(matrix_crop, height, width)
    return [
        FamilyPicture("fakd", f"affinity row of pixel {tuple(pixel)} (h×w cosines)", rows[0], rows[1],
                      rows[1] - rows[0], value),
        FamilyPicture("fakd", f"affinity matrix of {side}×{side} positions", matrices[0],
                      matrices[1], matrices[1] - matrices[0], value, kind="matrix"),
    ]


def family_pictures(teacher: nn.Module, student: nn.Module, lr: Tensor, *, tap: str, first_tap: str,
                    pixel: tuple[int, int]) -> list[FamilyPicture]:
    """Every family on the LR crop ``lr`` (uint8 or float, (3, h, w)): output KD, then the feature families."""
    teacher_features = tap_features(teacher, lr, [first_tap, tap])
    student_features = tap_features(student, lr, [first_tap, tap])
    return [output_kd_picture(teacher, student, lr),
            *feature_pictures(teacher_features, student_features, tap=tap, first_tap=first_tap, pixel=pixel)]


def families_table(pictures: list[FamilyPicture]) -> pd.DataFrame:
    """One row per family: what it transfers, what it compares, the widths it needs, its loss here and
    its default weight (official units)."""
    rows, seen = [], set()
    for picture in pictures:
        if picture.method in seen:
            continue
        seen.add(picture.method)
        record = METHODS[picture.method]
        rows.append({"method": picture.method, "family": record.label, "transfers": TRANSFERS[picture.method], "compares": picture.compares,
                     "student and teacher widths": width_requirement(picture.method),
                     "loss on this crop": picture.loss,
                     "default weight": record.default_weight if record.default_weight is not None else "α = 0.5"})
    return pd.DataFrame(rows)


def _show(figure, axis, values: np.ndarray, *, kind: str, title: str, limits=None, cmap: str = "viridis") -> None:
    if kind == "image":
        axis.imshow(values)
    else:
        picture = axis.imshow(values, cmap=cmap, interpolation="nearest",
                              vmin=None if limits is None else limits[0], vmax=None if limits is None else limits[1])
        figure.colorbar(picture, ax=axis, fraction=0.046, pad=0.04)
    axis.set_title(title, fontsize=10)
    axis.set_xticks([])
    axis.set_yticks([])


def _row_label(picture: FamilyPicture) -> str:
    words, lines = picture.compares.split(), [""]
    for word in words:  # wrap at ~26 characters
        lines[-1:] = [f"{lines[-1]} {word}".strip()] if len(lines[-1]) + len(word) < 26 else [lines[-1], word]
    return "\n".join([METHODS[picture.method].label, *lines])


def families_figure(pictures: list[FamilyPicture], *, pixel: tuple[int, int] | None = None) -> plt.Figure:
    """One row per picture: teacher, student (one colour scale) and student − teacher; the FAKD row's
    ``pixel`` marked."""
    figure, axes = plt.subplots(len(pictures), 3, figsize=(12.5, 3.7 * len(pictures)), squeeze=False)
    for axis_row, picture in zip(axes, pictures):
        label = METHODS[picture.method].label
        both = np.concatenate([picture.teacher.ravel(), picture.student.ravel()])
        limits = (float(both.min()), float(both.max()))
        cmap = AFFINITY_MAP if picture.method in ("fakd", "ca") else "viridis"
        _show(figure, axis_row[0], picture.teacher, kind=picture.kind, limits=limits, cmap=cmap, title="teacher")
        _show(figure, axis_row[1], picture.student, kind=picture.kind, limits=limits, cmap=cmap, title="student")
        if picture.kind == "image":
            _show(figure, axis_row[2], picture.difference, kind="map", cmap="magma",
                  title=f"|SR_s − SR_t| in grey levels: L1 = {picture.loss:.3f}")
        else:
            bound = float(np.abs(picture.difference).max()) or 1.0
            _show(figure, axis_row[2], picture.difference, kind="map", limits=(-bound, bound), cmap=DIFFERENCE_MAP,
                  title=f"student − teacher: {label} loss = {picture.loss:.3g}")
        axis_row[0].set_ylabel(_row_label(picture), fontsize=11)
        if pixel is not None and picture.method == "fakd" and picture.kind == "map":
            for axis in axis_row:
                axis.plot(pixel[1], pixel[0], marker="+", color="cyan", markersize=12, markeredgewidth=2)
    figure.suptitle("What each KD family compares: the shipped cpu teacher and the student trained without KD",
                    fontsize=13)
    figure.tight_layout(rect=(0, 0, 1, 0.985))
    return figure
