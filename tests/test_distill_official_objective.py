"""fakd's distillation objective against the official FAKD code's, written out here independently.

The official code (Vincent-Hoo/Knowledge-Distillation-for-Super-resolution) trains on pixels in
[0, 255]; its RCAN returns [head, group 3, group 7, body_tail] features and then adds the long skip
*in place* to the last one, and its loss is

    (1 − α)·L1(SR_s, HR) + α·L1(SR_s, SR_t) + w · Σ_taps L1(A_s, A_t),   A = n̂ᵀ n̂, n̂ = f / (‖f‖ + 1e-7)

on 0–255 tensors. fakd works on [0, 1] and divides feature weights by 255, so its total is the
official one / 255: the student's gradients must be parallel and each term's share the same.
"""

import pytest
import torch
import torch.nn.functional as F

from fakd.distill import FeatureTaps
from fakd.models import build_model
from fakd.train.config import DistillSettings
from fakd.train.distillation import build_objective
from fakd.train.trainer import compute_loss

RANGE = 255.0
ALPHA = 0.5


def official_affinity(feature: torch.Tensor) -> torch.Tensor:
    """The official ``spatial_similarity``: (B, 1, N, N) cosine similarities of positions."""
    flat = feature.reshape(feature.shape[0], feature.shape[1], -1)
    normalised = flat / (flat.pow(2).sum(1).sqrt().unsqueeze(1) + 1e-7)
    return normalised.transpose(1, 2).bmm(normalised).unsqueeze(1)


def official_features(model, lr):
    """SR in 0–255 and the official tap list: groups 3 and 7, then body_tail + head (post-skip)."""
    captured = {}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out))
             for name, module in (("head", model.head), ("g3", model.body[2]), ("g7", model.body[6]),
                                  ("body_tail", model.body_tail))]
    try:
        sr = model(lr) * RANGE
    finally:
        for hook in hooks:
            hook.remove()
    return sr, [captured["g3"], captured["g7"], captured["body_tail"] + captured["head"]]


def official_objective(student, teacher, lr, hr, *, weight: float):
    """The official loss on 0–255 pixels, and each term's value in it."""
    with torch.no_grad():
        teacher_sr, teacher_features = official_features(teacher, lr)
    student_sr, student_features = official_features(student, lr)
    terms = {
        "l1_hr": (1 - ALPHA) * F.l1_loss(student_sr, hr * RANGE),
        "l1_teacher": ALPHA * F.l1_loss(student_sr, teacher_sr),
        "fakd": weight * sum(F.l1_loss(official_affinity(s), official_affinity(t))
                             for s, t in zip(student_features, teacher_features)),
    }
    return sum(terms.values()), terms


def fakd_objective(student, teacher, lr, hr, *, weight: float):
    objective = build_objective(DistillSettings(methods=["fakd"], weights={"fakd": weight}, alpha=ALPHA),
                                student=student, teacher=teacher)
    with FeatureTaps(student, objective.student_taps) as s_taps, FeatureTaps(teacher, objective.teacher_taps) as t_taps:
        total, values = compute_loss(student, teacher, objective, lr, hr, student_taps=s_taps, teacher_taps=t_taps)
    return objective, total, values


def _gradient(model, loss) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    student = build_model("rcan-smoke-student", scale=4).double()
    teacher = build_model("rcan-smoke-teacher", scale=4).double().requires_grad_(False)
    lr = torch.rand(2, 3, 10, 12, dtype=torch.float64)
    hr = torch.rand(2, 3, 40, 48, dtype=torch.float64)
    return student, teacher, lr, hr


@pytest.mark.parametrize("weight", [1.0, 10.0, 2550.0])
def test_gradients_parallel_and_shares_equal_to_the_official_objective(pair, weight):
    student, teacher, lr, hr = pair
    assert student.default_taps == ["body.2", "body.6", "long_skip"]
    objective, total, values = fakd_objective(student, teacher, lr, hr, weight=weight)
    ours = _gradient(student, total)
    official_total, official_terms = official_objective(student, teacher, lr, hr, weight=weight)
    theirs = _gradient(student, official_total)

    cosine = torch.dot(ours, theirs) / (ours.norm() * theirs.norm())
    assert cosine >= 0.9999
    assert float(official_total.detach()) == pytest.approx(RANGE * float(total.detach()), rel=1e-6)
    shares = objective.shares({name: float(value.detach()) for name, value in values.items()})
    assert sum(shares.values()) == pytest.approx(1.0)
    for name, value in official_terms.items():
        assert shares[f"share_{name}"] == pytest.approx(float(value.detach()) / float(official_total.detach()),
                                                        rel=1e-6)


def test_unweighted_values_stay_on_unit_images(pair):
    """l1_hr / l1_teacher are logged on [0, 1] images: 1/255 of the official values."""
    student, teacher, lr, hr = pair
    _, _, values = fakd_objective(student, teacher, lr, hr, weight=1.0)
    with torch.no_grad():
        _, official = official_objective(student, teacher, lr, hr, weight=1.0)
    assert float(values["l1_hr"].detach()) == pytest.approx(float(official["l1_hr"]) / (1 - ALPHA) / RANGE, rel=1e-9)
    assert float(values["fakd"].detach()) == pytest.approx(float(official["fakd"]), rel=1e-6)


def test_the_student_alone_is_unchanged_by_the_units(pair):
    """No feature term: the total is plain L1 to HR on [0, 1], as before the units change."""
    student, teacher, lr, hr = pair
    objective = build_objective(DistillSettings(methods=["none"]), student=student, teacher=None)
    with torch.no_grad():
        total, values = objective(student_sr=student(lr), hr=hr)
        assert float(total) == float(F.l1_loss(student(lr), hr))
    assert objective.shares({name: float(value) for name, value in values.items()}) == {"share_l1_hr": 1.0}
