"""A run's loss on one batch: the frozen teacher's outputs (given or computed) and the student's
forward through the objective — as a function (``compute_loss``) and as the module
DistributedDataParallel wraps (``StudentLoss``), which computes the same thing."""

from __future__ import annotations

from torch import nn

from fakd.distill import DistillationObjective, FeatureTaps
from fakd.train.teacher_cache import TeacherOutputs, run_teacher


def compute_loss(model, teacher, objective, lr_batch, hr_batch, *, student_taps=None, teacher_taps=None,
                 teacher_outputs: TeacherOutputs | None = None):
    """One forward pass of the objective: teacher (frozen, no_grad) first, then the student.

    ``student_taps``/``teacher_taps`` are live ``FeatureTaps`` on the two models (or None when the
    objective has no feature terms). ``teacher_outputs``, when given, stand for the teacher's forward
    (``Training.teacher_outputs``: a live one or the cache's). Returns ``(total, {term: value})``.
    """
    if teacher_outputs is None and teacher is not None:
        teacher_outputs = run_teacher(teacher, lr_batch, teacher_taps)
    student_sr = model(lr_batch)
    return objective(
        student_sr=student_sr.float(),
        hr=hr_batch,
        teacher_sr=None if teacher_outputs is None else teacher_outputs.sr.float(),
        student_features=student_taps.features if student_taps is not None else None,
        teacher_features=teacher_outputs.features if teacher_outputs is not None else None,
    )


class StudentLoss(nn.Module):
    """The trained parameters — the student's and the objective's (FitNet's adapters) — behind one
    ``forward`` that returns ``compute_loss``'s ``(total, terms)`` for given teacher outputs: the unit
    whose gradients DistributedDataParallel averages over the ranks. The teacher is not part of it."""

    def __init__(self, model: nn.Module, objective: DistillationObjective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, lr_batch, hr_batch, *, student_taps=None, teacher_outputs: TeacherOutputs | None = None):
        return compute_loss(self.model, None, self.objective, lr_batch, hr_batch, student_taps=student_taps,
                            teacher_outputs=teacher_outputs)


class PairedTaps:
    """``FeatureTaps`` on the student and, when there is one, the teacher, as one context; each side
    is None when it has no taps (the objective then reads no features from it)."""

    def __init__(self, model: nn.Module, student_names: list[str], teacher: nn.Module | None,
                 teacher_names: list[str]):
        self.student = FeatureTaps(model, student_names)
        self.teacher = FeatureTaps(teacher, teacher_names) if teacher is not None and teacher_names else None
        self.student_names, self.teacher_names = student_names, teacher_names

    def __enter__(self):
        return (self.student if self.student_names else None,
                self.teacher if self.teacher_names and self.teacher is not None else None)

    def __exit__(self, *exc_info) -> None:
        self.student.remove()
        if self.teacher is not None:
            self.teacher.remove()
