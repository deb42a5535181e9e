"""The computations of the teaching notebook ``00_kd_primer``, kept here so the notebook only calls them.

Two feature extractors of different widths stand for a student and a teacher: the paper's RCAN
student (64 channels) and an EDSR of the EDSR teacher's width (256 channels, shortened to a few
blocks so it runs in a class on a laptop). Their weights are random (seeded): the point is the
shapes and the arithmetic, and convolutions with random weights already respond to colour and edges,
so the affinity rows follow the image.
"""

from __future__ import annotations

import torch
from torch import nn

from fakd.distill import DistillationObjective, FeatureTaps
from fakd.distill.objective import OFFICIAL_PIXEL_RANGE
from fakd.models import build_model

PRIMER_SEED = 0


def primer_networks(*, scale: int = 4) -> dict[str, tuple[nn.Module, str]]:
    """``{"64 channels (...)": (model, tap), "256 channels (...)": (model, tap)}``, random seeded weights."""
    torch.manual_seed(PRIMER_SEED)
    narrow = build_model("rcan-student", scale=scale, n_resgroups=3, n_resblocks=2).eval()
    torch.manual_seed(PRIMER_SEED)
    wide = build_model("edsr-teacher", scale=scale, n_resblocks=4).eval()
    return {"64 channels (RCAN student width)": (narrow, "body.2"),
            "256 channels (EDSR teacher width)": (wide, "body.3")}


def weighted_loss_terms(student: nn.Module, teacher: nn.Module, lr: torch.Tensor, hr: torch.Tensor, *,
                        student_tap: str, teacher_tap: str, alpha: float = 0.5,
                        weight: float = 1.0) -> dict[str, float]:
    """The FAKD training loss of ``student`` on one (lr, hr) pair, split into its weighted terms.

    ``lr``/``hr`` are float (1, 3, h, w) / (1, 3, H, W) in [0, 1]; ``weight`` is in the official
    code's units (L1 on 0–255 pixels). Returns the three weighted terms and their sum (``total``) in
    those units — the official code's numbers, 255× what ``DistillationObjective`` adds on [0, 1].
    """
    objective = DistillationObjective(alpha=alpha, terms=[{
        "method": "fakd", "weight": weight, "student_taps": [student_tap], "teacher_taps": [teacher_tap]}])
    with torch.no_grad(), FeatureTaps(student, [student_tap]) as student_taps, \
            FeatureTaps(teacher, [teacher_tap]) as teacher_taps:
        teacher_sr = teacher(lr)
        student_sr = student(lr)
        total, values = objective(student_sr=student_sr, hr=hr, teacher_sr=teacher_sr,
                                  student_features=student_taps.features, teacher_features=teacher_taps.features)
    labels = {"l1_hr": "(1 − α)·L1(SR_s, HR) on 0–255", "l1_teacher": "α·L1(SR_s, SR_t) on 0–255",
              "fakd": "w·L1(A_s, A_t)"}
    terms = {label: OFFICIAL_PIXEL_RANGE * objective.coefficient(name) * float(values[name])
             for name, label in labels.items()}
    return {**terms, "total": OFFICIAL_PIXEL_RANGE * float(total)}
