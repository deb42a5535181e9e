"""Distillation terms under bfloat16 autocast: FAKD's exact affinity loss against a float64 formula
written out here, the methods' float32 flags against the measurement, and the objective applying them."""

import pytest
import torch
from torch import nn

from fakd.distill.affinity import affinity_loss
from fakd.distill.baselines import ChannelAffinityLoss, FitNetLoss, FSPLoss
from fakd.distill.methods import METHODS, build_loss, feature_methods
from fakd.distill.objective import DistillationObjective
from fakd.distill.precision import in_float32, needs_float32, precision_errors


def _maps(seed: int, channels: int = 16, side: int = 12):
    """A teacher map and a student map that follows it (as a distilled student's does), batch 4."""
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.randn(4, channels, side, side, generator=generator)
    return 0.9 * teacher + 0.3 * torch.randn(teacher.shape, generator=generator), teacher


def _naive_affinity_l1(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """The paper's loss in float64, written out: mean |A_s − A_t| of the N×N cosine matrices."""
    def affinity(feat):
        flat = feat.double().flatten(2)
        unit = flat / (flat.norm(dim=1, keepdim=True) + 1e-8)
        return unit.transpose(1, 2) @ unit
    return (affinity(student) - affinity(teacher)).abs().mean()


def test_affinity_loss_under_autocast_is_float32_exact_and_its_bfloat16_arithmetic_is_not():
    student, teacher = (m.bfloat16() for m in _maps(0))  # the features a bfloat16 forward hands over
    reference = _naive_affinity_l1(student, teacher)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = affinity_loss(student, teacher)
    half = affinity_loss(student, teacher, compute_dtype=torch.bfloat16)
    assert value.dtype == torch.float32 and half.dtype == torch.bfloat16
    assert float(value) == pytest.approx(float(reference), rel=1e-6)
    assert abs(float(half) - float(reference)) / float(reference) > 1e-4


def test_precision_errors_of_the_exact_affinity_loss_value_and_gradient():
    student, teacher = _maps(1)
    class Half(nn.Module):
        def forward(self, s, t):
            return affinity_loss(s, t, compute_dtype=torch.bfloat16)
    errors = precision_errors(build_loss("fakd", {}, label="fakd"), student, teacher, half_loss=Half())
    assert errors["float32"]["value"] < 1e-6 and errors["float32_on_bfloat16"]["value"] < 1e-6
    assert errors["bfloat16"]["value"] > 10 * errors["float32_on_bfloat16"]["value"]
    # the rule's gradient error is the gradient's rounding to bfloat16: 2^-9 relative at most per entry
    assert errors["float32_on_bfloat16"]["gradient"] < 2 ** -9
    assert errors["bfloat16"]["gradient"] > 5 * errors["float32_on_bfloat16"]["gradient"]
    assert needs_float32(errors)


@pytest.mark.parametrize("method", feature_methods())
def test_a_methods_float32_flag_is_what_the_measurement_says(method):
    student, teacher = _maps(2)
    if METHODS[method].consecutive_pairs:
        second_student, second_teacher = _maps(3)
        student, teacher = (student, second_student), (teacher, second_teacher)
    loss = build_loss(method, {}, label=method)
    half = None
    if method == "fakd":
        class Half(nn.Module):
            def forward(self, s, t):
                return affinity_loss(s, t, compute_dtype=torch.bfloat16)
        half = Half()
    assert needs_float32(precision_errors(loss, student, teacher, half_loss=half)) == METHODS[method].float32


def test_in_float32_upcasts_half_maps_only_and_turns_autocast_off():
    seen = []
    def probe(student, teacher):
        seen.append((student.dtype, teacher[0].dtype, torch.is_autocast_enabled("cpu")))
        return student.sum()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_float32(probe, torch.ones(2, dtype=torch.bfloat16), (torch.ones(2, dtype=torch.float64),))
    assert seen == [(torch.float32, torch.float64, False)]


def test_the_objective_computes_flagged_terms_in_float32_under_autocast_and_leaves_fitnet():
    student, teacher = (m.bfloat16() for m in _maps(4))
    taps = ["a", "b"]
    objective = DistillationObjective(alpha=0.0, terms=[
        {"method": "ca", "weight": 1.0, "student_taps": taps, "teacher_taps": taps},
        {"method": "fsp", "weight": 1.0, "student_taps": taps, "teacher_taps": taps},
        {"method": "fitnet", "weight": 1.0, "student_taps": taps[:1], "teacher_taps": taps[:1]},
    ])
    features_s, features_t = {"a": student, "b": student * 0.5}, {"a": teacher, "b": teacher * 0.5}
    sr = torch.rand(4, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, values = objective(student_sr=sr, hr=sr, student_features=features_s, teacher_features=features_t)
        half_ca = ChannelAffinityLoss()(student, teacher) + ChannelAffinityLoss()(student * 0.5, teacher * 0.5)
        fitnet = FitNetLoss()(student, teacher)
    float_ca = sum(ChannelAffinityLoss()(features_s[tap].float(), features_t[tap].float()) for tap in taps)
    float_fsp = FSPLoss()((student.float(), (student * 0.5).float()), (teacher.float(), (teacher * 0.5).float()))
    assert values["ca"].dtype == torch.float32 and half_ca.dtype == torch.bfloat16
    assert float(values["ca"]) == pytest.approx(float(float_ca), rel=1e-6)
    assert abs(float(half_ca) - float(float_ca)) > 1e-4 * float(float_ca)  # what autocast alone would give
    assert float(values["fsp"]) == pytest.approx(float(float_fsp), rel=1e-6)
    assert torch.equal(values["fitnet"], fitnet)  # not flagged: exactly what autocast computes
