"""DistillationObjective: the total and each term against independent computations, and its errors."""

import pytest
import torch
import torch.nn.functional as F

from fakd.distill import METHODS, DistillationObjective, DistillationTerm, FeatureTaps, objective_for
from fakd.errors import FakdError


def naive_fakd(student, teacher, p=1):
    def affinity(feat):
        flat = feat.double().flatten(2)
        unit = flat / (flat.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-8)
        return unit.transpose(1, 2) @ unit
    diff = affinity(student) - affinity(teacher)
    return (diff.abs().mean() if p == 1 else diff.pow(2).mean()).item()


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(shape, generator=generator)  # noqa: E731
    return {
        "student_sr": rand(2, 3, 8, 8), "teacher_sr": rand(2, 3, 8, 8), "hr": rand(2, 3, 8, 8),
        "student_features": {"a": rand(2, 4, 4, 4), "b": rand(2, 4, 4, 4), "c": rand(2, 4, 2, 2)},
        "teacher_features": {"A": rand(2, 6, 4, 4), "B": rand(2, 6, 4, 4), "B4": rand(2, 4, 4, 4)},
    }


def fakd_term(**extra):
    return {"method": "fakd", "weight": 10.0, "student_taps": ["a", "b"], "teacher_taps": ["A", "B"], **extra}


def test_total_is_the_weighted_sum_of_independently_computed_terms():
    data = batch()
    objective = DistillationObjective(alpha=0.3, terms=[
        fakd_term(),
        {"method": "at", "weight": 2.0, "student_taps": ["b"], "teacher_taps": ["B"]},
    ])
    total, terms = objective(**data)
    s, t = data["student_features"], data["teacher_features"]
    l1_hr = (data["student_sr"] - data["hr"]).abs().mean().item()
    l1_teacher = (data["student_sr"] - data["teacher_sr"]).abs().mean().item()
    fakd = naive_fakd(s["a"], t["A"]) + naive_fakd(s["b"], t["B"])

    def attention(feat):
        a = feat.double().pow(2).mean(dim=1).flatten(1)
        return a / a.norm(dim=1, keepdim=True)
    at = (attention(s["b"]) - attention(t["B"])).pow(2).mean().item()

    assert set(terms) == {"l1_hr", "l1_teacher", "fakd", "at"}
    assert terms["l1_hr"].item() == pytest.approx(l1_hr, rel=1e-6)
    assert terms["l1_teacher"].item() == pytest.approx(l1_teacher, rel=1e-6)
    assert terms["fakd"].item() == pytest.approx(fakd, rel=1e-5)
    assert terms["at"].item() == pytest.approx(at, rel=1e-5)
    # feature weights are in official units: against L1 on 0-255 pixels, i.e. / 255 on [0, 1] images
    expected = 0.7 * l1_hr + 0.3 * l1_teacher + (10.0 * fakd + 2.0 * at) / 255
    assert total.item() == pytest.approx(expected, rel=1e-5)


def test_fakd_p2_fsp_ca_and_fitnet_terms():
    data = batch(1)
    objective = DistillationObjective(alpha=0.0, terms=[
        fakd_term(p=2, name="fakd_p2"),
        {"method": "fsp", "weight": 1.0, "student_taps": ["a", "b"], "teacher_taps": ["B4", "B4"]},
        {"method": "ca", "weight": 1.0, "student_taps": ["a"], "teacher_taps": ["B4"]},
        {"method": "fitnet", "weight": 1.0, "student_taps": ["a"], "teacher_taps": ["A"],
         "student_channels": 4, "teacher_channels": 6},
    ])
    _, terms = objective(**data)
    s, t = data["student_features"], data["teacher_features"]
    assert "l1_teacher" not in terms
    assert terms["fakd_p2"].item() == pytest.approx(naive_fakd(s["a"], t["A"], 2) + naive_fakd(s["b"], t["B"], 2), rel=1e-5)
    flow = lambda x, y: torch.einsum("bihw,bjhw->bij", x.double(), y.double()) / 16  # noqa: E731
    fsp = (flow(s["a"], s["b"]) - flow(t["B4"], t["B4"])).pow(2).mean().item()
    assert terms["fsp"].item() == pytest.approx(fsp, rel=1e-5)
    unit = lambda x: F.normalize(x.double().flatten(2), dim=2)  # noqa: E731
    ca = (unit(s["a"]) @ unit(s["a"]).transpose(1, 2) - unit(t["B4"]) @ unit(t["B4"]).transpose(1, 2)).abs().mean()
    assert terms["ca"].item() == pytest.approx(ca.item(), rel=1e-5)
    adapter = objective.losses["fitnet"][0].adapter
    fitnet = (adapter(s["a"]) - t["A"]).pow(2).mean().item()
    assert terms["fitnet"].item() == pytest.approx(fitnet, rel=1e-6)
    assert {id(p) for p in adapter.parameters()} <= {id(p) for p in objective.parameters()}


def test_prepare_builds_fitnet_adapters_from_sample_features():
    data = batch(2)
    objective = DistillationObjective(terms=[
        {"method": "fitnet", "weight": 1.0, "student_taps": ["a", "b"], "teacher_taps": ["A", "B4"]}])
    assert not list(objective.parameters())
    with pytest.raises(RuntimeError, match="prepare"):  # a programming error: the trainer prepares
        objective(**data)
    objective.prepare(data["student_features"], data["teacher_features"])
    adapters = [loss.adapter for loss in objective.losses["fitnet"]]
    assert adapters[0].in_channels == 4 and adapters[0].out_channels == 6
    assert adapters[1] is None  # 4 → 4 channels: no adapter
    assert len(list(objective.parameters())) == 2
    total, _ = objective(**data)
    total.backward()
    assert adapters[0].weight.grad.abs().sum() > 0


def test_gradient_of_the_total_reaches_a_tapped_student():
    torch.manual_seed(3)
    student = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 3, 3, padding=1))
    teacher = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 3, 3, padding=1))
    objective = DistillationObjective(alpha=0.0, terms=[
        {"method": "fakd", "weight": 1.0, "student_taps": ["0"], "teacher_taps": ["0"]}])
    lr = torch.rand(2, 3, 6, 6)
    with FeatureTaps(student, objective.student_taps) as s_taps, FeatureTaps(teacher, objective.teacher_taps) as t_taps:
        with torch.no_grad():
            teacher_sr = teacher(lr)
        student_sr = student(lr)
        _, terms = objective(student_sr=student_sr, hr=lr, teacher_sr=teacher_sr,
                             student_features=s_taps.features, teacher_features=t_taps.features)
    terms["fakd"].backward()
    assert student[0].weight.grad.abs().sum() > 0
    assert teacher[0].weight.grad is None


def test_tap_lists_and_teacher_need():
    objective = DistillationObjective(terms=[
        fakd_term(), {"method": "at", "weight": 1.0, "student_taps": ["b", "c"], "teacher_taps": ["B", "C"]}])
    assert objective.student_taps == ["a", "b", "c"]
    assert objective.teacher_taps == ["A", "B", "C"]
    assert objective.needs_teacher
    assert not DistillationObjective(alpha=0.0).needs_teacher
    assert DistillationObjective(alpha=0.5).needs_teacher


def test_objective_for_reads_the_method_registry():
    assert objective_for(["none"]).alpha == 0.0 and objective_for(["none"]).terms == []
    kd = objective_for(["kd"], alpha=0.5, student_taps=["a"], teacher_taps=["A"])
    assert kd.alpha == 0.5 and kd.terms == []
    fakd = objective_for(["fakd"], weights={"fakd": 10.0}, options={"fakd": {"p": 2}}, student_taps=["a"],
                         teacher_taps=["A"])
    assert fakd.terms == [DistillationTerm("fakd", 10.0, ("a",), ("A",), {"p": 2})]
    assert fakd.losses["fakd"][0].p == 2
    both = objective_for(["at", "kd", "fakd"], student_taps=["a"], teacher_taps=["A"])
    assert [(term.method, term.weight) for term in both.terms] == [("at", 1000.0), ("fakd", 1.0)]
    assert [(term.method, term.weight) for term in both.terms] == [
        (name, METHODS[name].default_weight) for name in ("at", "fakd")]
    with pytest.raises(FakdError, match="not feature methods"):
        objective_for(["kd"], weights={"kd": 1.0})
    with pytest.raises(FakdError, match="cannot be combined"):
        objective_for(["none", "kd"])


def test_student_without_kd_is_plain_l1():
    data = batch(4)
    total, terms = DistillationObjective(alpha=0.0)(student_sr=data["student_sr"], hr=data["hr"])
    assert list(terms) == ["l1_hr"]
    assert total.item() == pytest.approx(F.l1_loss(data["student_sr"], data["hr"]).item())


@pytest.mark.parametrize("alpha", [-0.1, 1.5, "0.5", True])
def test_alpha_outside_unit_interval_is_an_error(alpha):
    with pytest.raises(FakdError, match="alpha"):
        DistillationObjective(alpha=alpha)


@pytest.mark.parametrize("term, message", [  # what a user's config can get wrong: one line, exit 2
    (fakd_term(weight=-1.0), r"term .fakd.: weight must be a finite number ≥ 0, got -1.0"),
    (fakd_term(weight=float("inf")), "finite number ≥ 0"),
    (fakd_term(teacher_taps=["A"]), "2 student taps .* 1 teacher taps"),
    (fakd_term(method="fsp", student_taps=["a"], teacher_taps=["A"]), "at least 2"),
    (fakd_term(q=3), r"method 'fakd' has no option\(s\) \['q'\] \(its options: p, block_bytes\)"),
    (fakd_term(p=3), "p must be 1 or 2"),
])
def test_bad_terms_are_errors(term, message):
    with pytest.raises(FakdError, match=message):
        DistillationObjective(terms=[term])


@pytest.mark.parametrize("term, error, message", [  # what only code can get wrong: a traceback
    (fakd_term(method="fakd-p3"), ValueError, "unknown distillation method 'fakd-p3'.*fakd, fitnet, at, fsp, ca"),
    (fakd_term(method="kd"), ValueError, "alpha term"),
    ({"method": "fakd", "weight": 1.0}, ValueError, "lacks student_taps, teacher_taps"),
    (["fakd"], TypeError, "must be a dict"),
])
def test_malformed_terms_are_programming_errors(term, error, message):
    with pytest.raises(error, match=message):
        DistillationObjective(terms=[term])


def test_duplicate_term_names_are_an_error():
    with pytest.raises(ValueError, match="distinct"):
        DistillationObjective(terms=[fakd_term(), fakd_term()])
    DistillationObjective(terms=[fakd_term(), fakd_term(name="fakd_again", p=2)])


def test_spatial_mismatch_names_taps_and_shapes():
    data = batch(5)
    objective = DistillationObjective(terms=[
        {"method": "at", "weight": 1.0, "student_taps": ["c"], "teacher_taps": ["A"]}])
    with pytest.raises(FakdError, match=r"student tap 'c', teacher tap 'A'.*\(2, 4, 2, 2\) and teacher \(2, 6, 4, 4\)"):
        objective(**data)


def test_missing_features_and_teacher_output_are_errors():
    data = batch(6)
    objective = DistillationObjective(terms=[fakd_term()])
    with pytest.raises(RuntimeError, match="no teacher feature for tap 'A'"):
        objective(**{**data, "teacher_features": {}})
    with pytest.raises(ValueError, match="teacher_sr"):
        objective(**{**data, "teacher_sr": None})
